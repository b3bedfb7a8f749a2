"""``rights replay-erasures`` and ``retention enforce``: the erasures an operator runs in bulk.

``replay-erasures`` re-applies the erasure log after a backup restore, with a progress bar
over the log on stderr; ``retention enforce`` erases (or pseudonymises) every subject past its
model's retention period, e.g. nightly from a scheduler. Both are idempotent.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from privata_mongo.cli._app import Db, Json, KeyVault, Uri, _when
from privata_mongo.cli._request import Request
from privata_mongo.cli._rights import (
    LEGAL_OBLIGATION,
    Actor,
    LegalBasis,
    Models,
    Purpose,
    retention_app,
    rights_app,
)

__all__: list[str] = []


@rights_app.command("replay-erasures")
def replay_erasures(
    models: Models = None,
    actor: Actor = None,
    purpose: Purpose = "backup-restore",
    legal_basis: LegalBasis = LEGAL_OBLIGATION,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    json_output: Json = False,
) -> None:
    """Re-apply every logged erasure after a backup restore (idempotent)."""
    request = Request(models, actor, purpose, legal_basis, uri, db, key_vault, json_output)
    with request.serve() as (output, rights, _):
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=output.err,
        )
        task = bar.add_task("replay erasures", total=None)
        with bar:
            replayed = rights.replay_erasures(
                progress=lambda done, total: bar.update(task, completed=done, total=total)
            )
    document = {
        "replayed": [
            {
                "pseudonym": r.pseudonym,
                "key_shredded": r.key_shredded,
                "removed": r.removed,
                "models": [m.document() for m in r.models],
            }
            for r in replayed
        ]
    }
    table = Table("pseudonym", "key shredded again", "rows removed again")
    for r in replayed:
        table.add_row(r.pseudonym, "yes" if r.key_shredded else "no", str(r.removed))
    output.result(document, table)


@retention_app.command("enforce")
def retention_enforce(
    models: Models = None,
    now: Annotated[
        str | None,
        typer.Option(
            "--now", help="ISO 8601: enforce as of then (default: now).", show_default=False
        ),
    ] = None,
    actor: Actor = None,
    purpose: Purpose = "retention",
    legal_basis: LegalBasis = LEGAL_OBLIGATION,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    json_output: Json = False,
) -> None:
    """Erase or pseudonymise every subject past its model's retention period (idempotent)."""
    when = _when(now, "--now")
    request = Request(models, actor, purpose, legal_basis, uri, db, key_vault, json_output)
    with request.serve() as (output, rights, _):
        receipts = rights.enforce_retention(now=when)
    table = Table(
        "pseudonym", "models", "key shredded", title=f"{len(receipts)} subjects past retention"
    )
    for r in receipts:
        table.add_row(
            r.pseudonym, ", ".join(m.model for m in r.models), "yes" if r.key_shredded else "no"
        )
    output.result({"erased": [r.document() for r in receipts]}, table)
