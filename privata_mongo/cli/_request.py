"""How a ``rights`` command reaches its models and names its subject.

A ``Request`` connects the ``--models`` classes to the target database for the command's
duration, through their facade, so every read is decrypted and audited as the application's:
mongoengine models through ``connect`` on the command's client (``Rights``), Beanie models
through ``init_beanie`` on an async client of the same server, served by ``AsyncRights`` on one
event loop of the command (``_Blocking``, so the commands are written once). ``named_subject``
turns the SUBJECT argument into a ``Subject``: a pseudonym, an id of ``--model``, or the value
of a searchable field, never shown in a message.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import typer

from privata_mongo.cli._app import _models
from privata_mongo.cli._common import SERVER_TIMEOUT_MS, Output, Target, refusals

__all__ = [
    "Request",
    "async_twin",
    "beanie_id",
    "is_beanie",
    "model_named",
    "named_subject",
    "required",
]


_client: ContextVar[Any] = ContextVar("privata_cli_rights_client")


def _given_client(*_args: Any, **_kwargs: Any) -> Any:
    """The command's open client, as the ``mongo_client_class`` mongoengine instantiates.

    One function for every command, so the facade's client class is built once.
    """
    return _client.get()


def required(value: str | None, option: str, why: str) -> str:
    if value is None or not value.strip():
        raise typer.BadParameter(f"{why}; give it with {option}", param_hint=option)
    return value


def _served_models(models: str | None) -> tuple[str, list[Any]]:
    """The ODM and the document classes ``--models`` names: mongoengine's, or Beanie's.

    One command serves the models of one ODM (``Rights`` or ``AsyncRights``); a module of both
    is named one model at a time.
    """
    import sys as _sys

    if not models:
        raise typer.BadParameter(
            "name the application's models with --models module[:Model]", param_hint="--models"
        )
    named = _models(models)
    found: dict[str, list[Any]] = {"mongoengine": [], "beanie": []}
    mongoengine = _sys.modules.get("mongoengine")
    beanie = _sys.modules.get("beanie")
    for model in named:
        if mongoengine is not None and issubclass(model, mongoengine.Document):
            if not model._meta.get("abstract"):
                found["mongoengine"].append(model)
        elif beanie is not None and issubclass(model, beanie.Document):
            found["beanie"].append(model)
    served = [(odm, classes) for odm, classes in found.items() if classes]
    if len(served) != 1:
        raise typer.BadParameter(
            f"{models} defines no mongoengine or Beanie Document"
            if not served
            else f"{models} defines models of both mongoengine and Beanie: name one ODM's "
            "models at a time (module:Model)",
            param_hint="--models",
        )
    return served[0]


class _Blocking:
    """An ``AsyncRights`` whose calls return their results: each coroutine run to its end.

    The commands are written once, against ``Rights``; a Beanie application's models are
    served by ``AsyncRights`` on one event loop for the command's duration. Each call's task
    starts from a copy of the caller's context, so the access context of the command is the
    calls' own.
    """

    def __init__(self, rights: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._rights = rights
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._rights, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if inspect.iscoroutine(result):
                return self._loop.run_until_complete(result)
            return result

        return call


@dataclass(frozen=True)
class Request:
    """Where and as whom a rights command runs: its connection and access-context options."""

    models: str | None
    actor: str | None
    purpose: str
    legal_basis: str
    uri: str | None
    db: str | None
    key_vault: str | None
    json: bool

    @contextmanager
    def serve(self) -> Iterator[tuple[Output, Any, dict[str, Any]]]:
        """The output, the rights of the models and the models by name, for the block.

        The models are connected to the target database through their facade for the block
        (mongoengine: each connection alias they use, one already connected in this process
        left as it is; Beanie: ``init_beanie`` on an async client of the same server), under
        the access context of the options.
        """
        from privata_mongo.context import access_context

        output = Output(self.json)
        target = Target.of(self.uri, self.db)
        target.key_vault(self.key_vault)
        who = required(self.actor, "--actor", "name who answers the request (the records' actor)")
        odm, classes = _served_models(self.models)
        by_name = {c.__name__: c for c in classes}
        with refusals(output), target.connect() as client:
            database = target.db(client)
            connected = _beanie if odm == "beanie" else _mongoengine
            context = access_context(actor=who, purpose=self.purpose, legal_basis=self.legal_basis)
            with connected(client, database.name, classes) as rights, context:
                yield output, rights, by_name


@contextmanager
def _mongoengine(client: Any, database: str, classes: list[Any]) -> Iterator[Any]:
    """``Rights`` of mongoengine models connected to ``client`` for the block."""
    import mongoengine

    import privata_mongo.mongoengine as facade
    from privata_mongo.rights import Rights

    aliases = sorted(
        {c._meta.get("db_alias") or mongoengine.DEFAULT_CONNECTION_NAME for c in classes}
    )
    opened: list[str] = []
    token = _client.set(client)
    try:
        for alias in aliases:
            facade.connect(
                db=database,
                alias=alias,
                mongo_client_class=_given_client,
                uuidRepresentation="standard",
            )
            opened.append(alias)
        yield Rights(classes)
    finally:
        for alias in opened:
            mongoengine.disconnect(alias)
        _client.reset(token)


def async_twin(client: Any) -> Any:
    """An async client of the server (or in-memory store) ``client`` talks to.

    A real server is reached at the address the sync client is connected to, with its
    options; the embedded backend's twin shares the mongomock store.
    """
    import pymongo

    from privata_mongo.embedded import AsyncMockClient

    store = getattr(client, "_store", None)
    if store is not None:  # mongomock
        return AsyncMockClient(store)
    host, port = client.address
    return pymongo.AsyncMongoClient(
        host, port, serverSelectionTimeoutMS=SERVER_TIMEOUT_MS, uuidRepresentation="standard"
    )


@contextmanager
def _beanie(client: Any, database: str, classes: list[Any]) -> Iterator[Any]:
    """``AsyncRights`` of Beanie models, served on one event loop for the block."""
    import privata_mongo.beanie as facade
    from privata_mongo.rights import AsyncRights

    loop = asyncio.new_event_loop()
    twin = async_twin(client)
    try:
        loop.run_until_complete(
            facade.init_beanie(database=twin[database], document_models=classes)
        )
        yield _Blocking(AsyncRights(classes), loop)
    finally:
        loop.run_until_complete(twin.close())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def is_beanie(cls: Any) -> bool:
    return hasattr(cls, "model_fields") and not hasattr(cls, "_fields")


def beanie_id(value: str) -> Any:
    """A Beanie document id given on the command line: an ObjectId when it reads as one."""
    from bson import ObjectId

    return ObjectId(value) if ObjectId.is_valid(value) else value


def named_subject(
    value: str, model: str | None, field: str | None, classes: Mapping[str, Any]
) -> Any:
    """The ``Subject`` the arguments name (the value never appears in a message)."""
    from privata_mongo.core.pseudonym import is_pseudonym
    from privata_mongo.rights import Subject

    if value == "-":
        value = sys.stdin.readline().strip()
    if field is not None and model is None:
        raise typer.BadParameter(
            "--field needs --model, the model it is a field of", param_hint="--field"
        )
    if is_pseudonym(value) and field is None:
        return Subject(pseudonym=value)
    if model is None:
        raise typer.BadParameter(
            "SUBJECT is not a pseudonym (pseu_ + 32 hex): name the model it is an id of with "
            "--model, or a searchable field it is the value of with --model and --field",
            param_hint="SUBJECT",
        )
    cls = model_named(model, classes)
    if field is not None:
        return Subject(model=model, field=field, value=value)
    if is_beanie(cls):
        return Subject(model=model, id=beanie_id(value))
    id_field = cls._fields[cls._meta["id_field"]]
    try:
        id = id_field.to_python(value)
    except (TypeError, ValueError):
        raise typer.BadParameter(f"SUBJECT is not an id of {model}", param_hint="SUBJECT") from None
    return Subject(model=model, id=id_field.to_mongo(id))


def model_named(name: str, classes: Mapping[str, Any]) -> Any:
    if name not in classes:
        raise typer.BadParameter(
            f"{name} is not one of the models served ({', '.join(sorted(classes))})",
            param_hint="--model",
        )
    return classes[name]
