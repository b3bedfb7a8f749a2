"""``migrate``, ``migrate verify`` and ``unmigrate``: adopting the library, checking, leaving.

Thin layers over ``privata_mongo.migration``. Each model of ``--models`` is migrated in turn,
with a progress bar on stderr (count, rate, time left); ``--json`` prints one report on stdout.
The access context of the audit records is ``--actor``/``--purpose``/``--legal-basis``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from privata_mongo.cli._app import Db, Json, KeyVault, Uri, _models, app
from privata_mongo.cli._common import EXIT_CHECK_FAILED, Output, Target, refusals

__all__ = ["migrate_app"]

migrate_app = typer.Typer(
    help="Split a database's plaintext documents into identity and clinical form.",
    invoke_without_command=True,
)
app.add_typer(migrate_app, name="migrate")

Models = Annotated[
    str | None,
    typer.Option(
        "--models",
        help="module (every model of it with identity fields) or module:Model.",
        show_default=False,
    ),
]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Documents per batch.")]
Actor = Annotated[str, typer.Option("--actor", help="Who runs it (the audit records' actor).")]
Purpose = Annotated[str, typer.Option("--purpose", help="Why (the audit records' purpose).")]
Into = Annotated[
    str | None,
    typer.Option(
        "--into",
        help="A new collection for the split form (the source is only read); see migrate swap.",
        show_default=False,
    ),
]
LegalBasis = Annotated[
    str | None, typer.Option("--legal-basis", help="Under which legal basis.", show_default=False)
]


def _done_here(task: Task) -> float:
    """What this run did: a resumed run starts from what an earlier one left done."""
    return task.completed - float(task.fields.get("start", 0))


class _Rate(ProgressColumn):
    """Documents per second since the start (rich's own speed needs frequent updates)."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time or task.elapsed
        done = _done_here(task)
        rate = done / elapsed if elapsed and done else 0.0
        return Text(f"{rate:,.0f} docs/s" if rate else "- docs/s", style="progress.data.speed")


class _Left(ProgressColumn):
    """The time left at the rate so far."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed
        done = _done_here(task)
        if task.total is None or done <= 0 or not elapsed:
            return Text("eta -:--:--", style="progress.remaining")
        left = int((task.total - task.completed) * elapsed / done)
        hours, rest = divmod(left, 3600)
        return Text(f"eta {hours}:{rest // 60:02d}:{rest % 60:02d}", style="progress.remaining")


@contextmanager
def _progress(output: Output, label: str) -> Iterator[Any]:
    """A progress bar on stderr; yields the callback ``migration`` calls after each batch."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeElapsedColumn(),
        _Left(),
        console=output.err,
        transient=False,
    )
    task = bar.add_task(label, total=None)
    first = [True]

    def advance(done: int, total: int) -> None:
        if first[0]:  # where this run starts (a resumed ``--into`` run: the rows done)
            first[0] = False
            bar.update(task, completed=done, total=total, start=done)
        else:
            bar.update(task, completed=done, total=total)

    with bar:
        yield advance


def _targets(models: str | None) -> list[Any]:
    """The models named by ``--models`` that have identity fields (a named one is kept)."""
    from privata_mongo.migration import schema_of

    if not models:
        raise typer.BadParameter(
            "name the models with --models module[:Model]", param_hint="--models"
        )
    found = _models(models)
    if ":" in models:
        return found
    return [m for m in found if schema_of(m).enabled]


@contextmanager
def _acting(actor: str, purpose: str, legal_basis: str | None) -> Iterator[None]:
    from privata_mongo.context import access_context

    with access_context(actor=actor, purpose=purpose, legal_basis=legal_basis):
        yield


def _into(into: str | None, models: str | None) -> str | None:
    """``--into`` names one collection: one model only."""
    if into is not None and (models is None or ":" not in models):
        raise typer.BadParameter(
            "--into names one collection: name one model with --models module:Model",
            param_hint="--into",
        )
    return into


def _plain_ids(ids: tuple[Any, ...]) -> list[str]:
    return [str(i) for i in ids]


