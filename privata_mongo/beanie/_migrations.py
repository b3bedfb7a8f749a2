"""Beanie's migration runner, initialising each migration's models through the facade.

Beanie's ``MigrationNode`` calls its own ``init_beanie`` for the models of every migration, so a
migration run natively would read and write a split model's collections unsplit: documents
without their identity fields, new ones with personal data in the clear. This node is Beanie's,
with that one call made through the facade; building the list of migrations (and Beanie's
``MigrationLog``, which holds no personal data) stays Beanie's own.
"""

from __future__ import annotations

import logging
from typing import Any

from beanie.migrations.controllers.base import BaseMigrationController
from beanie.migrations.runner import MigrationNode as _NativeMigrationNode

from privata_mongo.beanie._init import init_beanie

logger = logging.getLogger("beanie.migrations.runner")


class MigrationNode(_NativeMigrationNode):
    """Beanie's migration node; each migration's models are initialised split."""

    async def run_migrations(
        self,
        migrations: list[BaseMigrationController],
        db: Any,
        allow_index_dropping: bool,
        session: Any,
    ) -> None:
        """Beanie's ``run_migrations``, with the facade's ``init_beanie``."""
        for migration in migrations:
            for model in migration.models:
                await init_beanie(
                    database=db,
                    document_models=[model],
                    allow_index_dropping=allow_index_dropping,
                )
            logger.info(
                "Running migration %s from module %s", migration.function.__name__, self.name
            )
            await migration.run(session=session)  # type: ignore[no-untyped-call]
