"""Intents: what an audited write is about to do, stored before it writes anything.

An audit record is appended once an operation has ended, so by itself it cannot cover the
moment between a write and its record: a process that dies there, or an audit destination that
fails there, would leave an applied change that no record names. So before its first write an
audited operation stores an ``Intent`` in the *journal* (a collection beside the data, see
``docs/reliability.md``): its subjects (pseudonyms), the identity field names it may change, the
access context and what kind of write it is. Once its outcome record is in the trail, the intent
is removed. An intent still there after its operation must have ended names an operation whose
end nobody saw; the recovery sweeper (``privata_mongo.recovery``) looks at the stored rows of its
subjects, completes or rolls back what it finds, and appends the record the operation could not.

Intents are not part of the hash chain: they are working state that is removed once settled,
which an append-only trail cannot hold, and the trail may live on a server the application can
only insert into. Like records they hold names, pseudonyms and counts, never a value.

They are authenticated all the same, because the sweeper acts on what an intent says: a
``create`` intent makes it delete identity rows and discard data keys, a ``delete`` intent
clinical rows. Each stored intent carries a MAC (``mac``) under the chain key of the audit
destination its records go to (``core.crypto.chain_key``), over every field, its id included
(``seal_intent``); the sweeper acts only on an intent whose MAC holds (``intent_holds``), so
someone who can write to the journal but does not hold the master key cannot make it delete
anything.
"""

from __future__ import annotations

import datetime
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from privata_mongo.core.audit.chain import digest
from privata_mongo.core.audit.records import AccessContext

__all__ = [
    "INTENT_MAC",
    "JOURNAL_SUFFIX",
    "Intent",
    "IntentKind",
    "intent_holds",
    "intent_of",
    "seal_intent",
]

JOURNAL_SUFFIX = ".pending"
"""The journal is the collection ``<audit_collection>.pending`` in the database of the data."""

IntentKind = Literal["create", "update", "delete"]

INTENT_MAC = "mac"
"""The field of a stored intent that holds its MAC."""


@dataclass(frozen=True, slots=True)
class Intent:
    """One pending write of one operation.

    Attributes:
        id: unique per intent (an operation that writes in several batches stores several).
        at: when it was stored (the clock port).
        access: who and why, as the operation's records will say.
        operation: the audited operation (``create``, ``update``, ``delete`` …).
        kind: what the write does to rows: creates them, changes them or deletes them.
        model: the model concerned.
        collection: the clinical collection (the sweeper finds the schema by it).
        subjects: the pseudonyms the operation writes.
        fields: identity field names it may change.
    """

    id: str
    at: datetime.datetime
    access: AccessContext
    operation: str
    kind: IntentKind
    model: str
    collection: str
    subjects: tuple[str, ...]
    fields: tuple[str, ...] = ()

    def document(self) -> dict[str, Any]:
        """The intent as stored in the journal."""
        return {
            "_id": self.id,
            "at": self.at,
            "actor": self.access.actor,
            "purpose": self.access.purpose,
            "legal_basis": self.access.legal_basis,
            "request_id": self.access.request_id,
            "operation": self.operation,
            "kind": self.kind,
            "model": self.model,
            "collection": self.collection,
            "subjects": list(self.subjects),
            "fields": list(self.fields),
        }


def intent_of(document: Mapping[str, Any]) -> Intent:
    """The intent a journal document holds (the inverse of ``Intent.document``)."""
    access = AccessContext(
        document.get("actor"),
        document.get("purpose"),
        document.get("legal_basis"),
        document.get("request_id"),
    )
    return Intent(
        id=str(document["_id"]),
        at=document["at"],
        access=access,
        operation=str(document.get("operation", "")),
        kind=cast(IntentKind, document.get("kind", "update")),
        model=str(document.get("model", "")),
        collection=str(document.get("collection", "")),
        subjects=tuple(document.get("subjects", ())),
        fields=tuple(document.get("fields", ())),
    )


def _mac(document: Mapping[str, Any], key: bytes) -> str:
    """The MAC of a journal document: every field but the MAC, the ``_id`` included.

    ``digest`` leaves ``_id`` out (a record's id is the server's); an intent's id is what the
    sweeper removes once it has acted, so it is covered under a name of its own. No audit
    record, checkpoint or ledger has an ``intent`` field, so no MAC of theirs verifies here.
    """
    body = {k: v for k, v in document.items() if k not in ("_id", INTENT_MAC)}
    body["intent"] = document.get("_id")
    return digest(body, key, INTENT_MAC)


def seal_intent(document: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """``document`` (an ``Intent.document()``) with its MAC under the chain ``key``."""
    sealed = {k: v for k, v in document.items() if k != INTENT_MAC}
    sealed[INTENT_MAC] = _mac(sealed, key)
    return sealed


def intent_holds(document: Mapping[str, Any], key: bytes) -> bool:
    """Whether a journal document's MAC is present and holds under ``key``.

    An intent that fails was written without the chain key (inserted directly into the
    journal), or changed after it was stored (a subject, kind or collection replaced, a MAC
    copied from another intent): the sweeper must not act on it.
    """
    stored = document.get(INTENT_MAC)
    return isinstance(stored, str) and hmac.compare_digest(_mac(document, key), stored)
