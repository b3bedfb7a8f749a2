"""``rights …`` and ``retention enforce``: a data subject's request, answered from a terminal.

Thin layers over ``privata_mongo.Rights``, which serves the mongoengine models ``--models``
names: the command connects those models to the target database for its duration (through
the facade, so every read is decrypted and audited as the application's), runs one right
under the access context of ``--actor``/``--purpose``/``--legal-basis`` and reports.

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
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from privata_mongo.cli._app import Db, Json, KeyVault, Uri, _models, _when, app
from privata_mongo.cli._common import Output, Target, refusals

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

_client: ContextVar[Any] = ContextVar("privata_cli_rights_client")


def _given_client(*_args: Any, **_kwargs: Any) -> Any:
    """The command's open client, as the ``mongo_client_class`` mongoengine instantiates.

    One function for every command, so the facade's client class is built once.
    """
    return _client.get()


def _required(value: str | None, option: str, why: str) -> str:
    if value is None or not value.strip():
        raise typer.BadParameter(f"{why}; give it with {option}", param_hint=option)
    return value


def _mongoengine_models(models: str | None) -> list[Any]:
    """The mongoengine document classes ``--models`` names (Beanie's are served by AsyncRights)."""
    import mongoengine

    if not models:
        raise typer.BadParameter(
            "name the application's models with --models module[:Model]", param_hint="--models"
        )
    found = [
        m
        for m in _models(models)
        if issubclass(m, mongoengine.Document) and not m._meta.get("abstract")
    ]
    if not found:
        raise typer.BadParameter(
            f"{models} defines no mongoengine Document: the rights commands serve mongoengine "
            "models (Beanie applications call privata_mongo.AsyncRights)",
            param_hint="--models",
        )
    return found


@contextmanager
def _serving(
    output: Output,
    target: Target,
    models: str | None,
    *,
    actor: str | None,
    purpose: str,
    legal_basis: str,
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The ``Rights`` of the models, connected to the target, under the command's context."""
    import mongoengine

    import privata_mongo.mongoengine as facade
    from privata_mongo.context import access_context
    from privata_mongo.rights import Rights

    who = _required(actor, "--actor", "name who answers the request (the audit records' actor)")
    classes = _mongoengine_models(models)
    aliases = sorted(
        {c._meta.get("db_alias") or mongoengine.DEFAULT_CONNECTION_NAME for c in classes}
    )
    with refusals(output), target.connect() as client:
        database = target.db(client)
        token = _client.set(client)
        try:
            for alias in aliases:
                facade.connect(
                    db=database.name,
                    alias=alias,
                    mongo_client_class=_given_client,
                    uuidRepresentation="standard",
                )
            with access_context(actor=who, purpose=purpose, legal_basis=legal_basis):
                yield Rights(classes), {c.__name__: c for c in classes}
        finally:
            for alias in aliases:
                mongoengine.disconnect(alias)
            _client.reset(token)


def _subject(value: str, model: str | None, field: str | None, classes: Mapping[str, Any]) -> Any:
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
    cls = _model(model, classes)
    if field is not None:
        return Subject(model=model, field=field, value=value)
    id_field = cls._fields[cls._meta["id_field"]]
    try:
        id = id_field.to_python(value)
    except (TypeError, ValueError):
        raise typer.BadParameter(f"SUBJECT is not an id of {model}", param_hint="SUBJECT") from None
    return Subject(model=model, id=id_field.to_mongo(id))


def _model(name: str, classes: Mapping[str, Any]) -> Any:
    if name not in classes:
        raise typer.BadParameter(
            f"{name} is not one of the models served ({', '.join(sorted(classes))})",
            param_hint="--model",
        )
    return classes[name]


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
    """Everything held about the subject (Art. 15): its documents and its processing record."""
    output = Output(json_output)
    target = Target.of(uri, db)
    target.key_vault(key_vault)
    with _serving(
        output, target, models, actor=actor, purpose=purpose, legal_basis=legal_basis
    ) as (rights, classes):
        found = rights.access(_subject(subject, model, field, classes))
    document = {
        "pseudonym": found.pseudonym,
        "documents": dict(found.documents),
        "processing": found.processing,
    }
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
    output = Output(json_output)
    target = Target.of(uri, db)
    target.key_vault(key_vault)
    with _serving(
        output, target, models, actor=actor, purpose=purpose, legal_basis=legal_basis
    ) as (rights, classes):
        named = _subject(subject, model, field, classes)
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

    output = Output(json_output)
    target = Target.of(uri, db)
    target.key_vault(key_vault)
    name = _required(model, "--model", "name the model of the document to correct")
    with _serving(
        output, target, models, actor=actor, purpose=purpose, legal_basis=legal_basis
    ) as (rights, classes):
        cls = _model(name, classes)
        changes = _changes(cls, assignments or [])
        named = _subject(subject, model, field, classes)
        pseudonym = rights.pseudonym(named)
        document_id = None
        if id is not None:
            document_id = cls._fields[cls._meta["id_field"]].to_python(id)
        try:
            done = rights.rectify(pseudonym, name, changes, id=document_id)
        except mongoengine.ValidationError as error:
            fields = ", ".join(sorted((error.errors or {name: None}).keys()))
            raise typer.BadParameter(
                f"{name} refused the change of {fields} (the value is not shown)",
                param_hint="--set",
            ) from None
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
    output = Output(json_output)
    target = Target.of(uri, db)
    target.key_vault(key_vault)
    if not yes and not sys.stdin.isatty():
        raise typer.BadParameter(
            "erasure cannot be undone: confirm it with --yes (no terminal to ask on)",
            param_hint="--yes",
        )
    with _serving(
        output, target, models, actor=actor, purpose=purpose, legal_basis=legal_basis
    ) as (rights, classes):
        named = _subject(subject, model, field, classes)
        if not yes:
            pseudonym = rights.pseudonym(named)
            typer.confirm(f"Erase {pseudonym}? This cannot be undone", abort=True, err=True)
        receipt = rights.erase(named)
    output.result(receipt.document(), _receipt_table(receipt))


def _marked(output: Output, right: str, pseudonym: str, count: int, **extra: Any) -> None:
    _status(
        output,
        {"right": right, "pseudonym": pseudonym, "documents": count, **extra},
        f"{right}: {count} documents of {pseudonym}",
    )


def _marking(
    right: str,
    subject: str,
    models: str | None,
    model: str | None,
    field: str | None,
    context: Mapping[str, Any],
    change: Any,
    **extra: Any,
) -> None:
    output = Output(context["json_output"])
    target = Target.of(context["uri"], context["db"])
    target.key_vault(context["key_vault"])
    with _serving(
        output,
        target,
        models,
        actor=context["actor"],
        purpose=context["purpose"],
        legal_basis=context["legal_basis"],
    ) as (rights, classes):
        pseudonym = rights.pseudonym(_subject(subject, model, field, classes))
        count = change(rights, pseudonym)
    _marked(output, right, pseudonym, count, **extra)


@rights_app.command("restrict")
def restrict(
    subject: SubjectArg,
    models: Models = None,
    model: ModelOpt = None,
    field: FieldOpt = None,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="A purpose still allowed (e.g. legal-claims); repeat."),
    ] = None,
    actor: Actor = None,
    purpose: Purpose = SUBJECT_REQUEST,
    legal_basis: LegalBasis = LEGAL_OBLIGATION,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    json_output: Json = False,
) -> None:
    """Restrict processing of the subject (Art. 18) on every document of its data map."""
    allowed = tuple(allow or ())
    _marking(
        "restrict",
        subject,
        models,
        model,
        field,
        locals(),
        lambda r, p: r.restrict(p, allowed_purposes=allowed),
        allowed_purposes=list(allowed),
    )


