"""What may be cached, under which name, and when a cached name stops standing for its value.

Two things are cached, and only as bytes that were stored anyway: identity rows exactly as the
identity collection stores them (BSON, identity values inside the CSFLE ciphertext), and data
key documents exactly as the key vault stores them (``keyMaterial`` wrapped by the master
key). Nothing here ever sees a plaintext or an unwrapped key: rows are cached before they are
unsealed, keys before the ring unwraps them. The flows decide; a driver only carries the
requests (``CacheGet``, ``CachePut``, ``CacheInvalidate``) to the cache port, and a flow whose
``Context`` has no cache yields none of them.

A write that changes what a name stands for replaces the entry with a *hold*: for its
duration the name reads as absent and ``CachePut`` cannot fill it (puts only add where
absent). So a reader that read a row before a write cannot put the old row back after the
writer's invalidation, however the two interleave, unless its read and its put are further
apart than the hold. An erasure holds the subject's key entry for ``ERASED_HOLD``: no process
can cache that key again, and a process holding it in memory checks the cache at most every
``Context.key_recheck`` seconds, finds the hold, asks the key vault and forgets the key.

A cache that cannot be reached is a cache miss: reads go to the stores, puts are dropped, and
a write's invalidation is logged (the entries then live out their TTL). Only the erasure
refuses to start when the hold cannot be placed (``hold_erased``): the bound it promises
would not hold.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import bson
import bson.errors
from bson.codec_options import CodecOptions

from privata_mongo.core.ops import CacheGet, CacheInvalidate, CachePut, Document, Flow
from privata_mongo.core.pseudonym import is_pseudonym
from privata_mongo.core.schema import LEASE_FIELD
from privata_mongo.errors import CacheUnavailable

if TYPE_CHECKING:
    from privata_mongo.core.flows.context import Context

__all__ = [
    "ERASED_HOLD",
    "WRITE_HOLD",
    "cached_keys",
    "cached_rows",
    "entry_subject",
    "forget_keys",
    "forget_rows",
    "hold_erased",
    "keep_keys",
    "keep_rows",
    "key_entry",
    "row_entry",
]

logger = logging.getLogger(__name__)

WRITE_HOLD = 10.0
"""Seconds a written row's (or a re-wrapped key's) name cannot be filled again.

Longer than any read's gap between reading a store and putting what it read; short enough that
a row written often is soon cached again.
"""

ERASED_HOLD = 3600.0
"""Seconds an erased subject's key name cannot be filled again (its key is gone for good)."""

_ROW_CODEC: CodecOptions[Any] = CodecOptions()


def row_entry(database: str, collection: str, pseudonym: str) -> str:
    """The cache name of the identity row ``pseudonym`` of ``database.collection``."""
    return f"row:{database}.{collection}:{pseudonym}"


def key_entry(name: str) -> str | None:
    """The cache name of the data key ``name``; ``None`` for keys that are not cached.

    Only subjects' keys (named by their pseudonym, 128 random bits) are cached: the library's
    own keys (blind index, key check, chain keys) have fixed names that two key vaults sharing
    one cache would both use, and they are few and read once per TTL anyway.
    """
    return f"key:{name}" if is_pseudonym(name) else None


def entry_subject(entry: str) -> str | None:
    """The pseudonym a cache name (``row_entry``, ``key_entry``) belongs to."""
    subject = entry.rpartition(":")[2]
    return subject if is_pseudonym(subject) else None


def _rows_wanted(ctx: Context) -> bool:
    # Unsealed rows hold plaintext: never cached.
    return ctx.cache and ctx.schema.sealed


def _names(ctx: Context, pseudonyms: Iterable[str]) -> dict[str, str]:
    collection = ctx.schema.identity_collection
    return {row_entry(ctx.database, collection, p): p for p in pseudonyms}


def _get(keys: Sequence[str]) -> Flow[dict[str, bytes]]:
    if not keys:
        return {}
    try:
        return (yield from CacheGet(tuple(keys)))
    except Exception as exc:  # an unreachable cache is a miss
        logger.warning("the cache could not be read (%s); reading the stores", type(exc).__name__)
        return {}


def _put(entries: Sequence[tuple[str, bytes]]) -> Flow[None]:
    if not entries:
        return
    try:
        yield CachePut(tuple(entries))
    except Exception as exc:
        logger.warning("the cache could not be written (%s)", type(exc).__name__)


