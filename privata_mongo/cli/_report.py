"""``report``: the compliance report of a database, as Markdown or a self-contained HTML page.

A thin layer over ``privata_mongo.report.compliance_report``: it reads only, with the
operator's own client. The report runs ``audit verify`` among its checks, so a trail that
does not verify gives exit code 1 (after the report is written: it says where).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from privata_mongo.cli._app import Db, Json, KeyVault, Uri, _models, app
from privata_mongo.cli._common import EXIT_CHECK_FAILED, Output, Target, refusals

__all__: list[str] = []

FORMATS = ("md", "html")


@app.command("report")
def report(
    models: Annotated[
        str | None,
        typer.Option(
            "--models",
            help="module (every model of it) or module:Model: the models reported on.",
            show_default=False,
        ),
    ] = None,
    format: Annotated[
        str, typer.Option("--format", help="md (Markdown) or html (one self-contained page).")
    ] = "md",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the report here, not to stdout.")
    ] = None,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    json_output: Json = False,
) -> None:
    """The compliance report of the database, as Markdown or one self-contained HTML page.

    Models and classified fields, keys, the audit chain, erasures and restrictions,
    break-glass accesses, accesses per purpose over time, and the processing record.
    """
    from privata_mongo.report import compliance_report

    if format not in FORMATS:
        raise typer.BadParameter(f"one of {', '.join(FORMATS)}", param_hint="--format")
    if not models:
        raise typer.BadParameter(
            "name the application's models with --models module[:Model]", param_hint="--models"
        )
    output = Output(json_output)
    target = Target.of(uri, db)
    target.key_vault(key_vault)
    classes = _models(models)
    with refusals(output), target.connect() as client:
        found = compliance_report(target.db(client), classes)
    if json_output and out is None:
        output.result(dataclasses.asdict(found))
    else:
        text = found.to_markdown() if format == "md" else found.to_html()
        if out is None:
            typer.echo(text, nl=False)
        else:
            out.write_text(text, encoding="utf-8")
            output.result(
                {"out": str(out), "format": format, "audit_ok": found.audit.ok},
                f"wrote the {format} report of {found.database} to {out}",
            )
    if not found.audit.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)
