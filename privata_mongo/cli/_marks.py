"""``rights restrict|lift-restriction|object|withdraw-objection|consent|withdraw-consent``.

Each marks the subject's documents over its data map (``Rights.restrict`` …) and reports the
subject's own documents marked. For an objection or a consent, ``--purpose`` is the purpose
objected or consented to, and the audit records' purpose is ``data-subject-request``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from privata_mongo.cli._app import Db, Json, KeyVault, Uri
from privata_mongo.cli._request import Request, named_subject, required
from privata_mongo.cli._rights import (
    LEGAL_OBLIGATION,
    SUBJECT_REQUEST,
    Actor,
    FieldOpt,
    LegalBasis,
    ModelOpt,
    Models,
    Purpose,
    SubjectArg,
    rights_app,
)

__all__: list[str] = []

Concerned = Annotated[
    str | None,
    typer.Option("--purpose", help="The purpose objected or consented to.", show_default=False),
]
Source = Annotated[
    str | None,
    typer.Option(
        "--source", help="Where the consent was given (e.g. web-form).", show_default=False
    ),
]


def _mark(
    request: Request,
    right: str,
    named: tuple[str, str | None, str | None],
    change: Callable[[Any, str], int],
    **extra: Any,
) -> None:
    """Locate the subject, apply ``change`` to it, and report its documents marked."""
    with request.serve() as (output, rights, classes):
        pseudonym = rights.pseudonym(named_subject(*named, classes))
        count = change(rights, pseudonym)
    output.result(
        {"right": right, "pseudonym": pseudonym, "documents": count, **extra},
        f"{right}: {count} documents of {pseudonym}",
    )


def _concerned(purpose: str | None) -> str:
    return required(purpose, "--purpose", "name the purpose concerned (e.g. marketing)")


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
    _mark(
        Request(models, actor, purpose, legal_basis, uri, db, key_vault, json_output),
        "restrict",
        (subject, model, field),
        lambda rights, p: rights.restrict(p, allowed_purposes=allowed),
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
    _mark(
        Request(models, actor, purpose, legal_basis, uri, db, key_vault, json_output),
        "lift-restriction",
        (subject, model, field),
        lambda rights, p: rights.lift_restriction(p),
    )


@rights_app.command("object")
def object_(
    subject: SubjectArg,
    concerned: Concerned = None,
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
    _mark(
        Request(models, actor, SUBJECT_REQUEST, legal_basis, uri, db, key_vault, json_output),
        "object",
        (subject, model, field),
        lambda rights, p: rights.object(p, objected),
        purpose=objected,
    )


@rights_app.command("withdraw-objection")
def withdraw_objection(
    subject: SubjectArg,
    concerned: Concerned = None,
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
    _mark(
        Request(models, actor, SUBJECT_REQUEST, legal_basis, uri, db, key_vault, json_output),
        "withdraw-objection",
        (subject, model, field),
        lambda rights, p: rights.withdraw_objection(p, objected),
        purpose=objected,
    )


@rights_app.command("consent")
def consent(
    subject: SubjectArg,
    concerned: Concerned = None,
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
    where = required(source, "--source", "name where the consent was given")
    notice = required(notice_version, "--notice-version", "name the notice consented to")
    _mark(
        Request(models, actor, SUBJECT_REQUEST, legal_basis, uri, db, key_vault, json_output),
        "consent",
        (subject, model, field),
        lambda rights, p: rights.consent(p, given, source=where, notice_version=notice),
        purpose=given,
    )


@rights_app.command("withdraw-consent")
def withdraw_consent(
    subject: SubjectArg,
    concerned: Concerned = None,
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
    _mark(
        Request(models, actor, SUBJECT_REQUEST, legal_basis, uri, db, key_vault, json_output),
        "withdraw-consent",
        (subject, model, field),
        lambda rights, p: rights.withdraw_consent(p, given, source=source),
        purpose=given,
    )
