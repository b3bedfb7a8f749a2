"""The commands, each a thin layer over the library's own API (no logic of its own)."""

from __future__ import annotations

import datetime
import importlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from privata_mongo.cli._common import (
    EXIT_CHECK_FAILED,
    Output,
    Target,
    refusals,
)

__all__ = ["app"]

app = typer.Typer(
    name="privata-mongo",
    help="GDPR/HIPAA operations on a privata_mongo database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # a traceback must not print personal data
)
audit_app = typer.Typer(help="Verify and query the audit trail.", no_args_is_help=True)
keys_app = typer.Typer(help="The key vault and the master key.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")

Json = Annotated[bool, typer.Option("--json", help="One JSON document on stdout, for scripts.")]
Uri = Annotated[
    str | None,
    typer.Option("--uri", help="MongoDB URI (default: $MONGODB_URI).", show_default=False),
]
Db = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database (default: $MONGODB_DATABASE, or the URI's).", show_default=False
    ),
]
Collection = Annotated[str, typer.Option("--collection", help="The audit collection.")]
KeyVault = Annotated[
    str | None,
    typer.Option(
        "--key-vault",
        envvar="PRIVATA_KEY_VAULT",
        help="The key vault, database.collection (default: the configured one).",
        show_default=False,
    ),
]


def _models(target: str) -> list[Any]:
    """The model classes named by ``module[:Model]`` (every model of the module without one)."""
    from privata_mongo.errors import ConfigurationError
    from privata_mongo.explain import explain

    module_name, _, model_name = target.partition(":")
    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise typer.BadParameter(
            f"cannot import {module_name!r}: {error}", param_hint="TARGET"
        ) from None
    finally:
        sys.path.pop(0)
    if model_name:
        if not hasattr(module, model_name):
            raise typer.BadParameter(f"{module_name} has no {model_name}", param_hint="TARGET")
        return [getattr(module, model_name)]
    found = []
    for value in vars(module).values():
        if isinstance(value, type) and value.__module__ == module.__name__:
            try:
                explain(value)
            except ConfigurationError:
                continue
            found.append(value)
    if not found:
        raise typer.BadParameter(
            f"{module_name} defines no mongoengine or Beanie model", param_hint="TARGET"
        )
    return found


@app.command()
def classify(
    target: Annotated[str, typer.Argument(help="module or module:Model, importable from here.")],
    json_output: Json = False,
) -> None:
    """Each field's classification (identity or clinical) and the rule that decided it."""
    from privata_mongo.explain import explain

    output = Output(json_output)
    with refusals(output):
        explanations = [explain(model) for model in _models(target)]
    document = {
        "models": [
            {
                "model": e.model,
                "collection": e.collection,
                "identity_collection": e.identity_collection,
                "encrypted": e.encrypted,
                "searchable": list(e.searchable),
                "fields": [
                    {
                        "field": d.field,
                        "attribute": d.attribute,
                        "side": "identity" if d.identity else "clinical",
                        "rule": d.rule.value,
                        "reason": d.reason,
                        "safe_harbor": d.safe_harbor,
                    }
                    for d in e.decisions
                ],
            }
            for e in explanations
        ]
    }
    output.result(document, "\n\n".join(str(e) for e in explanations))


@app.command()
def codemod(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories of Python source.")],
    diff: Annotated[bool, typer.Option("--diff", help="Show the change; write nothing.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if a file would change.")
    ] = False,
    json_output: Json = False,
) -> None:
    """Rewrite imports of mongoengine and beanie to the privata facades (idempotent)."""
    import difflib

    from privata_mongo.codemod import rewrite_source

    output = Output(json_output)
    files = sorted({f for p in paths for f in ([p] if p.is_file() else p.rglob("*.py"))})
    changed: list[dict[str, Any]] = []
    scanned = 0
    for file in files:
        source = file.read_text(encoding="utf-8")
        scanned += len(source.splitlines())
        rewrite = rewrite_source(source)
        if rewrite.source == source:
            continue
        changed.append({"path": str(file), "lines_changed": rewrite.lines_changed})
        if diff and not json_output:
            typer.echo(
                "".join(
                    difflib.unified_diff(
                        source.splitlines(keepends=True),
                        rewrite.source.splitlines(keepends=True),
                        f"a/{file}",
                        f"b/{file}",
                    )
                ),
                nl=False,
            )
        if not (diff or check):
            file.write_text(rewrite.source, encoding="utf-8")
    total = sum(c["lines_changed"] for c in changed)
    document = {
        "files_scanned": len(files),
        "lines_scanned": scanned,
        "files_changed": len(changed),
        "lines_changed": total,
        "changed": changed,
        "written": not (diff or check),
    }
    verb = "changed" if not (diff or check) else "would change"
    output.result(
        document,
        f"{verb} {total} of {scanned} lines in {len(changed)} of {len(files)} files",
    )
    if check and changed:
        raise typer.Exit(EXIT_CHECK_FAILED)


