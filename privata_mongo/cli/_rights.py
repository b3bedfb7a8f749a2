"""``rights access|export|rectify|erase``, and what every ``rights`` command shares.

A data subject's request, answered from a terminal. The commands (here, in ``_marks`` and in
``_retention``) are thin layers over ``privata_mongo.Rights``, which serves the mongoengine
models ``--models`` names: a ``Request`` connects those models to the target database for the
command's duration (through the facade, so every read is decrypted and audited as the
application's), runs one right under the access context of ``--actor``/``--purpose``/
``--legal-basis``, and reports.

A SUBJECT is a pseudonym (``pseu_`` + 32 hex), the app id of a document of ``--model``, or,
with ``--field``, the value of a searchable identity field of ``--model`` (found through the
blind index). ``-`` reads the SUBJECT from stdin, so a value such as an e-mail address stays
out of the process list. Messages and ``--json`` status lines name pseudonyms, models and
fields only; what ``access`` and ``export`` print is the data the operator asked for.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from privata_mongo.cli._app import Db, Json, KeyVault, Uri, _models, app
from privata_mongo.cli._common import (
    EXIT_REFUSED,
    SERVER_TIMEOUT_MS,
    Output,
    Target,
    refusals,
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

_client: ContextVar[Any] = ContextVar("privata_cli_rights_client")


def _given_client(*_args: Any, **_kwargs: Any) -> Any:
    """The command's open client, as the ``mongo_client_class`` mongoengine instantiates.

    One function for every command, so the facade's client class is built once.
    """
    return _client.get()


def required(value: str | None, option: str, why: str) -> str:
    if value is None or not value.strip():
        raise typer.BadParameter(f"{why}; give it with {option}", param_hint=option)
    return value


def _served_models(models: str | None) -> tuple[str, list[Any]]:
    """The ODM and the document classes ``--models`` names: mongoengine's, or Beanie's.

    One command serves the models of one ODM (``Rights`` or ``AsyncRights``); a module of both
    is named one model at a time.
    """
    import sys as _sys

    if not models:
        raise typer.BadParameter(
            "name the application's models with --models module[:Model]", param_hint="--models"
        )
    named = _models(models)
    found: dict[str, list[Any]] = {"mongoengine": [], "beanie": []}
    mongoengine = _sys.modules.get("mongoengine")
    beanie = _sys.modules.get("beanie")
    for model in named:
        if mongoengine is not None and issubclass(model, mongoengine.Document):
            if not model._meta.get("abstract"):
                found["mongoengine"].append(model)
        elif beanie is not None and issubclass(model, beanie.Document):
            found["beanie"].append(model)
    served = [(odm, classes) for odm, classes in found.items() if classes]
    if len(served) != 1:
        raise typer.BadParameter(
            f"{models} defines no mongoengine or Beanie Document"
            if not served
            else f"{models} defines models of both mongoengine and Beanie: name one ODM's "
            "models at a time (module:Model)",
            param_hint="--models",
        )
    return served[0]


class _Blocking:
    """An ``AsyncRights`` whose calls return their results: each coroutine run to its end.

    The commands are written once, against ``Rights``; a Beanie application's models are
    served by ``AsyncRights`` on one event loop for the command's duration. Each call's task
    starts from a copy of the caller's context, so the access context of the command is the
    calls' own.
    """

    def __init__(self, rights: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._rights = rights
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._rights, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if inspect.iscoroutine(result):
                return self._loop.run_until_complete(result)
            return result

        return call


@dataclass(frozen=True)
class Request:
    """Where and as whom a rights command runs: its connection and access-context options."""

    models: str | None
    actor: str | None
    purpose: str
    legal_basis: str
    uri: str | None
    db: str | None
    key_vault: str | None
    json: bool

    @contextmanager
    def serve(self) -> Iterator[tuple[Output, Any, dict[str, Any]]]:
        """The output, the rights of the models and the models by name, for the block.

        The models are connected to the target database through their facade for the block
        (mongoengine: each connection alias they use, one already connected in this process
        left as it is; Beanie: ``init_beanie`` on an async client of the same server), under
        the access context of the options.
        """
        from privata_mongo.context import access_context

        output = Output(self.json)
        target = Target.of(self.uri, self.db)
        target.key_vault(self.key_vault)
        who = required(self.actor, "--actor", "name who answers the request (the records' actor)")
        odm, classes = _served_models(self.models)
        by_name = {c.__name__: c for c in classes}
        with refusals(output), target.connect() as client:
            database = target.db(client)
            connected = _beanie if odm == "beanie" else _mongoengine
            context = access_context(actor=who, purpose=self.purpose, legal_basis=self.legal_basis)
            with connected(client, database.name, classes) as rights, context:
                yield output, rights, by_name


@contextmanager
def _mongoengine(client: Any, database: str, classes: list[Any]) -> Iterator[Any]:
    """``Rights`` of mongoengine models connected to ``client`` for the block."""
    import mongoengine

    import privata_mongo.mongoengine as facade
    from privata_mongo.rights import Rights

    aliases = sorted(
        {c._meta.get("db_alias") or mongoengine.DEFAULT_CONNECTION_NAME for c in classes}
    )
    opened: list[str] = []
    token = _client.set(client)
    try:
        for alias in aliases:
            facade.connect(
                db=database,
                alias=alias,
                mongo_client_class=_given_client,
                uuidRepresentation="standard",
            )
            opened.append(alias)
        yield Rights(classes)
    finally:
        for alias in opened:
            mongoengine.disconnect(alias)
        _client.reset(token)


def async_twin(client: Any) -> Any:
    """An async client of the server (or in-memory store) ``client`` talks to.

    A real server is reached at the address the sync client is connected to, with its
    options; the embedded backend's twin shares the mongomock store.
    """
    import pymongo

    from privata_mongo.embedded import AsyncMockClient

    store = getattr(client, "_store", None)
    if store is not None:  # mongomock
        return AsyncMockClient(store)
    host, port = client.address
    return pymongo.AsyncMongoClient(
        host, port, serverSelectionTimeoutMS=SERVER_TIMEOUT_MS, uuidRepresentation="standard"
    )


@contextmanager
def _beanie(client: Any, database: str, classes: list[Any]) -> Iterator[Any]:
    """``AsyncRights`` of Beanie models, served on one event loop for the block."""
    import privata_mongo.beanie as facade
    from privata_mongo.rights import AsyncRights

    loop = asyncio.new_event_loop()
    twin = async_twin(client)
    try:
        loop.run_until_complete(
            facade.init_beanie(database=twin[database], document_models=classes)
        )
        yield _Blocking(AsyncRights(classes), loop)
    finally:
        loop.run_until_complete(twin.close())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _is_beanie(cls: Any) -> bool:
    return hasattr(cls, "model_fields") and not hasattr(cls, "_fields")


def _beanie_id(value: str) -> Any:
    """A Beanie document id given on the command line: an ObjectId when it reads as one."""
    from bson import ObjectId

    return ObjectId(value) if ObjectId.is_valid(value) else value


def named_subject(
    value: str, model: str | None, field: str | None, classes: Mapping[str, Any]
) -> Any:
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
    if _is_beanie(cls):
        return Subject(model=model, id=_beanie_id(value))
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
    request = Request(models, actor, purpose, legal_basis, uri, db, key_vault, json_output)
    with request.serve() as (output, rights, classes):
        found = rights.access(named_subject(subject, model, field, classes))
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
        if _is_beanie(cls):  # pydantic validates the assignment itself (AsyncRights.rectify)
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
        cls = _model(name, classes)
        changes = _changes(cls, assignments or [])
        named = named_subject(subject, model, field, classes)
        pseudonym = rights.pseudonym(named)
        document_id = None
        if id is not None and _is_beanie(cls):
            document_id = _beanie_id(id)
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
