"""Consent (GDPR Art. 6(1)(a), 7): the history of each subject's consents, and their markers.

Consent is per data subject and purpose. Each consent given or withdrawn is one event appended
to the consent history (``privata_consents`` by default, in the database of the data): the
subject's pseudonym, the purpose, the event, when, the source the consent came through (``web
form``, ``paper form``), the version of the notice the subject was shown, and who recorded it
under which legal basis. The history is never changed; the latest event of a subject and
purpose is the state in force. It holds no personal value: the source and the notice version
are written by the application for an auditor and should name the channel and the notice, not
the person.

What the server enforces is a copy of that state on both halves of every document of the
subject, as the purposes consented to, ``_rst.c``, inside the restriction marker
(``core.rights.restriction`` says why a marker lives on the clinical row: counts, pages,
``distinct`` and aggregations stay one server-side filter). An operation whose access context
declares a consent-based legal basis (``Settings.consent_legal_bases``) sees only the subjects
whose marker holds its purpose (``visibility(..., consent=True)``).

Crash order: the state that allows processing is written last. Giving consent appends the event
first, then marks the documents; withdrawing unmarks the documents first, then appends the
event. A failure part-way leaves a subject not processed under a consent it gave (fail closed),
never processed under one it withdrew; running the same call again completes it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from privata_mongo.core.audit import AccessContext
from privata_mongo.core.rights.restriction import RESTRICTION_FIELD
from privata_mongo.errors import ConfigurationError

__all__ = [
    "CONSENT",
    "CONSENTED_FIELD",
    "DEFAULT_CONSENT_BASES",
    "GIVEN",
    "WITHDRAWN",
    "WITHDRAW_CONSENT",
    "ConsentEvent",
    "consent_based",
    "give_change",
    "latest",
    "text",
    "withdraw_change",
]

CONSENT = "consent"
WITHDRAW_CONSENT = "withdraw_consent"
"""Audit operation names of giving and withdrawing consent."""

GIVEN = "given"
WITHDRAWN = "withdrawn"
"""The two events of a consent history."""

CONSENTED_FIELD = f"{RESTRICTION_FIELD}.c"
"""The purposes a subject consents to, on both halves of its documents."""

DEFAULT_CONSENT_BASES = frozenset({"consent", "art6_1a", "art9_2a"})
"""Legal bases that are consent: GDPR Art. 6(1)(a) and, for health data, Art. 9(2)(a)."""


def consent_based(legal_basis: str | None, bases: Iterable[str]) -> bool:
    """Whether ``legal_basis`` is one of ``bases`` (compared without case or outer spaces).

    Legal bases are free text written by the application (``art6_1a``, ``Consent``); the
    comparison forgives case so that a capitalised basis is not silently treated as another.
    """
    if legal_basis is None:
        return False
    wanted = legal_basis.strip().casefold()
    return any(wanted == basis.strip().casefold() for basis in bases)


def text(value: Any, what: str) -> str:
    """``value`` as a non-empty string, or ``ConfigurationError`` naming ``what`` it is.

    Raises:
        ConfigurationError: ``value`` is not a string, or is empty or blank.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"consent: the {what} is a non-empty string (for instance 'research' for a "
            "purpose, 'web form' for a source, 'v2' for a notice version)"
        )
    return value


def give_change(purpose: str) -> dict[str, Any]:
    """The marker update that adds ``purpose`` to the subject's consents."""
    return {"$addToSet": {CONSENTED_FIELD: text(purpose, "purpose")}}


def withdraw_change(purpose: str) -> dict[str, Any]:
    """The marker update that removes ``purpose`` from the subject's consents."""
    return {"$pull": {CONSENTED_FIELD: text(purpose, "purpose")}}


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One event of a consent history (names and versions, never a personal value).

    Attributes:
        subject: the subject's pseudonym.
        purpose: what the consent is for.
        event: ``given`` or ``withdrawn``.
        at: when it was recorded (the clock port: naive UTC).
        source: the channel the consent or its withdrawal came through.
        notice_version: the version of the notice the subject was shown (``None`` for a
            withdrawal, which needs no notice).
        actor: who recorded it (the access context).
        legal_basis: the legal basis of the recording operation (the access context).
        request_id: correlates the event with the application's logs.
    """

    subject: str
    purpose: str
    event: str
    at: datetime.datetime
    source: str | None
    notice_version: str | None
    actor: str | None = None
    legal_basis: str | None = None
    request_id: str | None = None

    @classmethod
    def made(
        cls,
        *,
        subject: str,
        purpose: str,
        event: str,
        at: datetime.datetime,
        access: AccessContext,
        source: str | None,
        notice_version: str | None,
    ) -> ConsentEvent:
        """An event under ``access``, its texts validated.

        Giving consent needs a source and the notice version (Art. 7(1): the controller must
        be able to show what the subject consented to, and how); a withdrawal needs neither,
        so it is as easy as giving consent (Art. 7(3)).

        Raises:
            ConfigurationError: an empty purpose, or a missing source or notice version of a
                consent given.
        """
        text(purpose, "purpose")
        if event == GIVEN or source is not None:
            text(source, "source")
        if event == GIVEN or notice_version is not None:
            text(notice_version, "notice version")
        return cls(
            subject,
            purpose,
            event,
            at,
            source,
            notice_version,
            access.actor,
            access.legal_basis,
            access.request_id,
        )

    def document(self) -> dict[str, Any]:
        """The event as stored in the consent history."""
        return {
            "subject": self.subject,
            "purpose": self.purpose,
            "event": self.event,
            "at": self.at,
            "source": self.source,
            "notice_version": self.notice_version,
            "actor": self.actor,
            "legal_basis": self.legal_basis,
            "request_id": self.request_id,
        }

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> ConsentEvent:
        """The event a stored history document holds."""
        return cls(
            subject=document["subject"],
            purpose=document["purpose"],
            event=document["event"],
            at=document["at"],
            source=document.get("source"),
            notice_version=document.get("notice_version"),
            actor=document.get("actor"),
            legal_basis=document.get("legal_basis"),
            request_id=document.get("request_id"),
        )


def latest(history: Iterable[ConsentEvent]) -> dict[str, ConsentEvent]:
    """The event in force per purpose: the latest one (history in the order it was written)."""
    state: dict[str, ConsentEvent] = {}
    for event in history:
        current = state.get(event.purpose)
        if current is None or event.at >= current.at:
            state[event.purpose] = event
    return state
