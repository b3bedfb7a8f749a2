"""``rights access|export|rectify|erase``, and what every ``rights`` command shares.

A data subject's request, answered from a terminal. The commands (here, in ``_marks`` and in
``_retention``) are thin layers over ``privata_mongo.Rights`` (or ``AsyncRights`` for Beanie
models): a ``Request`` (``_request``) connects the ``--models`` classes to the target database
for the command's duration, runs one right under the access context of ``--actor``/
``--purpose``/``--legal-basis``, and reports.

A SUBJECT is a pseudonym (``pseu_`` + 32 hex), the app id of a document of ``--model``, or,
with ``--field``, the value of a searchable identity field of ``--model`` (found through the
blind index). ``-`` reads the SUBJECT from stdin, so a value such as an e-mail address stays
out of the process list. Messages and ``--json`` status lines name pseudonyms, models and
fields only; what ``access`` and ``export`` print is the data the operator asked for.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from privata_mongo.cli._app import Db, Json, KeyVault, Uri, app
from privata_mongo.cli._common import EXIT_REFUSED, Output
from privata_mongo.cli._request import (
    Request,
    beanie_id,
    is_beanie,
    model_named,
    named_subject,
    required,
)

__all__ = ["retention_app", "rights_app"]

rights_app = typer.Typer(
    help="Data subjects' rights (GDPR Art. 15-21) over an application's models.",
    no_args_is_help=True,
)
retention_app = typer.Typer(help="Retention periods of the models.", no_args_is_help=True)
app.add_typer(rights_app, name="rights")
app.add_typer(retention_app, name="retention")

SUBJECT_REQUEST = "data-subject-request"
"""The purpose of the access context when a command has none of its own."""
LEGAL_OBLIGATION = "art6_1c"
"""The default legal basis: answering a data subject's request is a legal obligation."""

Models = Annotated[
    str | None,
    typer.Option(
        "--models", help="module (every model of it) or module:Model.", show_default=False
    ),
]
SubjectArg = Annotated[
    str,
    typer.Argument(
        help="A pseudonym, an id of --model, or a value of --field; '-' reads it from stdin.",
        show_default=False,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", help="The model SUBJECT is an id (or --field value) of.", show_default=False
    ),
]
FieldOpt = Annotated[
    str | None,
    typer.Option(
        "--field",
        help="A searchable identity field of --model; SUBJECT is its value.",
        show_default=False,
    ),
]
Actor = Annotated[
    str | None,
    typer.Option(
        "--actor", help="Who answers the request (the audit records' actor).", show_default=False
    ),
]
Purpose = Annotated[str, typer.Option("--purpose", help="Why (the audit records' purpose).")]
LegalBasis = Annotated[str, typer.Option("--legal-basis", help="Under which legal basis.")]
ConcernedPurpose = Annotated[
    str | None,
    typer.Option("--purpose", help="The purpose objected or consented to.", show_default=False),
]


def _status(output: Output, document: Mapping[str, Any], text: str) -> None:
    output.result(document, text)


def _bson_json(value: Any, indent: int | None = None) -> str:
    from bson import json_util

    return json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS, indent=indent)


@contextmanager
def _written(out: Path) -> Iterator[Any]:
    """A binary file that appears at ``out`` only once complete (no partial copy of data)."""
    partial = out.with_name(out.name + ".partial")
    try:
        with partial.open("wb") as file:
            yield file
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


