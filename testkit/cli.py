"""The ``privata-mongo`` commands run in-process, as the CLI tests drive them.

``run_cli(...)`` invokes the typer app through click's runner; with ``client`` (a factory of a
raw client, e.g. ``backend.client``) the commands use it instead of connecting to ``--uri``,
through the ``client_factory`` seam of ``privata_mongo.cli._common``, so they also run on the
in-memory backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typer.testing import CliRunner

from privata_mongo.cli import app
from privata_mongo.cli._common import client_factory

__all__ = ["run_cli"]

_runner = CliRunner()


def run_cli(*args: str, client: Callable[[], Any] | None = None, input: str | None = None) -> Any:
    """The result of ``privata-mongo *args`` (exit code, output), ``input`` on its stdin."""
    token = client_factory.set(client)
    try:
        return _runner.invoke(app, list(args), input=input, catch_exceptions=False)
    finally:
        client_factory.reset(token)
