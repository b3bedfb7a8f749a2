"""The audit trail for auditors: verify its keyed chains, ask who accessed whom.

Every function takes a *source*: the audit collection (a pymongo or mongomock collection, the
real one: ``audit_collection(db)`` finds it for a privata database), or any iterable of record
documents (a ``ListAuditSink``, its ``records``, an export). ``verify`` also reads the
trail's checkpoints and ledger: from ``<audit collection>.checkpoints`` for a collection, from
the iterable otherwise (a ``ListAuditSink`` yields them after its records). Queries run on the
server when the source is a collection (the sink creates indexes on subject, actor and time), in
the process otherwise, with the same semantics. Subjects are named by pseudonym:
``subject_of`` gives the pseudonym of a document the application knows by its ``_id``.

Records never hold values, so these answers never do either.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from privata_mongo.adapters.audit_collection import checkpoints_of
from privata_mongo.config import current
from privata_mongo.core.audit import (
    CHECKPOINT_KIND,
    LEDGER_KIND,
    SEVERITY_BREAK_GLASS,
    ChainProblem,
    verify_chain,
)
from privata_mongo.core.mql.match import compile_filter
from privata_mongo.core.schema import PSEUDONYM_FIELD
from privata_mongo.errors import ConfigurationError, KeyUnavailable
from privata_mongo.runtime import Runtime, build_runtime
from privata_mongo.runtime.audit import read_chain_key, read_chain_key_async
from privata_mongo.runtime.keys import real_client
from privata_mongo.runtime.regions import clinical_collections

__all__ = [
    "Access",
    "ChainProblem",
    "Verification",
    "accesses",
    "audit_collection",
    "break_glass_accesses",
    "chain_key",
    "chain_key_async",
    "flush",
    "flush_async",
    "subject_of",
    "touched_by",
    "verify",
    "who_accessed",
]


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of ``verify``.

    Attributes:
        problems: each position where a chain does not hold (empty: every chain is intact).
        records: how many records were read.
        heads: per stream, ``(seq, hash)`` of its last record. The checkpoints kept with the
            trail already detect a cut end and a deleted stream; keeping these outside the
            database too and passing them as ``anchors`` next time also detects a rollback
            to an earlier copy of the whole trail (docs/audit.md, what remains possible).
    """

    problems: list[ChainProblem]
    records: int
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every chain is intact."""
        return not self.problems


@dataclass(frozen=True, slots=True)
class Access:
    """One audited operation, as an auditor reads it (names and pseudonyms only)."""

    at: datetime.datetime
    actor: str | None
    purpose: str | None
    legal_basis: str | None
    request_id: str | None
    operation: str
    model: str
    fields: tuple[str, ...]
    outcome: str
    subjects: tuple[str, ...]
    severity: str = "normal"
    reason: str | None = None


def _real(database: Any) -> Any:
    """The real database behind a privata database (a real one is returned as it is)."""
    from privata_mongo.proxy.database import DatabaseBase

    return database.inner if isinstance(database, DatabaseBase) else database


def audit_collection(database: Any) -> Any:
    """The real audit collection of a privata (or plain) database, per the settings."""
    return _real(database).get_collection(current().audit_collection)


def _documents(
    source: Any, filter: Mapping[str, Any], sort: Sequence[tuple[str, int]]
) -> list[Mapping[str, Any]]:
    if hasattr(source, "find"):
        return list(source.find(dict(filter), sort=list(sort)))
    matcher = compile_filter(filter)
    found = [d for d in source if matcher(d)]
    for key, direction in reversed(sort):
        found.sort(key=_sort_key(key), reverse=direction < 0)
    return found


def _sort_key(key: str) -> Callable[[Mapping[str, Any]], tuple[bool, Any]]:
    def of(document: Mapping[str, Any]) -> tuple[bool, Any]:
        return (document.get(key) is None, document.get(key))

    return of


def _runtime(client: Any, *, asynchronous: bool) -> Runtime:
    runtime: Runtime | None = getattr(client, "runtime", None)
    if isinstance(runtime, Runtime) and runtime.asynchronous == asynchronous:
        return runtime
    return build_runtime(real_client(client), asynchronous=asynchronous)


def _found(key: bytes | None) -> bytes:
    if key is None:
        raise KeyUnavailable(
            "the key vault holds no audit chain key: no operation was audited with this key "
            "vault (check key_vault_namespace and the client)"
        )
    return key


def chain_key(client: Any, destination: str | None = None) -> bytes:
    """The audit chain key in ``client``'s key vault (a privata or real client), to verify with.

    Each audit destination has its own: ``destination`` is the ``full_name``
    (``"database.collection"``) of an audit collection, ``None`` for another sink (a
    ``ListAuditSink``). Reading it needs the master key, as the trail's own writes do; it is
    never created here.

    Raises:
        KeyUnavailable: the key vault holds no such chain key (nothing was audited there), or
            the master key cannot unwrap it.
    """
    runtime = _runtime(client, asynchronous=False)
    settings = runtime.settings()
    return _found(read_chain_key(runtime.keys, settings, create=False, destination=destination))


async def chain_key_async(client: Any, destination: str | None = None) -> bytes:
    """``chain_key`` for an async client (Beanie's, an ``AsyncMongoClient``, Motor)."""
    runtime = _runtime(client, asynchronous=True)
    settings = runtime.settings()
    return _found(
        await read_chain_key_async(runtime.keys, settings, create=False, destination=destination)
    )


def _verified_documents(source: Any) -> list[Mapping[str, Any]]:
    if hasattr(source, "find"):
        return [*source.find({}), *checkpoints_of(source).find({})]
    return list(source)


def verify(
    source: Iterable[Mapping[str, Any]] | Any,
    anchors: Mapping[str, tuple[int, str]] | None = None,
    *,
    key: bytes | None = None,
    checkpointed: bool = True,
) -> Verification:
    """Check every chain in ``source``, with its checkpoints and ledger; problems name positions.

    Detects a modified record (its content no longer matches its MAC), a forged one (written
    without the chain key: it matches no MAC), a removed one (a missing position, or a range of
    them), records moved or swapped, a cut end (the stream ends before its checkpoint), a
    deleted stream (the ledger names it, nothing holds it), a forged stream (the ledger does
    not name it), and an emptied trail (nothing left while the chain key exists). Its cost is
    linear in the documents present, whatever sequence numbers they claim.

    Args:
        source: the audit collection, or an iterable of its documents.
        anchors: ``heads`` of an earlier verification, kept outside the database.
        key: the chain key (``chain_key(client, destination)``); read from the key vault of
            the collection's client when ``source`` is a collection.
        checkpointed: ``False`` for a trail written to a custom sink that keeps no
            checkpoints (no ``get``/``put``/``swap``): only the chains are checked then.

    Raises:
        ConfigurationError: ``source`` is not a collection and no ``key`` was given.
        KeyUnavailable: the chain key cannot be read.
    """
    documents = _verified_documents(source)
    if key is None:
        database = getattr(source, "database", None)
        if database is None or not hasattr(source, "find"):
            raise ConfigurationError(
                "verify needs the audit chain key for a source that is not the audit "
                "collection: pass key=privata_mongo.audit.chain_key(client)"
            )
        runtime = _runtime(database.client, asynchronous=False)
        where = str(getattr(source, "full_name", ""))
        key = read_chain_key(runtime.keys, runtime.settings(), create=False, destination=where)
        if key is None and not documents:
            return Verification([], 0, {})  # no chain key and no trail: nothing was audited
        key = _found(key)
    heads: dict[str, tuple[int, str]] = {}
    records = 0
    for document in documents:
        if document.get("kind") in (CHECKPOINT_KIND, LEDGER_KIND):
            continue
        records += 1
        stream, seq = document.get("stream"), document.get("seq")
        if not isinstance(stream, str) or not isinstance(seq, int):
            continue
        if stream not in heads or heads[stream][0] < seq:
            heads[stream] = (seq, str(document.get("hash")))
    return Verification(
        verify_chain(documents, key, anchors, started=True, checkpointed=checkpointed),
        records,
        heads,
    )


def accesses(
    source: Iterable[Mapping[str, Any]] | Any,
    *,
    subject: str | None = None,
    actor: str | None = None,
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
    operations: Iterable[str] | None = None,
    severity: str | None = None,
) -> list[Access]:
    """Audited operations matching every criterion given, oldest first.

    ``start`` is inclusive, ``end`` exclusive (naive UTC, as records store time).
    ``severity``: only records of that severity (``break_glass``; ``normal`` records store
    none, so they are the ones without it).
    """
    filter: dict[str, Any] = {}
    if subject is not None:
        filter["subjects"] = subject
    if actor is not None:
        filter["actor"] = actor
    span: dict[str, Any] = {}
    if start is not None:
        span["$gte"] = start
    if end is not None:
        span["$lt"] = end
    if span:
        filter["at"] = span
    if operations is not None:
        filter["operation"] = {"$in": list(operations)}
    if severity is not None:
        filter["severity"] = severity if severity != "normal" else {"$exists": False}
    documents = _documents(source, filter, [("at", 1), ("stream", 1), ("seq", 1)])
    return [
        Access(
            at=d["at"],
            actor=d.get("actor"),
            purpose=d.get("purpose"),
            legal_basis=d.get("legal_basis"),
            request_id=d.get("request_id"),
            operation=d.get("operation", ""),
            model=d.get("model", ""),
            fields=tuple(d.get("fields", ())),
            outcome=d.get("outcome", ""),
            subjects=tuple(d.get("subjects", ())),
            severity=d.get("severity", "normal"),
            reason=d.get("reason"),
        )
        for d in documents
    ]


def break_glass_accesses(
    source: Iterable[Mapping[str, Any]] | Any,
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
) -> list[Access]:
    """Every access made under ``break_glass`` (HIPAA §164.312(a)(2)(ii)), oldest first.

    Each carries the actor, the reason given, and the subjects reached, for the review that
    emergency access requires.
    """
    return accesses(source, start=start, end=end, severity=SEVERITY_BREAK_GLASS)


def who_accessed(
    source: Iterable[Mapping[str, Any]] | Any,
    subject: str,
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
) -> list[Access]:
    """Who touched data subject ``subject`` (a pseudonym) between ``start`` and ``end``, and why.

    Each ``Access`` carries the actor, purpose, legal basis, operation and identity fields.
    """
    return accesses(source, subject=subject, start=start, end=end)


def touched_by(
    source: Iterable[Mapping[str, Any]] | Any,
    actor: str,
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
) -> dict[str, set[str]]:
    """Which data subjects ``actor`` touched, per model: ``{model: {pseudonym, …}}``."""
    touched: dict[str, set[str]] = {}
    for access in accesses(source, actor=actor, start=start, end=end):
        touched.setdefault(access.model, set()).update(access.subjects)
    return touched


def subject_of(database: Any, collection: str, id: Any) -> str | None:
    """The pseudonym of the document ``id`` of ``collection`` (``None``: not split or absent).

    Reads the raw clinical row, not audited: it returns no personal data, only the link.
    """
    clinical = _real(database).get_collection(collection)
    for _, stored in clinical_collections(current(), clinical):  # regions' clinical stores too
        row = stored.find_one({"_id": id}, {PSEUDONYM_FIELD: 1})
        pseudonym = row.get(PSEUDONYM_FIELD) if row else None
        if isinstance(pseudonym, str):
            return pseudonym
    return None


def flush(database: Any) -> None:
    """Store the records buffered mode holds for ``database`` (a sync privata database)."""
    trail = database.client.runtime.trail(_real(database))
    if trail is not None:
        trail.flush()


async def flush_async(database: Any) -> None:
    """Store the records buffered mode holds for ``database`` (an async privata database)."""
    trail = database.client.runtime.trail(_real(database))
    if trail is not None:
        await trail.flush()