@rights_app.command("access")
def access(
    subject: SubjectArg,
    models: Models = None,
    model: ModelOpt = None,
    field: FieldOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the data here (JSON), not to stdout.")
    ] = None,
    actor: Actor = None,
    purpose: Purpose = SUBJECT_REQUEST,
    legal_basis: LegalBasis = LEGAL_OBLIGATION,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    json_output: Json = False,
) -> None:
    """Everything held about the subject (Art. 15): its documents and its processing record.

    With regions configured, also where each part is stored (``storage``), as an export says.
    """
    request = Request(models, actor, purpose, legal_basis, uri, db, key_vault, json_output)
    with request.serve() as (output, rights, classes):
        found = rights.access(named_subject(subject, model, field, classes))
    document = {
        "pseudonym": found.pseudonym,
        "documents": dict(found.documents),
        "processing": found.processing,
    }
    if found.storage is not None and found.storage.region is not None:
        document["storage"] = found.storage.document()  # as an export says it
    counts = {name: len(docs) for name, docs in found.documents.items()}
    if out is None:
        typer.echo(_bson_json(document, indent=None if json_output else 2))
        return
    with _written(out) as file:
        file.write(_bson_json(document, indent=2).encode())
    _status(
        output,
        {"pseudonym": found.pseudonym, "documents": counts, "out": str(out)},
        f"wrote {sum(counts.values())} documents of {found.pseudonym} to {out}",
    )


@rights_app.command("export")
def export(
    subject: SubjectArg,
    models: Models = None,
    model: ModelOpt = None,
    field: FieldOpt = None,
    format: Annotated[
        str, typer.Option("--format", help="json, csv (a zip, one file per model) or xml.")
    ] = "json",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the export here, not to stdout.")
    ] = None,
    actor: Actor = None,
    purpose: Purpose = SUBJECT_REQUEST,
    legal_basis: LegalBasis = LEGAL_OBLIGATION,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    json_output: Json = False,
) -> None:
    """The subject's data, portable (Art. 20), streamed one batch at a time."""
    from privata_mongo.core.rights.export import FORMATS

    if format not in FORMATS:
        raise typer.BadParameter(f"one of {', '.join(FORMATS)}", param_hint="--format")
    request = Request(models, actor, purpose, legal_basis, uri, db, key_vault, json_output)
    with request.serve() as (output, rights, classes):
        named = named_subject(subject, model, field, classes)
        pseudonym = rights.pseudonym(named)
        if out is None:
            counts = rights.export(pseudonym, typer.get_binary_stream("stdout"), format)
        else:
            with _written(out) as file:
                counts = rights.export(pseudonym, file, format)
    if out is not None:
        _status(
            output,
            {"pseudonym": pseudonym, "documents": counts, "format": format, "out": str(out)},
            f"exported {sum(counts.values())} documents of {pseudonym} to {out} ({format})",
        )


def _changes(cls: Any, assignments: list[str]) -> dict[str, Any]:
    """``field=value`` pairs, each value converted by the model's own field."""
    changes: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not name:
            raise typer.BadParameter("each change is field=value", param_hint="--set")
        if is_beanie(cls):  # pydantic validates the assignment itself (AsyncRights.rectify)
            changes[name] = value
            continue
        field = cls._fields.get(name)
        try:
            changes[name] = field.to_python(value) if field is not None else value
        except (TypeError, ValueError):
            raise typer.BadParameter(
                f"{cls.__name__}.{name} cannot hold that value (not shown)", param_hint="--set"
            ) from None
    if not changes:
        raise typer.BadParameter("name the changes with --set field=value", param_hint="--set")
    return changes