@migrate_app.callback()
def migrate(
    context: typer.Context,
    models: Models = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count and classify; write nothing.")
    ] = False,
    batch_size: BatchSize = 500,
    into: Into = None,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    actor: Actor = "privata-mongo",
    purpose: Purpose = "migration",
    legal_basis: LegalBasis = None,
    json_output: Json = False,
) -> None:
    """Migrate the models' plaintext documents, in place or --into a new collection.

    Resumable: run it again after a kill. With --into, the source is only read; check the copy
    with migrate verify --into, then migrate swap --into.
    """
    if context.invoked_subcommand is not None:
        return
    from privata_mongo.migration import migrate as run_migration

    output = Output(json_output)
    target = Target.of(uri, db)
    target.key_vault(key_vault)
    reports = []
    with refusals(output), target.connect() as client, _acting(actor, purpose, legal_basis):
        database = target.db(client)
        for model in _targets(models):
            label = f"{'dry run' if dry_run else 'migrate'} {model.__name__}"
            with _progress(output, label) as advance:
                reports.append(
                    run_migration(
                        database,
                        model,
                        batch_size=batch_size,
                        dry_run=dry_run,
                        progress=advance,
                        into=_into(into, models),
                    )
                )
    document = {
        "dry_run": dry_run,
        "models": [
            {
                "model": r.model,
                "collection": r.collection,
                "identity_collection": r.identity_collection,
                "plaintext": r.plaintext,
                "already_migrated": r.already_migrated,
                "migrated": r.migrated,
                "batches": r.batches,
                "seconds": round(r.seconds, 3),
                "rate": round(r.rate, 1),
                "fields": {
                    k: {"side": f.side, "documents": f.documents} for k, f in r.fields.items()
                },
            }
            for r in reports
        ],
    }
    table = Table("model", "plaintext", "already split", "migrated", "seconds", "docs/s")
    for r in reports:
        table.add_row(
            r.model,
            str(r.plaintext),
            str(r.already_migrated),
            "(dry run)" if dry_run else str(r.migrated),
            f"{r.seconds:.1f}",
            f"{r.rate:,.0f}",
        )
    if dry_run and not json_output:
        for r in reports:
            fields = Table(f"{r.model}: field", "side", "documents", "moves to")
            for name, f in r.fields.items():
                moves = r.identity_collection if f.side == "identity" else "(stays)"
                fields.add_row(name, f.side, str(f.documents), moves)
            output.out.print(fields)
    output.result(document, table)