@audit_app.command("verify")
def audit_verify(
    uri: Uri = None,
    db: Db = None,
    collection: Collection = "privata_audit",
    key_vault: KeyVault = None,
    anchors: Annotated[
        Path | None,
        typer.Option("--anchors", help="Heads of an earlier run (JSON), kept elsewhere."),
    ] = None,
    save_anchors: Annotated[
        Path | None, typer.Option("--save-anchors", help="Write this run's heads (JSON) here.")
    ] = None,
    json_output: Json = False,
) -> None:
    """Verify every hash chain of the audit trail; exit 1 if any record was changed or cut."""
    from privata_mongo.audit import verify

    output = Output(json_output)
    target = Target.of(uri, db)
    target.key_vault(key_vault)
    given = None
    if anchors is not None:
        given = {k: (int(v[0]), str(v[1])) for k, v in json.loads(anchors.read_text()).items()}
    with refusals(output), target.connect() as client:
        outcome = verify(target.db(client)[collection], given)
    if save_anchors is not None:
        save_anchors.write_text(json.dumps(outcome.heads, sort_keys=True))
    problems = [str(p) for p in outcome.problems]
    document = {
        "ok": outcome.ok,
        "records": outcome.records,
        "streams": len(outcome.heads),
        "problems": problems,
    }
    text = (
        f"[green]ok[/green]: {outcome.records} records in {len(outcome.heads)} streams verify"
        if outcome.ok
        else "\n".join(
            [f"[red]{len(problems)} problems[/red] in {outcome.records} records:", *problems]
        )
    )
    output.result(document, text)
    if not outcome.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _when(value: str | None, option: str) -> datetime.datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            "an ISO 8601 date or time, e.g. 2026-11-01T00:00", param_hint=option
        ) from None
    if parsed.tzinfo is not None:  # records store naive UTC
        parsed = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return parsed


def _accesses_table(found: list[Any]) -> Table:
    table = Table(
        "at",
        "actor",
        "purpose",
        "legal basis",
        "operation",
        "model",
        "fields",
        "subjects",
        "outcome",
    )
    for a in found:
        table.add_row(
            a.at.isoformat(timespec="seconds"),
            a.actor or "",
            a.purpose or "",
            a.legal_basis or "",
            a.operation + (" [break-glass]" if a.severity != "normal" else ""),
            a.model,
            ", ".join(a.fields),
            str(len(a.subjects)),
            a.outcome,
        )
    return table


def _access_documents(found: list[Any]) -> list[dict[str, Any]]:
    from dataclasses import asdict

    return [asdict(a) for a in found]


@audit_app.command("query")
def audit_query(
    uri: Uri = None,
    db: Db = None,
    collection: Collection = "privata_audit",
    subject: Annotated[str | None, typer.Option(help="A pseudonym.")] = None,
    actor: Annotated[str | None, typer.Option()] = None,
    purpose: Annotated[str | None, typer.Option()] = None,
    operation: Annotated[list[str] | None, typer.Option(help="Repeat for several.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601, inclusive.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601, exclusive.")] = None,
    json_output: Json = False,
) -> None:
    """Audited operations matching every criterion given, oldest first."""
    from privata_mongo.audit import accesses

    output = Output(json_output)
    target = Target.of(uri, db)
    start, end = _when(since, "--since"), _when(until, "--until")
    with refusals(output), target.connect() as client:
        database = target.db(client)
        found = accesses(
            database[collection],
            subject=subject,
            actor=actor,
            start=start,
            end=end,
            operations=operation,
        )
    if purpose is not None:
        found = [a for a in found if a.purpose == purpose]
    output.result({"accesses": _access_documents(found)}, _accesses_table(found))


@audit_app.command("break-glass")
def audit_break_glass(
    uri: Uri = None,
    db: Db = None,
    collection: Collection = "privata_audit",
    since: Annotated[str | None, typer.Option(help="ISO 8601, inclusive.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601, exclusive.")] = None,
    json_output: Json = False,
) -> None:
    """Every access made under break-glass, with its actor and reason, for review."""
    from privata_mongo.audit import break_glass_accesses

    output = Output(json_output)
    target = Target.of(uri, db)
    start, end = _when(since, "--since"), _when(until, "--until")
    with refusals(output), target.connect() as client:
        found = break_glass_accesses(target.db(client)[collection], start, end)
    table = _accesses_table(found)
    table.add_column("reason")
    output.result({"accesses": _access_documents(found)}, table)