@rights_app.command("rectify")
def rectify(
    subject: SubjectArg,
    model: Annotated[
        str | None,
        typer.Option("--model", help="The model of the document to correct.", show_default=False),
    ] = None,
    assignments: Annotated[
        list[str] | None, typer.Option("--set", help="field=value; repeat for several.")
    ] = None,
    id: Annotated[
        str | None,
        typer.Option(
            "--id",
            help="The document, when the subject has several of --model.",
            show_default=False,
        ),
    ] = None,
    models: Models = None,
    field: FieldOpt = None,
    actor: Actor = None,
    purpose: Purpose = SUBJECT_REQUEST,
    legal_basis: LegalBasis = LEGAL_OBLIGATION,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    json_output: Json = False,
) -> None:
    """Correct fields of the subject's document (Art. 16), validated by the model."""
    import mongoengine
    import pydantic
    from pymongo.errors import DuplicateKeyError

    name = required(model, "--model", "name the model of the document to correct")
    request = Request(models, actor, purpose, legal_basis, uri, db, key_vault, json_output)
    with request.serve() as (output, rights, classes):
        cls = model_named(name, classes)
        changes = _changes(cls, assignments or [])
        named = named_subject(subject, model, field, classes)
        pseudonym = rights.pseudonym(named)
        document_id = None
        if id is not None and is_beanie(cls):
            document_id = beanie_id(id)
        elif id is not None:
            document_id = cls._fields[cls._meta["id_field"]].to_python(id)
        try:
            done = rights.rectify(pseudonym, name, changes, id=document_id)
        except pydantic.ValidationError as error:  # its message quotes the input
            fields = ", ".join(sorted({str(e["loc"][0]) for e in error.errors() if e["loc"]}))
            raise typer.BadParameter(
                f"{name} refused the change of {fields or 'a field'} (the value is not shown)",
                param_hint="--set",
            ) from None
        except DuplicateKeyError:  # Beanie's: the server's message quotes the duplicate value
            raise typer.BadParameter(
                f"another {name} already holds that value of a unique field (not shown)",
                param_hint="--set",
            ) from None
        except mongoengine.ValidationError as error:
            fields = ", ".join(sorted((error.errors or {name: None}).keys()))
            raise typer.BadParameter(
                f"{name} refused the change of {fields} (the value is not shown)",
                param_hint="--set",
            ) from None
        except mongoengine.NotUniqueError:  # its message would quote the duplicate value
            raise typer.BadParameter(
                f"another {name} already holds that value of a unique field (not shown)",
                param_hint="--set",
            ) from None
        except mongoengine.OperationError:  # the server's message may quote a value
            output.problem(f"the database refused the change of {name} (OperationError)")
            raise typer.Exit(EXIT_REFUSED) from None
    _status(
        output,
        {"pseudonym": pseudonym, "model": name, "id": str(done), "fields": sorted(changes)},
        f"rectified {', '.join(sorted(changes))} of {name} {done} ({pseudonym})",
    )


def _receipt_table(receipt: Any) -> Table:
    table = Table(
        "model",
        "collection",
        "policy",
        "identity deleted",
        "deleted",
        "kept",
        title=f"erased {receipt.pseudonym} at {receipt.erased_at:%Y-%m-%d %H:%M:%S} UTC",
    )
    for m in receipt.models:
        table.add_row(
            m.model,
            m.collection,
            m.policy,
            str(m.identity_deleted),
            str(m.clinical_deleted),
            str(m.clinical_kept),
        )
    table.caption = (
        f"key shredded: {'yes' if receipt.key_shredded else 'no'}; digest {receipt.digest}"
    )
    return table


@rights_app.command("erase")
def erase(
    subject: SubjectArg,
    models: Models = None,
    model: ModelOpt = None,
    field: FieldOpt = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Erase without asking (required without a terminal).")
    ] = False,
    actor: Actor = None,
    purpose: Purpose = SUBJECT_REQUEST,
    legal_basis: LegalBasis = LEGAL_OBLIGATION,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    json_output: Json = False,
) -> None:
    """Erase the subject (Art. 17): shred its key, apply each model's policy; print the receipt."""
    if not yes and not sys.stdin.isatty():
        raise typer.BadParameter(
            "erasure cannot be undone: confirm it with --yes (no terminal to ask on)",
            param_hint="--yes",
        )
    request = Request(models, actor, purpose, legal_basis, uri, db, key_vault, json_output)
    with request.serve() as (output, rights, classes):
        named = named_subject(subject, model, field, classes)
        if not yes:
            pseudonym = rights.pseudonym(named)
            typer.confirm(f"Erase {pseudonym}? This cannot be undone", abort=True, err=True)
        receipt = rights.erase(named)
    output.result(receipt.document(), _receipt_table(receipt))