@migrate_app.command("verify")
def verify(
    models: Models = None,
    sample: Annotated[int, typer.Option("--sample", min=0, help="Documents joined back.")] = 100,
    into: Into = None,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    actor: Actor = "privata-mongo",
    purpose: Purpose = "migration",
    legal_basis: LegalBasis = None,
    json_output: Json = False,
) -> None:
    """Compare counts and a sample of joined documents with the source; exit 1 on a difference."""
    from privata_mongo.migration import verify_migration

    output = Output(json_output)
    target = Target.of(uri, db)
    target.key_vault(key_vault)
    with refusals(output), target.connect() as client, _acting(actor, purpose, legal_basis):
        database = target.db(client)
        reports = [
            verify_migration(database, m, sample=sample, into=_into(into, models))
            for m in _targets(models)
        ]
    document = {
        "ok": all(r.ok for r in reports),
        "models": [
            {
                "model": r.model,
                "ok": r.ok,
                "source": r.source,
                "plaintext": r.plaintext,
                "migrated": r.migrated,
                "identity_rows": r.identity_rows,
                "duplicates": r.duplicates,
                "missing": r.missing,
                "sampled": r.sampled,
                "mismatched": r.mismatched,
                "mismatched_ids": _plain_ids(r.mismatched_ids),
            }
            for r in reports
        ],
    }
    table = Table(
        "model",
        "ok",
        "source",
        "plaintext left",
        "migrated",
        "identity rows",
        "duplicates",
        "missing",
        "sampled",
        "mismatched",
    )
    for r in reports:
        table.add_row(
            r.model,
            "[green]yes[/green]" if r.ok else "[red]no[/red]",
            *(
                str(v)
                for v in (
                    r.source,
                    r.plaintext,
                    r.migrated,
                    r.identity_rows,
                    r.duplicates,
                    r.missing,
                    r.sampled,
                    r.mismatched,
                )
            ),
        )
    output.result(document, table)
    if not document["ok"]:
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command("unmigrate")
def unmigrate(
    models: Models = None,
    batch_size: BatchSize = 500,
    shred: Annotated[
        bool,
        typer.Option(
            "--shred", help="Destroy the data keys too (backups of sealed rows become unreadable)."
        ),
    ] = False,
    into: Annotated[
        str | None,
        typer.Option(
            "--into",
            help="A new collection for the plaintext documents (the split ones are only read).",
            show_default=False,
        ),
    ] = None,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    actor: Actor = "privata-mongo",
    purpose: Purpose = "migration",
    legal_basis: LegalBasis = None,
    json_output: Json = False,
) -> None:
    """Put the models' documents back in plaintext form, byte for byte (resumable)."""
    from privata_mongo.migration import unmigrate as run_unmigration

    output = Output(json_output)
    target = Target.of(uri, db)
    target.key_vault(key_vault)
    reports = []
    with refusals(output), target.connect() as client, _acting(actor, purpose, legal_basis):
        database = target.db(client)
        for model in _targets(models):
            with _progress(output, f"unmigrate {model.__name__}") as advance:
                reports.append(
                    run_unmigration(
                        database,
                        model,
                        batch_size=batch_size,
                        shred=shred,
                        progress=advance,
                        into=_into(into, models),
                    )
                )
    document = {
        "models": [
            {
                "model": r.model,
                "restored": r.restored,
                "identity_rows_deleted": r.identity_rows,
                "keys_shredded": r.shredded,
                "batches": r.batches,
                "seconds": round(r.seconds, 3),
                "rate": round(r.rate, 1),
            }
            for r in reports
        ]
    }
    table = Table("model", "restored", "identity rows deleted", "keys shredded", "docs/s")
    for r in reports:
        table.add_row(
            r.model, str(r.restored), str(r.identity_rows), str(r.shredded), f"{r.rate:,.0f}"
        )
    output.result(document, table)


@migrate_app.command("swap")
def swap(
    models: Models = None,
    into: Annotated[
        str,
        typer.Option("--into", help="The collection migrate --into wrote.", show_default=False),
    ] = "",
    sample: Annotated[int, typer.Option("--sample", min=0, help="Documents joined back.")] = 100,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    actor: Actor = "privata-mongo",
    purpose: Purpose = "migration",
    legal_basis: LegalBasis = None,
    json_output: Json = False,
) -> None:
    """After migrate --into and a passing verify: the copy takes the source's name.

    The source is kept as <source>__plaintext (a plaintext backup: drop it once you no longer
    need it). Refused, with nothing renamed, when the verification fails.
    """
    from privata_mongo.migration import swap_migration

    if not into:
        raise typer.BadParameter("name the collection migrate --into wrote", param_hint="--into")
    output = Output(json_output)
    target = Target.of(uri, db)
    target.key_vault(key_vault)
    with refusals(output), target.connect() as client, _acting(actor, purpose, legal_basis):
        database = target.db(client)
        reports = [
            swap_migration(database, m, into=_into(into, models) or into, sample=sample)
            for m in _targets(models)
        ]
    document = {
        "models": [
            {
                "model": r.model,
                "collection": r.collection,
                "backup": r.backup,
                "indexes": list(r.indexes),
                "sampled": r.verified.sampled,
            }
            for r in reports
        ]
    }
    table = Table("model", "collection", "plaintext backup", "indexes copied", "sampled")
    for r in reports:
        table.add_row(
            r.model, r.collection, r.backup, ", ".join(r.indexes) or "-", str(r.verified.sampled)
        )
    output.result(document, table)
