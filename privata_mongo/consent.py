"""Consent (GDPR Art. 6(1)(a), 7): give and withdraw a subject's consent to a purpose.

A data subject named by pseudonym consents to a purpose: the event is appended to the consent
history of the database (``Settings.consent_collection``, ``privata_consents`` by default) and
every document of the subject in every split collection of the database is marked with the
purpose (``core.rights.consent`` says where the state lives, and in which order it is
written). From then on an operation whose access context declares a consent-based legal basis
(``Settings.consent_legal_bases``: ``consent``, ``art6_1a``, ``art9_2a`` by default) sees, on
every read and write path, only the subjects consenting to its purpose; other legal bases are
not affected.

Each change is audited as ``consent`` or ``withdraw_consent`` with the actor, purpose and legal
basis of the access context, once per split collection, like the restriction API
(``privata_mongo.restriction``), whose marking it shares. The functions take the database as
the application holds it (``privata_mongo.mongoengine.get_db()``, a Beanie model's
``get_pymongo_collection().database``); the ``_async`` twins take the async one. They return
the number of documents of the subject marked. ``Rights.consent`` and ``AsyncRights.consent``
name the subject any way ``docs/rights.md`` allows.
"""

from __future__ import annotations

from typing import Any

from privata_mongo.core.rights.consent import (
    CONSENT,
    GIVEN,
    WITHDRAW_CONSENT,
    WITHDRAWN,
    ConsentEvent,
    give_change,
    latest,
    withdraw_change,
)
from privata_mongo.restriction import _change, _change_async, _subject

__all__ = [
    "ConsentEvent",
    "give",
    "give_async",
    "history",
    "history_async",
    "state",
    "withdraw",
    "withdraw_async",
]

_ORDER = [("at", 1), ("_id", 1)]
_INDEX = [("subject", 1), ("purpose", 1), ("at", 1)]
_INDEX_NAME = "privata_consent_subject"


def _event(
    database: Any,
    subject: str,
    purpose: str,
    event: str,
    source: str | None,
    notice_version: str | None,
) -> ConsentEvent:
    runtime = database.client.runtime
    return ConsentEvent.made(
        subject=_subject(subject),
        purpose=purpose,
        event=event,
        at=runtime.clock.now(),
        access=runtime.access(),
        source=source,
        notice_version=notice_version,
    )


def _history(database: Any) -> Any:
    """The real consent history collection of a privata database."""
    return database.inner[database.client.runtime.settings().consent_collection]


def _unindexed(database: Any) -> Any:
    """The history collection if its index was not ensured by this connection yet, else None.

    A subject's history is read by subject (``history``), so the collection is indexed on it,
    once per connection and collection, as the link index of a split collection is.
    """
    history = _history(database)
    indexes = database.client.runtime.indexes
    return None if indexes.has(database.name, history.name) else history


def _indexed(database: Any) -> None:
    database.client.runtime.indexes.add(database.name, _history(database).name)


def _append(database: Any, event: ConsentEvent) -> None:
    unindexed = _unindexed(database)
    if unindexed is not None:
        unindexed.create_index(_INDEX, name=_INDEX_NAME)
        _indexed(database)
    _history(database).insert_one(event.document())


async def _append_async(database: Any, event: ConsentEvent) -> None:
    unindexed = _unindexed(database)
    if unindexed is not None:
        await unindexed.create_index(_INDEX, name=_INDEX_NAME)
        _indexed(database)
    await _history(database).insert_one(event.document())


def give(database: Any, subject: str, purpose: str, *, source: str, notice_version: str) -> int:
    """Record ``subject``'s consent to ``purpose``; returns the documents marked.

    Args:
        database: the privata database of the subject's documents.
        subject: the subject's pseudonym.
        purpose: what the subject consents to (``"research"``).
        source: the channel the consent came through (``"web form"``), not the person.
        notice_version: the version of the notice the subject was shown.

    Raises:
        ConfigurationError: ``subject`` is not a pseudonym, or a text is empty.
    """
    event = _event(database, subject, purpose, GIVEN, source, notice_version)
    change = give_change(purpose)
    _append(database, event)
    return _change(database, event.subject, CONSENT, change)


def withdraw(database: Any, subject: str, purpose: str, *, source: str | None = None) -> int:
    """Withdraw ``subject``'s consent to ``purpose``; returns the documents of the subject.

    Withdrawing a consent never given is recorded too and changes nothing else: it is the
    subject's statement, worth keeping, and a withdrawal must not fail on what was or was not
    recorded before (Art. 7(3): as easy to withdraw as to give).

    Raises:
        ConfigurationError: ``subject`` is not a pseudonym, or a text is empty.
    """
    event = _event(database, subject, purpose, WITHDRAWN, source, None)
    marked = _change(database, event.subject, WITHDRAW_CONSENT, withdraw_change(purpose))
    _append(database, event)
    return marked


def history(database: Any, subject: str) -> list[ConsentEvent]:
    """Every consent event of ``subject`` in ``database``, oldest first."""
    found = _history(database).find({"subject": _subject(subject)}, sort=_ORDER)
    return [ConsentEvent.of(d) for d in found]


def state(events: list[ConsentEvent]) -> dict[str, bool]:
    """Per purpose, whether the consent is in force (the latest event wins)."""
    return {purpose: e.event == GIVEN for purpose, e in latest(events).items()}


async def give_async(
    database: Any, subject: str, purpose: str, *, source: str, notice_version: str
) -> int:
    """``give`` for an async database."""
    event = _event(database, subject, purpose, GIVEN, source, notice_version)
    change = give_change(purpose)
    await _append_async(database, event)
    return await _change_async(database, event.subject, CONSENT, change)


async def withdraw_async(
    database: Any, subject: str, purpose: str, *, source: str | None = None
) -> int:
    """``withdraw`` for an async database."""
    event = _event(database, subject, purpose, WITHDRAWN, source, None)
    marked = await _change_async(
        database, event.subject, WITHDRAW_CONSENT, withdraw_change(purpose)
    )
    await _append_async(database, event)
    return marked


async def history_async(database: Any, subject: str) -> list[ConsentEvent]:
    """``history`` for an async database."""
    found = _history(database).find({"subject": _subject(subject)}, sort=_ORDER)
    return [ConsentEvent.of(d) for d in await found.to_list(None)]
