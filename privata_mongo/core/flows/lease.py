"""Write leases: the updates of one document's identity fields run one at a time.

An update touching identity fields is two writes (the identity row, then the clinical row),
so two such updates of one document could interleave and leave the identity half of one
next to the clinical half of the other: a state no serial order produces. Each writer
therefore first takes a lease on the document's identity row, by compare-and-swap on the
server (``LEASE_FIELD`` is set only where it is absent or expired), reads the row it now
holds, writes both halves and releases the lease. A writer that finds the row held waits
with jittered exponential back-off (``Pause``) and tries again, for at most
``Context.write_wait`` seconds; a writer that crashed holds its lease no longer than
``Context.write_lease`` seconds, after which the next writer takes it over.

Updates of clinical fields only run on the server in one call and need no lease: each is
atomic on the clinical row, and it commutes with the identity half of a leased update.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from privata_mongo.core.failures import WriteFailed
from privata_mongo.core.ops import Document, FetchAll, FindAndModify, Flow, Pause, Query, Update
from privata_mongo.core.schema import LEASE_FIELD, Side

from .context import Context

logger = logging.getLogger(__name__)

__all__ = [
    "BACKOFF_CAP",
    "BACKOFF_START",
    "MAX_TIME_EXPIRED",
    "Held",
    "backoff",
    "deadline",
    "hold",
    "release",
    "take",
]

MAX_TIME_EXPIRED = 50
"""The server's code for an operation that ran out of time (``MaxTimeMSExpired``)."""

BACKOFF_START = 0.001
"""Seconds of the first back-off (before jitter); each later one doubles, up to the cap."""

BACKOFF_CAP = 0.05
"""Longest single back-off in seconds: waiting writers look again at least this often."""


@dataclass(frozen=True, slots=True)
class Held:
    """What one attempt to lease identity rows got.

    Attributes:
        owner: this writer's token, stored in the lease of every row it holds.
        lease: the lease document as stored (``{"o": owner, "x": expiry}``).
        rows: the stored identity rows now held, by pseudonym, read after the lease was taken.
        busy: pseudonyms whose rows another writer holds.
    """

    owner: str
    lease: Mapping[str, Any]
    rows: Mapping[str, Document]
    busy: frozenset[str]


def deadline(ctx: Context) -> datetime.datetime:
    """When a writer starting now stops waiting for leases."""
    return ctx.now() + datetime.timedelta(seconds=ctx.write_wait)


def take(ctx: Context, pseudonyms: Iterable[str]) -> Flow[Held]:
    """Lease every free identity row among ``pseudonyms`` and read them.

    A row is free when it has no lease or its lease has expired. Rows that do not exist are
    neither held nor busy (the caller writes them as new rows). One row is leased and read in
    one round trip (``find_one_and_update``), and read again only when it was not free; more
    rows take two (the lease on all of them, then the read).
    """
    unique = list(dict.fromkeys(pseudonyms))
    owner = ctx.new_revision()
    now = ctx.now()
    lease = {"o": owner, "x": now + datetime.timedelta(seconds=ctx.write_lease)}
    if not unique:
        return Held(owner, lease, {}, frozenset())
    free = {"$or": [{LEASE_FIELD: {"$exists": False}}, {f"{LEASE_FIELD}.x": {"$lt": now}}]}
    if len(unique) == 1:
        return (yield from _take_one(ctx, unique[0], owner, lease, free))
    try:
        taken = yield from Update(
            Side.IDENTITY, {"_id": {"$in": unique}, **free}, {"$set": {LEASE_FIELD: lease}}, True
        )
        rows = yield from FetchAll(
            Side.IDENTITY,
            Query({"_id": {"$in": unique}}, limit=len(unique), batch_size=len(unique)),
        )
    except Exception:
        # The lease may have been taken even if its reply was lost: give it back now, so the
        # application's retry does not wait for it to expire.
        yield from _unlease(ctx, unique, owner)
        raise
    present = {row["_id"]: row for row in rows}
    if taken.matched >= len(present):
        mine = present
    elif taken.matched == 0:
        mine = {}
    else:
        mine = {p: row for p, row in present.items() if _owner(row) == owner}
    return Held(owner, lease, mine, frozenset(present) - frozenset(mine))