@rights_app.command("lift-restriction")
def lift_restriction(
    subject: SubjectArg,
    models: Models = None,
    model: ModelOpt = None,
    field: FieldOpt = None,
    actor: Actor = None,
    purpose: Purpose = SUBJECT_REQUEST,
    legal_basis: LegalBasis = LEGAL_OBLIGATION,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    json_output: Json = False,
) -> None:
    """Lift the subject's restriction (its objections stay)."""
    _marking(
        "lift-restriction",
        subject,
        models,
        model,
        field,
        locals(),
        lambda r, p: r.lift_restriction(p),
    )


def _concerned(purpose: str | None) -> str:
    return _required(purpose, "--purpose", "name the purpose concerned (e.g. marketing)")


@rights_app.command("object")
def object_(
    subject: SubjectArg,
    concerned: ConcernedPurpose = None,
    models: Models = None,
    model: ModelOpt = None,
    field: FieldOpt = None,
    actor: Actor = None,
    legal_basis: LegalBasis = LEGAL_OBLIGATION,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    json_output: Json = False,
) -> None:
    """Record the subject's objection (Art. 21) to processing for --purpose."""
    objected = _concerned(concerned)
    context = {**locals(), "purpose": SUBJECT_REQUEST}
    _marking(
        "object",
        subject,
        models,
        model,
        field,
        context,
        lambda r, p: r.object(p, objected),
        purpose=objected,
    )


