"""``beanie migrate`` through the facade: ``python -m privata_mongo.beanie.migrate``.

Beanie's command (``beanie.executors.migrate``) connects with ``DBHandler.set_db`` and runs
Beanie's own ``MigrationNode``, which initialises each migration's models with Beanie's
``init_beanie``: a migration of a split model would read clinical rows without their identity
fields and write personal data in the clear. This command is Beanie's with the facade's node
(``privata_mongo.beanie.migrations.runner.MigrationNode``). Its options are Beanie's own
option objects, and they are read as Beanie reads them (the command line, then the ``BEANIE_*``
environment variables, then ``[tool.beanie.migrations]`` in ``pyproject.toml``, by Beanie's
``MigrationSettings``), so a deployment switches by changing the command name only::

    python -m privata_mongo.beanie.migrate -uri mongodb://... -db clinic -p migrations

Three options are the facade's own. ``--settings-module`` names a module imported first, the one
in which the application calls ``privata_mongo.configure`` at start-up (key vault, KMS
provider, classification): the migration must store the data as the application does.
``--actor``, ``--purpose`` and ``--legal-basis`` are the access context the migration's reads
and writes of personal data are audited under (without them, the settings'
``default_access``). ``migrations`` is the command group of Beanie's ``beanie`` script
(``migrate``, and Beanie's own ``new-migration``), for a console-script entry point.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from typing import Any

import click
from beanie.executors import migrate as _native
from beanie.migrations.database import DBHandler
from beanie.migrations.models import RunningDirections, RunningMode

from privata_mongo.beanie._migrations import MigrationNode
from privata_mongo.context import access_context

__all__ = ["migrate", "migrations", "run_migrate"]


async def run_migrate(settings: _native.MigrationSettings) -> None:
    """Beanie's ``run_migrate``, with the facade's ``MigrationNode``; the client is closed."""
    DBHandler.set_db(settings.connection_uri, settings.database_name)  # type: ignore[no-untyped-call]
    try:
        root = await MigrationNode.build(settings.path)
        mode = RunningMode(
            direction=RunningDirections(settings.direction), distance=settings.distance
        )
        await root.run(
            mode=mode,
            allow_index_dropping=settings.allow_index_dropping,
            use_transaction=settings.use_transaction,
        )
    finally:
        client = DBHandler.get_cli()  # type: ignore[no-untyped-call]
        if client is not None:
            await client.close()


def _settings(
    direction: str | None,
    distance: str | None,
    connection_uri: str | None,
    database_name: str | None,
    path: str | None,
    allow_index_dropping: bool,
    use_transaction: bool,
) -> _native.MigrationSettings:
    """Beanie's settings from the options given, as Beanie's ``migrate`` builds them.

    An option left out is not passed, so Beanie's environment and ``pyproject.toml`` lookups
    fill it.
    """
    given: dict[str, Any] = {
        "direction": direction,
        "distance": distance,
        "connection_uri": connection_uri,
        "database_name": database_name,
        "path": path,
        "allow_index_dropping": allow_index_dropping,
    }
    kwargs = {key: value for key, value in given.items() if value}
    return _native.MigrationSettings(**kwargs, use_transaction=use_transaction)


def _run(
    settings_module: str | None,
    actor: str | None,
    purpose: str | None,
    legal_basis: str | None,
    **options: Any,
) -> None:
    if settings_module:
        importlib.import_module(settings_module)
    settings = _settings(**options)
    context = (
        access_context(actor=actor, purpose=purpose, legal_basis=legal_basis)
        if actor or purpose or legal_basis
        else contextlib.nullcontext()
    )
    with context:
        asyncio.run(run_migrate(settings))


_OWN_OPTIONS = [
    click.Option(
        ["--settings-module"],
        type=str,
        help="A module imported first, which calls privata_mongo.configure as the application "
        "does at start-up",
    ),
    click.Option(["--actor"], type=str, help="Who runs the migration, for the audit trail"),
    click.Option(["--purpose"], type=str, help="Why, for the audit trail"),
    click.Option(["--legal-basis"], type=str, help="Under which legal basis, for the audit"),
]

migrate = click.Command(
    "migrate",
    callback=_run,
    params=[*_native.migrate.params, *_OWN_OPTIONS],
    help="Run Beanie migrations, with every split model initialised through privata.",
)

migrations = click.Group(
    "migrations",
    commands={"migrate": migrate, "new-migration": _native.new_migration},
    help="Beanie's migration commands through privata.",
)


if __name__ == "__main__":
    # as Beanie's command: the operator sees which migrations run
    logging.basicConfig(format="%(message)s", level=logging.INFO)
    migrate()
