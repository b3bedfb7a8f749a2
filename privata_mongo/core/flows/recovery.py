"""Recovery: resolve the intents of operations whose end nobody saw, from the stored rows.

An audited write stores an intent before it writes (``core.audit.intents``) and removes it once
its record is stored. An intent older than any live operation (``before``) therefore belongs to
an operation that died, lost its connection, or could not store its outcome record. What it did
is read back from the rows of the subjects it names, never from the intent (which holds no
values), and resolved by its kind:

* ``create``: an identity row whose clinical half is absent is an orphan, never visible to the
  application: it is deleted, with the data key made for it (``DiscardKeys``: the pseudonym was
  fresh, nothing else uses the key), and recorded ``recovered:rolled_back``. Subjects with both
  halves were created: recorded ``recovered:ok``. Keys of subjects with no row at all are
  discarded.
* ``delete``: a delete removes the clinical row, then the identity row, then shreds the key.
  An identity row whose clinical row is gone is the rest of an interrupted delete (no read
  reaches it): it is deleted, the key shredded, and the subject recorded ``recovered:ok``; so
  is a clinical row whose identity row is gone (the order of earlier versions), and a subject
  with neither row has its key shredded (the delete may have died before its shred).
  Subjects with both rows were not deleted.
* ``update``: the change may or may not have applied (its values are not kept anywhere, on
  purpose); the subjects that still exist are recorded ``recovered:unknown`` with the field
  names, so every change that did apply has a record naming its subject.

An intent whose subjects' identity rows are held by a live write lease is left for a later
sweep: a writer is still at work. An intent whose MAC does not hold under the chain key
(``core.audit.intents.intent_holds``: inserted into the journal directly, or changed since it was
stored) is never acted on: it is left in the journal for the operator, counted ``forged``, and
one record per sweep (``recovery`` / ``refused:forged_intent``, the count and no subject) and
a log line (the count) say so; nothing the forged intent names is read, deleted or discarded.
The records of genuine intents name the intent's access context (who and why) and operation,
so they read as the record the operation itself would have appended.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from privata_mongo.core import cache
from privata_mongo.core.audit.intents import Intent, intent_holds, intent_of
from privata_mongo.core.audit.records import AccessContext, AuditRecord, records_for
from privata_mongo.core.crypto.keys import discard_keys, shred_deleted
from privata_mongo.core.ops import (
    AppendAudit,
    Delete,
    FetchAll,
    Flow,
    IntentKey,
    PendingIntents,
    Query,
    SettleIntents,
)
from privata_mongo.core.schema import LEASE_FIELD, PSEUDONYM_FIELD, Side

from .context import Context

__all__ = ["FORGED_OUTCOME", "SWEEPER", "Resolved", "resolve_intent", "sweep"]

logger = logging.getLogger(__name__)

SWEEPER = AccessContext(actor="privata:recovery", purpose="integrity")
"""Who the record of refused intents names: the sweep itself (a forged intent's own access
context is whatever its author wrote)."""

FORGED_OUTCOME = "refused:forged_intent"
"""The outcome of the record a sweep appends when it found intents whose MAC does not hold."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a sweep of one collection did (counts only).

    Attributes:
        intents: intents resolved and removed from the journal.
        orphans: identity rows of interrupted creates deleted.
        completed: rows whose interrupted write was completed or confirmed (creates found
            whole, deletes finished).
        left: intents left for a later sweep (a live lease: a writer is at work; or no chain
            key to check them with: auditing is off).
        forged: intents refused and left in the journal: their MAC is missing or does not hold.
    """

    intents: int = 0
    orphans: int = 0
    completed: int = 0
    left: int = 0
    forged: int = 0

    def __add__(self, other: Resolved) -> Resolved:
        return Resolved(
            self.intents + other.intents,
            self.orphans + other.orphans,
            self.completed + other.completed,
            self.left + other.left,
            self.forged + other.forged,
        )


def sweep(ctx: Context, before: datetime.datetime, limit: int = 0) -> Flow[Resolved]:
    """Resolve the intents of ``ctx.schema``'s collection stored before ``before``.

    Each intent is removed only once its records are stored: a sweep that fails (the trail is
    down) leaves the rest for the next one, and resolving an intent twice is harmless.
    """
    found = yield from PendingIntents(ctx.schema.collection, before, limit)
    if not found:
        return Resolved()
    key = yield from IntentKey()
    if key is None:
        logger.warning(
            "%s: %d pending intent(s) left: auditing is off, so their MACs cannot be checked",
            ctx.schema.model,
            len(found),
        )
        return Resolved(left=len(found))
    genuine = [document for document in found if intent_holds(document, key)]
    total = Resolved(forged=len(found) - len(genuine))
    if total.forged:
        yield from _refused(ctx, total.forged)
    for document in genuine:
        intent = intent_of(document)
        done = yield from resolve_intent(ctx, intent)
        if done is None:
            total += Resolved(left=1)
            continue
        yield SettleIntents((intent.id,))
        total += done
    return total


def _refused(ctx: Context, forged: int) -> Flow[None]:
    """Say that ``forged`` intents were refused: a log line and a record, counts only.

    The forged intents' own fields (subjects, actor, model …) are whatever their author wrote,
    so neither names any of them: the record names the sweep and the model it swept.
    """
    logger.warning(
        "%s: %d pending intent(s) refused: their MAC is missing or does not hold (written "
        "without the chain key, or changed since); left in the journal for inspection",
        ctx.schema.model,
        forged,
    )
    yield AppendAudit(
        records_for(
            at=ctx.now(),
            access=SWEEPER,
            operation="recovery",
            model=ctx.schema.model,
            subjects=(),
            fields=(),
            count=forged,
            outcome=FORGED_OUTCOME,
        )
    )


def _live(rows: Sequence[dict[str, Any]], now: datetime.datetime) -> bool:
    for row in rows:
        lease = row.get(LEASE_FIELD)
        expiry = lease.get("x") if isinstance(lease, dict) else None
        if isinstance(expiry, datetime.datetime) and _naive(expiry) > _naive(now):
            return True
    return False


def _naive(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def resolve_intent(ctx: Context, intent: Intent) -> Flow[Resolved | None]:
    """Look at the rows of ``intent``'s subjects and resolve it; ``None``: leave it for later."""
    subjects = list(dict.fromkeys(intent.subjects))
    identity = yield from FetchAll(
        Side.IDENTITY,
        Query({"_id": {"$in": subjects}}, projection={"_id": 1, LEASE_FIELD: 1}),
    )
    if _live(identity, ctx.now()):
        return None
    clinical = yield from FetchAll(
        Side.CLINICAL,
        Query({PSEUDONYM_FIELD: {"$in": subjects}}, projection={"_id": 1, PSEUDONYM_FIELD: 1}),
    )
    has_identity = {row["_id"] for row in identity}
    has_clinical = {row.get(PSEUDONYM_FIELD) for row in clinical}
    records: list[AuditRecord] = []
    orphans: list[str] = []
    completed = 0
    if intent.kind == "create":
        orphans = [s for s in subjects if s in has_identity and s not in has_clinical]
        whole = [s for s in subjects if s in has_identity and s in has_clinical]
        unused = [s for s in subjects if s not in has_identity and s not in has_clinical]
        if orphans:
            yield Delete(Side.IDENTITY, {"_id": {"$in": orphans}}, multi=True)
            yield from cache.forget_rows(ctx, orphans)
        yield from discard_keys(ctx, orphans + unused)
        records += _records(ctx, intent, orphans, "recovered:rolled_back", 0)
        records += _records(ctx, intent, whole, "recovered:ok", len(whole))
        completed = len(whole)
    elif intent.kind == "delete":
        completed = yield from _finish_delete(ctx, subjects, has_identity, has_clinical)
        started = [s for s in subjects if s not in has_identity or s not in has_clinical]
        records += _records(ctx, intent, started, "recovered:ok", len(started))
    else:
        present = [s for s in subjects if s in has_identity or s in has_clinical]
        records += _records(ctx, intent, present, "recovered:unknown", len(present))
    if records:
        yield AppendAudit(tuple(records))
    return Resolved(1, len(orphans), completed)


