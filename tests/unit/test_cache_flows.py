"""The cache requests of the core flows, pinned with a scripted driver (no cache, no database).

What a read asks the cache, what it reads from the store when the cache lacks a name, what it
offers back, and what each write and erasure invalidates; and that a flow without a cache
yields no cache request at all.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from typing import Any

import bson
import pytest

from privata_mongo.core import cache
from privata_mongo.core.crypto import keys
from privata_mongo.core.flows.common import fetch_identities
from privata_mongo.core.ops import (
    CacheGet,
    CacheInvalidate,
    CachePut,
    FetchAll,
    FindErased,
    LoadKeys,
    ReplaceKeys,
    ShredKeys,
)
from privata_mongo.errors import CacheUnavailable
from privata_mongo.testing import ScriptedDriver
from tests.unit.test_encryption_flows import MASTER, Clock, _ring, _sealed_context, local

P = "pseu_" + "a" * 32


def _cached(ring: Any, **changes: Any) -> Any:
    return dataclasses.replace(_sealed_context(ring), cache=True, database="db", **changes)


def _stored(ring: Any, ctx: Any) -> dict[str, Any]:
    """An identity row as the store holds it (sealed under ``P``'s key)."""
    (row,) = local(keys.seal_rows(ctx, [{"_id": P, "first_name": "Ada"}]))
    return dict(row)


def _entry() -> str:
    return cache.row_entry("db", "patient__identity", P)


def test_a_cached_row_is_served_without_reading_the_store() -> None:
    ring = _ring()
    ctx = _cached(ring)
    key = local(ring.new_key(P))
    ring.add([key])
    row = _stored(ring, ctx)
    driver = ScriptedDriver(
        [(lambda op: op == CacheGet((_entry(),)), {_entry(): bson.encode(row)})]
    )
    found = driver.run(fetch_identities(ctx, [P]))
    assert found[P]["first_name"] == "Ada"


def test_a_missed_row_is_read_and_offered_as_stored() -> None:
    ring = _ring()
    ctx = _cached(ring)
    ring.add([local(ring.new_key(P))])
    row = _stored(ring, ctx)
    driver = ScriptedDriver([(CacheGet, {}), (FetchAll, [row]), (CachePut, None)])
    assert driver.run(fetch_identities(ctx, [P]))[P]["first_name"] == "Ada"
    put = driver.seen[2]
    assert isinstance(put, CachePut)
    assert put.entries == ((_entry(), bson.encode(row)),)
    assert b"Ada" not in put.entries[0][1]
    assert "entries" not in repr(put)  # the bytes are left out of repr


def test_an_unreachable_cache_reads_the_store() -> None:
    ring = _ring()
    ctx = _cached(ring)
    ring.add([local(ring.new_key(P))])
    row = _stored(ring, ctx)
    down = CacheUnavailable("down")
    driver = ScriptedDriver([(CacheGet, down), (FetchAll, [row]), (CachePut, down)])
    assert driver.run(fetch_identities(ctx, [P]))[P]["first_name"] == "Ada"


def test_without_a_cache_no_cache_request_is_made() -> None:
    ring = _ring()
    ctx = _sealed_context(ring)
    ring.add([local(ring.new_key(P))])
    row = _stored(ring, ctx)
    driver = ScriptedDriver([(FetchAll, [row])])
    assert driver.run(fetch_identities(ctx, [P]))[P]["first_name"] == "Ada"


def test_a_key_is_loaded_from_the_cache_and_offered_after_a_vault_read() -> None:
    source = _ring()
    document = local(source.new_key(P))
    source.add([document])
    raw = source.stored(P)
    assert raw is not None
    ring = _ring()
    ctx = _cached(ring)
    hit = ScriptedDriver([(lambda op: op == CacheGet((f"key:{P}",)), {f"key:{P}": raw})])
    assert hit.run(keys.load_keys(ctx, ring, [P], create=False)) == []
    assert ring.key_id(P) == source.key_id(P)
    fresh = _ring()
    miss = ScriptedDriver([(CacheGet, {}), (LoadKeys, [document]), (CachePut, None)])
    assert miss.run(keys.load_keys(_cached(fresh), fresh, [P], create=False)) == []
    put = miss.seen[2]
    assert isinstance(put, CachePut)
    assert put.entries == ((f"key:{P}", raw),)


def test_a_held_key_is_rechecked_and_a_held_entry_sends_it_to_the_vault() -> None:
    clock = Clock()
    ring = _ring(clock)
    document = local(ring.new_key(P))
    ring.add([document])
    raw = ring.stored(P)
    ctx = _cached(ring, key_recheck=0.5)
    assert ScriptedDriver([]).run(keys.load_keys(ctx, ring, [P], create=False)) == []
    clock.now = 0.6  # past the recheck interval: the cache confirms the key
    confirmed = ScriptedDriver([(CacheGet, {f"key:{P}": raw})])
    assert confirmed.run(keys.load_keys(ctx, ring, [P], create=False)) == []
    clock.now = 1.2  # erased elsewhere: the cache holds the name, the vault lacks the key
    gone = ScriptedDriver([(CacheGet, {}), (LoadKeys, [])])
    assert gone.run(keys.load_keys(ctx, ring, [P], create=False)) == [P]
    assert ring.key_id(P) is None  # forgotten: never used again


def test_a_shredding_holds_the_key_entries_before_the_keys_go() -> None:
    ring = _ring()
    ring.add([local(ring.new_key(P))])
    driver = ScriptedDriver([(CacheInvalidate, None), (ShredKeys, 1)])
    assert driver.run(keys.shred(ring, [P], cached=True)) == 1
    held = driver.seen[0]
    assert held == CacheInvalidate((f"key:{P}",), cache.ERASED_HOLD)


def test_a_shredding_does_not_start_when_the_hold_cannot_be_placed() -> None:
    ring = _ring()
    ring.add([local(ring.new_key(P))])
    driver = ScriptedDriver([(CacheInvalidate, CacheUnavailable("down"))])
    with pytest.raises(CacheUnavailable, match="did not start"):
        driver.run(keys.shred(ring, [P], cached=True))
    assert ring.key_id(P) is not None


def test_a_rotation_invalidates_the_rewrapped_keys() -> None:
    ring = _ring()
    key = local(ring.new_key(P))
    new_master = {"local": {"key": os.urandom(96)}}
    driver = ScriptedDriver(
        [(lambda op: op == LoadKeys(None), [key]), (ReplaceKeys, None), (CacheInvalidate, None)]
    )
    assert driver.run(keys.rotate(ring, MASTER, new_master, cached=True)) == 1
    assert driver.seen[2] == CacheInvalidate((f"key:{P}",), cache.WRITE_HOLD)


def test_an_erased_subjects_cached_row_reads_without_values() -> None:
    ring = _ring()
    ctx = _cached(ring)
    ring.add([local(ring.new_key(P))])
    row = _stored(ring, ctx)
    ring.forget([P])
    driver = ScriptedDriver(
        [
            (CacheGet, {_entry(): bson.encode(row)}),
            (CacheGet, {}),  # the key: held by the erasure
            (LoadKeys, []),
            (FindErased, [P]),
        ]
    )
    found = driver.run(fetch_identities(ctx, [P]))
    assert "first_name" not in found[P]


def test_a_row_the_codec_cannot_encode_is_read_but_not_offered() -> None:
    ring = _ring()
    ctx = _cached(ring)
    ring.add([local(ring.new_key(P))])
    row = {**_stored(ring, ctx), "_odd": uuid.uuid4()}
    driver = ScriptedDriver([(CacheGet, {}), (FetchAll, [row])])
    assert driver.run(fetch_identities(ctx, [P]))[P]["first_name"] == "Ada"
