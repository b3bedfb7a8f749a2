"""What every command shares: exit codes, the connection, and output for people or scripts.

Exit codes are part of the interface (scripts and CI jobs branch on them), so they are named
here once and documented in ``docs/cli.md``:

- ``0`` the command did what it was asked, and every check it ran held;
- ``1`` a check failed: an audit chain does not verify, ``codemod --check`` would change files,
  ``migrate verify`` found a difference;
- ``2`` the command line is wrong (click's own code for usage errors);
- ``3`` the library refused: a configuration error, a key that cannot be unwrapped, an unknown
  data subject (a ``PrivataError``; its message says what to do);
- ``4`` the database cannot be reached.

``--json`` prints one JSON document on stdout and nothing else, for scripts; without it the
output is for people (rich tables, progress bars on stderr).
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import typer
from bson import ObjectId
from pymongo.errors import ConfigurationError as PymongoConfigurationError
from pymongo.errors import ConnectionFailure
from rich.console import Console

from privata_mongo.errors import PrivataError

__all__ = [
    "EXIT_CHECK_FAILED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "Output",
    "Target",
    "client_factory",
    "refusals",
]

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_UNREACHABLE = 4

URI_ENV = "MONGODB_URI"
DATABASE_ENV = "MONGODB_DATABASE"
client_factory: ContextVar[Callable[[], Any] | None] = ContextVar(
    "privata_cli_client_factory", default=None
)
"""The client the commands use instead of connecting to ``--uri`` (for embedding and tests)."""
SERVER_TIMEOUT_MS = 5_000
"""How long a command waits for the server before exiting with ``4`` (pymongo's default is 30 s)."""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON")


@dataclass
class Output:
    """Where a command reports: JSON on stdout, or rich text for a terminal."""

    json: bool = False

    def __post_init__(self) -> None:
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False)

    def result(self, document: Mapping[str, Any], text: Any = None) -> None:
        """Report the result: ``document`` as JSON, or ``text`` (or the document) for people."""
        if self.json:
            typer.echo(json.dumps(document, default=_plain, sort_keys=True))
        else:
            self.out.print(text if text is not None else document)

    def problem(self, message: str) -> None:
        """A message for the operator on stderr (never personal data)."""
        self.err.print(f"[red]error:[/red] {message}", markup=True)


@contextmanager
def refusals(output: Output) -> Iterator[None]:
    """Turn the library's refusals and unreachable servers into the documented exit codes."""
    try:
        yield
    except PrivataError as error:
        output.problem(f"{type(error).__name__}: {error}")
        raise typer.Exit(EXIT_REFUSED) from None
    except ConnectionFailure as error:
        output.problem(f"the database cannot be reached ({type(error).__name__}): {error}")
        raise typer.Exit(EXIT_UNREACHABLE) from None


@dataclass(frozen=True)
class Target:
    """The database a command works on: ``--uri`` and ``--db``, or their environment variables."""

    uri: str | None
    database: str | None

    @classmethod
    def of(cls, uri: str | None, database: str | None) -> Target:
        """The target from the options, falling back to ``MONGODB_URI``/``MONGODB_DATABASE``."""
        return cls(uri or os.environ.get(URI_ENV), database or os.environ.get(DATABASE_ENV))

    @contextmanager
    def connect(self) -> Iterator[Any]:
        """A client for the command's duration, closed at its end."""
        client = self.client()
        try:
            yield client
        finally:
            client.close()

    def client(self) -> Any:
        """A real pymongo client (the operator's own handle; the proxy is for applications).

        A program that embeds the commands (or a test) may hand its own client factory in
        ``client_factory``; the URI is then not needed.
        """
        from pymongo import MongoClient

        given = client_factory.get()
        if given is not None:
            return given()
        if not self.uri:
            raise typer.BadParameter(
                f"name the server with --uri or the {URI_ENV} environment variable",
                param_hint="--uri",
            )
        return MongoClient(self.uri, serverSelectionTimeoutMS=SERVER_TIMEOUT_MS)

    @staticmethod
    def key_vault(namespace: str | None) -> None:
        """Use the key vault ``database.collection`` (``--key-vault``) for this command."""
        if namespace:
            from privata_mongo.config import configure

            configure(key_vault_namespace=namespace)

    def db(self, client: Any) -> Any:
        """The database named by ``--db``, else the URI's default database."""
        if self.database:
            return client[self.database]
        try:
            return client.get_default_database()
        except PymongoConfigurationError:  # the URI names no database
            raise typer.BadParameter(
                f"name the database with --db or {DATABASE_ENV}, or put it in the URI",
                param_hint="--db",
            ) from None