def _finish_delete(
    ctx: Context, subjects: Sequence[str], has_identity: set[Any], has_clinical: set[Any]
) -> Flow[int]:
    """Complete an interrupted delete of ``subjects``; the rows it deleted.

    A delete removes the clinical row, then the identity row, then shreds the key
    (``write.delete_rows``), so a subject with only one of its rows left had its delete begun:
    the identity row without its clinical row is deleted; a clinical row without its identity
    row (the order of earlier versions, identity first) is deleted too. The key of every
    subject whose delete began is shredded, since the delete may have died before its shred
    (shredding is idempotent: a tombstone already there is kept). A subject with both rows
    was not deleted at all and is left alone.
    """
    identity_left = [s for s in subjects if s in has_identity and s not in has_clinical]
    clinical_left = [s for s in subjects if s in has_clinical and s not in has_identity]
    started = [s for s in subjects if s not in has_identity or s not in has_clinical]
    deleted = 0
    if clinical_left:
        deleted += yield from Delete(
            Side.CLINICAL, {PSEUDONYM_FIELD: {"$in": clinical_left}}, multi=True
        )
    if identity_left:
        deleted += yield from Delete(Side.IDENTITY, {"_id": {"$in": identity_left}}, multi=True)
        yield from cache.forget_rows(ctx, identity_left)
    yield from shred_deleted(ctx, started)
    return deleted


def _records(
    ctx: Context, intent: Intent, subjects: Sequence[str], outcome: str, count: int
) -> tuple[AuditRecord, ...]:
    if not subjects:
        return ()
    return records_for(
        at=ctx.now(),
        access=intent.access,
        operation=intent.operation,
        model=intent.model,
        subjects=subjects,
        fields=intent.fields,
        count=count,
        outcome=outcome,
    )