@rights_app.command("withdraw-objection")
def withdraw_objection(
    subject: SubjectArg,
    concerned: ConcernedPurpose = None,
    models: Models = None,
    model: ModelOpt = None,
    field: FieldOpt = None,
    actor: Actor = None,
    legal_basis: LegalBasis = LEGAL_OBLIGATION,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    json_output: Json = False,
) -> None:
    """Withdraw the subject's objection to --purpose."""
    objected = _concerned(concerned)
    context = {**locals(), "purpose": SUBJECT_REQUEST}
    _marking(
        "withdraw-objection",
        subject,
        models,
        model,
        field,
        context,
        lambda r, p: r.withdraw_objection(p, objected),
        purpose=objected,
    )


Source = Annotated[
    str | None,
    typer.Option(
        "--source", help="Where the consent was given (e.g. web-form).", show_default=False
    ),
]


@rights_app.command("consent")
def consent(
    subject: SubjectArg,
    concerned: ConcernedPurpose = None,
    source: Source = None,
    notice_version: Annotated[
        str | None,
        typer.Option(
            "--notice-version", help="The privacy notice the subject saw.", show_default=False
        ),
    ] = None,
    models: Models = None,
    model: ModelOpt = None,
    field: FieldOpt = None,
    actor: Actor = None,
    legal_basis: LegalBasis = LEGAL_OBLIGATION,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    json_output: Json = False,
) -> None:
    """Record the subject's consent to --purpose (Art. 6(1)(a), 7) with its source and notice."""
    given = _concerned(concerned)
    where = _required(source, "--source", "name where the consent was given")
    notice = _required(notice_version, "--notice-version", "name the notice version consented to")
    context = {**locals(), "purpose": SUBJECT_REQUEST}
    _marking(
        "consent",
        subject,
        models,
        model,
        field,
        context,
        lambda r, p: r.consent(p, given, source=where, notice_version=notice),
        purpose=given,
    )


@rights_app.command("withdraw-consent")
def withdraw_consent(
    subject: SubjectArg,
    concerned: ConcernedPurpose = None,
    source: Source = None,
    models: Models = None,
    model: ModelOpt = None,
    field: FieldOpt = None,
    actor: Actor = None,
    legal_basis: LegalBasis = LEGAL_OBLIGATION,
    uri: Uri = None,
    db: Db = None,
    key_vault: KeyVault = None,
    json_output: Json = False,
) -> None:
    """Withdraw the subject's consent to --purpose."""
    given = _concerned(concerned)
    context = {**locals(), "purpose": SUBJECT_REQUEST}
    _marking(
        "withdraw-consent",
        subject,
        models,
        model,
        field,
        context,
        lambda r, p: r.withdraw_consent(p, given, source=source),
        purpose=given,
    )


def _bar(output: Output) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=output.err,
    )


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
    output = Output(json_output)
    target = Target.of(uri, db)
    target.key_vault(key_vault)
    bar = _bar(output)
    task = bar.add_task("replay erasures", total=None)
    with (
        _serving(output, target, models, actor=actor, purpose=purpose, legal_basis=legal_basis) as (
            rights,
            _,
        ),
        bar,
    ):
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
    output = Output(json_output)
    target = Target.of(uri, db)
    target.key_vault(key_vault)
    when = _when(now, "--now")
    with _serving(
        output, target, models, actor=actor, purpose=purpose, legal_basis=legal_basis
    ) as (rights, _):
        receipts = rights.enforce_retention(now=when)
    table = Table(
        "pseudonym", "models", "key shredded", title=f"{len(receipts)} subjects past retention"
    )
    for r in receipts:
        table.add_row(
            r.pseudonym, ", ".join(m.model for m in r.models), "yes" if r.key_shredded else "no"
        )
    output.result({"erased": [r.document() for r in receipts]}, table)