def _take_one(
    ctx: Context,
    pseudonym: str,
    owner: str,
    lease: Mapping[str, Any],
    free: Mapping[str, Any],
) -> Flow[Held]:
    """``take`` for one row: leased and returned by the server in one call when it is free."""
    try:
        row = yield from FindAndModify(
            Side.IDENTITY,
            "update",
            {"_id": pseudonym, **free},
            {"$set": {LEASE_FIELD: lease}},
            return_new=True,
        )
        if row is not None:
            return Held(owner, lease, {pseudonym: row}, frozenset())
        # Not free, or not there: only a row that exists is another writer's.
        rows = yield from FetchAll(
            Side.IDENTITY, Query({"_id": pseudonym}, projection={"_id": 1}, limit=1)
        )
    except Exception:
        yield from _unlease(ctx, [pseudonym], owner)  # as ``take``: the reply may be lost
        raise
    return Held(owner, lease, {}, frozenset(r["_id"] for r in rows))


def _owner(row: Mapping[str, Any]) -> Any:
    lease = row.get(LEASE_FIELD)
    return lease.get("o") if isinstance(lease, Mapping) else None


def hold(ctx: Context, pseudonym: str) -> Flow[Held]:
    """Lease one identity row, waiting while another writer holds it.

    Raises:
        WriteFailed: the row stayed held for longer than ``ctx.write_wait`` seconds.
    """
    until = deadline(ctx)
    attempt = 0
    while True:
        held = yield from take(ctx, [pseudonym])
        if not held.busy:
            return held
        yield from backoff(ctx, attempt, until)
        attempt += 1


def backoff(ctx: Context, attempt: int, until: datetime.datetime) -> Flow[None]:
    """Wait before the next attempt: a jittered share of an exponentially growing delay.

    Full jitter (a uniform draw up to the delay) spreads writers that collided, so they do not
    collide again in step.

    Raises:
        WriteFailed: ``until`` has passed (code 50, as an operation out of time).
    """
    if ctx.now() >= until:
        raise WriteFailed(
            f"{ctx.schema.model}: another writer held the document for longer than "
            f"write_wait_ms ({round(ctx.write_wait * 1000)} ms); retry the operation, or raise "
            "write_wait_ms if updates of one document routinely queue this long",
            MAX_TIME_EXPIRED,
        )
    delay = min(BACKOFF_CAP, BACKOFF_START * 2 ** min(attempt, 16)) * ctx.jitter()
    yield Pause(delay)


def release(ctx: Context, held: Held, pseudonyms: Sequence[str] | None = None) -> Flow[None]:
    """Give up the leases of ``held`` (all its rows, or ``pseudonyms`` among them).

    Only rows still carrying this writer's token are changed: a lease that expired and was
    taken over belongs to its new holder.
    """
    names = list(held.rows) if pseudonyms is None else [p for p in pseudonyms if p in held.rows]
    yield from _unlease(ctx, names, held.owner)


def _unlease(ctx: Context, names: Sequence[str], owner: str) -> Flow[None]:
    """Remove ``owner``'s lease from ``names``; a failure is logged, never raised.

    The write the lease protected has been applied (or abandoned) by then: raising would tell
    the application that its operation failed, and its retry would apply it twice. A lease
    left behind only makes the next writer wait until it expires.
    """
    if not names:
        return
    try:
        yield Update(
            Side.IDENTITY,
            {"_id": {"$in": list(names)}, f"{LEASE_FIELD}.o": owner},
            {"$unset": {LEASE_FIELD: ""}},
            True,
        )
    except Exception as exc:
        logger.warning(
            "%s: %d write lease(s) could not be released (%s); they expire after write_lease_ms",
            ctx.schema.model,
            len(names),
            type(exc).__name__,
        )