def cached_rows(ctx: Context, pseudonyms: Sequence[str]) -> Flow[tuple[list[Document], list[str]]]:
    """The identity rows of ``pseudonyms`` the cache holds, as stored, and the pseudonyms left.

    Without a cache (or for unsealed rows) nothing is asked and every pseudonym is left.
    """
    if not _rows_wanted(ctx) or not pseudonyms:
        return [], list(pseudonyms)
    names = _names(ctx, pseudonyms)
    found = yield from _get(list(names))
    rows = [bson.decode(found[name], codec_options=_ROW_CODEC) for name in names if name in found]
    hit = {names[name] for name in names if name in found}
    return rows, [p for p in pseudonyms if p not in hit]


def keep_rows(ctx: Context, rows: Sequence[Mapping[str, Any]]) -> Flow[None]:
    """Offer identity rows just read from the store to the cache (added where absent).

    A row under a writer's lease is left out: the writer is changing it.
    """
    if not _rows_wanted(ctx):
        return
    collection = ctx.schema.identity_collection
    entries = []
    for row in rows:
        if not isinstance(row.get("_id"), str) or row.get(LEASE_FIELD):
            continue
        encoded = _encoded(row)
        if encoded is not None:
            entries.append((row_entry(ctx.database, collection, row["_id"]), encoded))
    yield from _put(entries)


def _encoded(row: Mapping[str, Any]) -> bytes | None:
    """The row's BSON, or ``None`` for a row the default codec cannot encode (not cached)."""
    try:
        return bson.encode(row, codec_options=_ROW_CODEC)
    except (bson.errors.InvalidDocument, ValueError, TypeError):
        return None


def forget_rows(ctx: Context, pseudonyms: Iterable[str]) -> Flow[None]:
    """Invalidate the cached identity rows of ``pseudonyms`` after a write to them."""
    if not _rows_wanted(ctx):
        return
    names = list(_names(ctx, dict.fromkeys(pseudonyms)))
    if not names:
        return
    try:
        yield CacheInvalidate(tuple(names), WRITE_HOLD)
    except Exception as exc:
        logger.warning(
            "%s: %d cached identity row(s) could not be invalidated (%s); they are served "
            "until their TTL ends",
            ctx.schema.model,
            len(names),
            type(exc).__name__,
        )


def cached_keys(names: Sequence[str]) -> Flow[dict[str, bytes]]:
    """The cached key documents (as stored, wrapped) of ``names``: name → BSON bytes."""
    entries = {entry: name for name in names if (entry := key_entry(name)) is not None}
    found = yield from _get(list(entries))
    return {entries[entry]: raw for entry, raw in found.items() if entry in entries}


def keep_keys(documents: Mapping[str, bytes]) -> Flow[None]:
    """Offer key documents as read from the key vault (name → BSON bytes) to the cache."""
    entries = [
        (entry, raw) for name, raw in documents.items() if (entry := key_entry(name)) is not None
    ]
    yield from _put(entries)


def forget_keys(names: Iterable[str], hold: float = WRITE_HOLD) -> Flow[None]:
    """Invalidate the cached key documents of ``names`` (re-wrapped, shredded or discarded)."""
    entries = tuple(dict.fromkeys(e for n in names if (e := key_entry(n)) is not None))
    if not entries:
        return
    try:
        yield CacheInvalidate(entries, hold)
    except Exception as exc:
        logger.warning(
            "%d cached data key(s) could not be invalidated (%s)", len(entries), type(exc).__name__
        )


def hold_erased(names: Iterable[str]) -> Flow[None]:
    """Hold the key entries of erased subjects for ``ERASED_HOLD``, before their keys go.

    Raises:
        CacheUnavailable: the cache cannot be reached; nothing was erased yet, so the
            erasure can be retried once it is back (other processes would otherwise keep
            reading the subject until their cached copy's TTL ends).
    """
    entries = tuple(dict.fromkeys(e for n in names if (e := key_entry(n)) is not None))
    if not entries:
        return
    try:
        yield CacheInvalidate(entries, ERASED_HOLD)
    except Exception as exc:
        raise CacheUnavailable(
            f"the shared cache could not be reached ({type(exc).__name__}): the erasure did "
            "not start, because other processes could keep reading the subject's cached key; "
            "retry once the cache (configure(cache=...)) is reachable"
        ) from None
