"""``privata-mongo``: the operator's command line (``docs/cli.md``).

Operators classify an application's models before adopting the library, rewrite its imports,
verify and query the audit trail, and look after the key vault — from a terminal, on the real
database, with their own pymongo handle (the proxy is for applications, and refuses writes to
the audit and key-vault collections that operator tooling makes through the library). Every
command takes ``--json`` for scripts; exit codes are in ``privata_mongo.cli._common``.
"""

from __future__ import annotations

from privata_mongo.cli import (
    _keys,  # noqa: F401 - registers the keys commands
    _marks,  # noqa: F401 - registers the restriction, objection and consent commands
    _migrate,  # noqa: F401 - registers migrate and unmigrate
    _report,  # noqa: F401 - registers report
    _retention,  # noqa: F401 - registers replay-erasures and retention enforce
    _rights,  # noqa: F401 - registers rights and retention
)
from privata_mongo.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """The console entry point."""
    app()
