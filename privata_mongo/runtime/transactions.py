"""Whether a connection's server really runs multi-document transactions: probed, not assumed.

A split write touches the identity collection, the clinical collection and the audit trail;
on a server that runs transactions they could commit together. ``hello`` is not proof: a
server reports a replica set (``setName``) when it was started as one, and FerretDB 1.x started
with ``--repl-set-name`` does so while it ignores the transaction fields of every command, so
a write "in" a transaction applies at once and an abort undoes nothing. Trusting ``hello`` there
would drop the crash-safety protocol for writes that are not atomic at all.

So the decision is made by a probe, once per connection (``Transactions``), at its first use:

1. ``hello`` names a replica set (``setName``); otherwise no (standalone servers, mongos
   without one, mongomock and the embedded backend, which have no sessions at all);
2. a probe transaction inserts a scratch document (a random ``_id``) into the privata-owned
   collection ``<audit_collection>.probe`` of the data's database and is aborted;
3. a read outside the transaction proves the document absent: the server rolled it back.

Any error on the way (no sessions, "Transaction numbers are only allowed on a replica set
member", a lost connection) is a no, and a document that survived its abort is removed. With
``configure(transactions="off")`` nothing is probed and the answer is no. Nothing here holds a
value of the application's data: the scratch document is ``{_id: <random hex>}``.

The verdict only decides; which flows then write inside a transaction is the caller's
(``docs/reliability.md``, *Transactions*).
"""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Any

from privata_mongo.config import Settings

__all__ = ["PROBE_SUFFIX", "Transactions"]

logger = logging.getLogger(__name__)

PROBE_SUFFIX = ".probe"
"""The probe's scratch collection is ``<audit_collection>.probe`` in the data's database."""


def _replica_set(hello: Any) -> bool:
    return isinstance(hello, dict) and bool(hello.get("setName"))


def _no(reason: str, error: BaseException | None = None) -> bool:
    kind = f" ({type(error).__name__})" if error is not None else ""
    logger.info("transactions not used: %s%s; the crash-safety protocol runs", reason, kind)
    return False


class Transactions:
    """The transaction verdict of one connection: probed at its first use, then kept.

    ``available`` (blocking) and ``available_async`` (awaited) take the real database the
    probe may write its scratch document to; the first call probes, later ones return what it
    found. ``"off"`` in the settings answers no without a probe (and without caching, so
    switching back to ``"auto"`` probes then).
    """

    def __init__(self) -> None:
        self._verdict: bool | None = None
        self._lock = threading.Lock()

    @property
    def verdict(self) -> bool | None:
        """What the probe found (``None``: not probed yet)."""
        return self._verdict

    def available(self, database: Any, settings: Settings) -> bool:
        """Whether writes of ``database``'s connection may use transactions (sync client)."""
        if settings.transactions == "off":
            return False
        with self._lock:
            if self._verdict is None:
                self._verdict = _probe(database, settings)
            return self._verdict

    async def available_async(self, database: Any, settings: Settings) -> bool:
        """``available`` for an async client (pymongo's ``AsyncMongoClient``)."""
        if settings.transactions == "off":
            return False
        if self._verdict is None:
            self._verdict = await _probe_async(database, settings)
        return self._verdict


def _probe(database: Any, settings: Settings) -> bool:
    try:
        hello = database.client.admin.command("hello")
    except Exception as exc:  # a server that cannot say: no
        return _no("hello failed", exc)
    if not _replica_set(hello):
        return _no("the server is not a replica set member")
    collection = database.get_collection(settings.audit_collection + PROBE_SUFFIX)
    scratch = {"_id": secrets.token_hex(16)}
    try:
        with database.client.start_session() as session:
            session.start_transaction()
            try:
                collection.insert_one(scratch, session=session)
            finally:
                session.abort_transaction()
    except Exception as exc:
        return _no("the probe transaction failed", exc)
    try:
        survived = collection.find_one({"_id": scratch["_id"]}) is not None
        if survived:
            collection.delete_one({"_id": scratch["_id"]})
    except Exception as exc:
        return _no("the probe could not be read back", exc)
    if survived:
        return _no("the server reports a replica set but did not roll the probe back")
    logger.info("transactions available: the probe transaction was rolled back")
    return True


async def _probe_async(database: Any, settings: Settings) -> bool:
    try:
        hello = await database.client.admin.command("hello")
    except Exception as exc:
        return _no("hello failed", exc)
    if not _replica_set(hello):
        return _no("the server is not a replica set member")
    collection = database.get_collection(settings.audit_collection + PROBE_SUFFIX)
    scratch = {"_id": secrets.token_hex(16)}
    try:
        async with database.client.start_session() as session:
            await session.start_transaction()
            try:
                await collection.insert_one(scratch, session=session)
            finally:
                await session.abort_transaction()
    except Exception as exc:
        return _no("the probe transaction failed", exc)
    try:
        survived = await collection.find_one({"_id": scratch["_id"]}) is not None
        if survived:
            await collection.delete_one({"_id": scratch["_id"]})
    except Exception as exc:
        return _no("the probe could not be read back", exc)
    if survived:
        return _no("the server reports a replica set but did not roll the probe back")
    logger.info("transactions available: the probe transaction was rolled back")
    return True
