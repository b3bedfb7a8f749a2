"""The core's encryption: the key ring, and the op sequences of sealed flows (no database)."""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Any

import bson
import pytest
from bson.binary import Binary
from bson.int64 import Int64

from privata_mongo.core.crypto import (
    INDEX_KEY_NAME,
    KEY_CHECK_NAME,
    Blind,
    KeyRing,
    blind_term,
    blind_terms,
    keys,
    legacy_blind_term,
    normalise_value,
    rewrap,
)
from privata_mongo.core.crypto import ring as ring_module
from privata_mongo.core.failures import BulkWriteFailed, WriteFailure
from privata_mongo.core.flows import write
from privata_mongo.core.flows.common import fetch_identities, resolve_filter
from privata_mongo.core.identity import IdentityIndex
from privata_mongo.core.ops import (
    Delete,
    DiscardKeys,
    FetchAll,
    Find,
    FindErased,
    Insert,
    LoadKeys,
    NextBatch,
    ReplaceKeys,
    ShredKeys,
    StoreKeys,
    Update,
    UpdateOutcome,
)
from privata_mongo.core.schema import BLIND_FIELD, PSEUDONYM_FIELD, SEALED_FIELD, Side
from privata_mongo.errors import ConfigurationError, IntegrityError, KeyUnavailable, SubjectErased
from privata_mongo.testing import ScriptedDriver
from tests.unit.builders import make_context, make_schema

MASTER = {"local": {"key": os.urandom(96)}}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def local(flow: Any) -> Any:
    """Run a key-ring flow: under the local master key it asks for nothing (no KMS request)."""
    return ScriptedDriver([]).run(flow)


def _blind(ring: KeyRing, scope: str, field: str, value: Any, database: str = "") -> Any:
    """A term as stored, in ``database`` (the unit contexts' database is unnamed)."""
    return blind_term(local(ring.index_key()), database, scope, field, value)


def _ring(clock: Clock | None = None) -> KeyRing:
    return KeyRing(MASTER, clock=clock or Clock(), ttl=60.0)


def _sealed_context(ring: KeyRing, *, checked: bool = True) -> Any:
    """A sealed schema's context; the ring's master key counts as checked unless told not.

    The master-key check (``core.crypto.check``) is pinned by its own tests below; the op
    sequences of the other flows are pinned without it.
    """
    ring.checked = checked
    schema = dataclasses.replace(make_schema(), sealed=True, searchable=frozenset({"email"}))
    return dataclasses.replace(make_context(schema), crypto=ring)


# -- the key ring ----------------------------------------------------------------------------


def test_seal_and_open_round_trip_in_the_csfle_format() -> None:
    ring = _ring()
    ring.add([local(ring.new_key("pseu_a"))])
    sealed = local(ring.seal("pseu_a", {"email": "a@x.org", "born": datetime.datetime(1990, 1, 2)}))
    assert isinstance(sealed, Binary)
    assert sealed.subtype == 6
    assert sealed[0] == 2  # random AEAD_AES_256_CBC_HMAC_SHA_512
    assert b"a@x.org" not in bytes(sealed)
    assert local(ring.open(sealed)) == {"email": "a@x.org", "born": datetime.datetime(1990, 1, 2)}
    assert local(ring.seal("pseu_a", {"email": "a@x.org"})) != local(
        ring.seal("pseu_a", {"email": "a@x.org"})
    )


def test_a_tampered_value_or_another_master_key_is_key_unavailable() -> None:
    ring = _ring()
    key = local(ring.new_key("pseu_a"))
    ring.add([key])
    sealed = bytearray(local(ring.seal("pseu_a", {"email": "a@x.org"})))
    sealed[-1] ^= 1
    with pytest.raises(KeyUnavailable):
        local(ring.open(Binary(bytes(sealed), 6)))
    other = KeyRing({"local": {"key": os.urandom(96)}}, clock=Clock())
    other.add([key])
    with pytest.raises(KeyUnavailable):
        local(other.open(local(ring.seal("pseu_a", {"email": "a@x.org"}))))


def test_keys_expire_after_the_ttl_and_forget_drops_them_at_once() -> None:
    clock = Clock()
    ring = _ring(clock)
    ring.add([local(ring.new_key("pseu_a"))])
    assert ring.missing(["pseu_a", "pseu_b"]) == ["pseu_b"]
    clock.now = 61.0
    assert ring.missing(["pseu_a"]) == ["pseu_a"]
    clock.now = 0.0
    sealed = local(ring.seal("pseu_a", {"email": "a@x.org"}))
    ring.forget(["pseu_a"])
    assert ring.missing(["pseu_a"]) == ["pseu_a"]
    with pytest.raises(KeyUnavailable):
        local(ring.open(sealed))


def test_a_libmongocrypt_instance_unwraps_a_bounded_number_of_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # libmongocrypt scans its whole key cache on every context: past the bound the ring takes
    # a fresh instance, and values sealed under the old one still open under the new.
    monkeypatch.setattr(ring_module, "_UNWRAPPED_PER_INSTANCE", 3)
    # Opens take libmongocrypt's path as under a remote master key (a ``local`` one is opened
    # by ``aead`` with no libmongocrypt context: tests/unit/test_aead.py).
    monkeypatch.setattr(ring_module, "_local_key", lambda provider, kms_providers: None)
    ring = _ring()
    instances: list[Any] = []
    new_crypt = ring._new_crypt
    monkeypatch.setattr(ring, "_new_crypt", lambda: instances.append(new_crypt()) or instances[-1])
    names = [f"pseu_{i}" for i in range(7)]
    ring.add([local(ring.new_key(name)) for name in names])
    sealed = [local(ring.seal(name, {"n": i})) for i, name in enumerate(names)]
    assert [local(ring.open(value)) for value in sealed] == [{"n": i} for i in range(7)]
    assert len(instances) >= 4  # 7 seals and 7 opens, 3 keys per instance at most


def test_blind_terms_compare_like_the_server_and_differ_by_field_and_collection() -> None:
    ring = _ring()
    ring.add([local(ring.new_key(INDEX_KEY_NAME))])
    assert (
        _blind(ring, "c", "n", 1) == _blind(ring, "c", "n", 1.0) == _blind(ring, "c", "n", Int64(1))
    )
    assert _blind(ring, "c", "email", "A@x") != _blind(ring, "c", "email", "a@x")
    assert _blind(ring, "c", "email", "a@x") != _blind(ring, "c", "phone", "a@x")
    assert _blind(ring, "c", "email", "a@x") != _blind(ring, "d", "email", "a@x")
    assert _blind(ring, "c", "email", None) is None
    assert blind_terms(local(ring.index_key()), "", "c", "tags", ["a", "b"]) == [
        _blind(ring, "c", "tags", "a"),
        _blind(ring, "c", "tags", "b"),
        _blind(ring, "c", "tags", ["a", "b"]),
    ]
    stamp = datetime.datetime(2020, 1, 1, 0, 0, 0, 123456)
    assert normalise_value(stamp) == datetime.datetime(2020, 1, 1, 0, 0, 0, 123000)


def test_rewrap_changes_the_wrapping_not_the_key() -> None:
    ring = _ring()
    key = local(ring.new_key("pseu_a"))
    ring.add([key])
    sealed = local(ring.seal("pseu_a", {"email": "a@x.org"}))
    new_master = {"local": {"key": os.urandom(96)}}
    (rewrapped,) = local(rewrap([key], MASTER, new_master))
    assert rewrapped["keyMaterial"] != key["keyMaterial"]
    assert rewrapped["masterKey"] == {"provider": "local"}
    after = KeyRing(new_master, clock=Clock())
    after.add([rewrapped])
    assert local(after.open(sealed)) == {"email": "a@x.org"}


# -- the identity index ------------------------------------------------------------------------


def test_sealed_pushdown_uses_blind_terms_for_searchable_fields_only() -> None:
    schema = dataclasses.replace(make_schema(), sealed=True, searchable=frozenset({"email"}))
    index = IdentityIndex(schema)
    assert index.pushdown("email", "a@x") == {f"{BLIND_FIELD}.email": Blind("email", "a@x")}
    assert index.pushdown("email", {"$in": ["a", "b"]}) == {
        f"{BLIND_FIELD}.email": {"$in": [Blind("email", "a"), Blind("email", "b")]}
    }
    assert index.pushdown("email", {"$exists": True}) == {f"{BLIND_FIELD}.email": {"$exists": True}}
    assert index.pushdown("email", {"$gt": "a"}) is None
    assert index.pushdown("first_name", "Ada") is None  # not searchable: in the process


def test_a_sealed_exists_sends_a_boolean_not_the_operand() -> None:
    schema = dataclasses.replace(make_schema(), sealed=True, searchable=frozenset({"email"}))
    index = IdentityIndex(schema)
    assert index.pushdown("email", {"$exists": "a@x"}) == {
        f"{BLIND_FIELD}.email": {"$exists": True}
    }
    assert index.pushdown("email", {"$exists": 0}) == {f"{BLIND_FIELD}.email": {"$exists": False}}


# -- sealed flows ------------------------------------------------------------------------------


def _stored_index_key(ring: KeyRing) -> dict[str, Any]:
    return local(ring.new_key(INDEX_KEY_NAME))


def test_insert_creates_keys_then_writes_sealed_identity_rows_first() -> None:
    ring = _ring()
    ctx = _sealed_context(ring)
    index_key = _stored_index_key(ring)
    driver = ScriptedDriver(
        [
            (lambda op: op == LoadKeys((INDEX_KEY_NAME,)), [index_key]),
            (StoreKeys, None),
            (Insert, write.InsertOutcome()),
            (Insert, write.InsertOutcome()),
        ]
    )
    driver.run(write.insert(ctx, [{"_id": 1, "first_name": "Ada", "email": "a@x", "age": 3}], True))
    (_, store, identity, clinical) = driver.seen
    assert isinstance(store, StoreKeys)
    assert [d["keyAltNames"] for d in store.documents] == [
        ["pseu_00000000000000000000000000000001"]
    ]
    assert isinstance(identity, Insert)
    (row,) = identity.documents
    assert set(row) == {"_id", "_rev", BLIND_FIELD, SEALED_FIELD}
    assert row[BLIND_FIELD] == {"email": _blind(ring, "patient__identity", "email", "a@x")}
    assert local(ring.open(row[SEALED_FIELD])) == {"first_name": "Ada", "email": "a@x"}
    assert isinstance(clinical, Insert)
    assert "a@x" not in repr(bson.decode(bson.encode(dict(clinical.documents[0]))))


def test_an_insert_whose_key_cannot_be_made_writes_nothing() -> None:
    ring = KeyRing({"local": {"key": os.urandom(96)}}, clock=Clock())
    ctx = _sealed_context(ring)
    foreign = local(_ring().new_key(INDEX_KEY_NAME))  # wrapped under another master key
    driver = ScriptedDriver([(LoadKeys, [foreign]), (StoreKeys, None)])
    with pytest.raises(KeyUnavailable) as caught:
        driver.run(write.insert(ctx, [{"_id": 1, "email": "a@x"}], True))
    assert caught.value.model == "Patient"
    assert "a@x" not in str(caught.value)
    assert not any(isinstance(op, Insert) for op in driver.seen)


def test_an_equality_on_a_searchable_field_is_a_blind_lookup() -> None:
    ring = _ring()
    ctx = _sealed_context(ring)
    index_key = _stored_index_key(ring)
    term = {}

    def lookup(op: Any) -> bool:
        term.update(op.query.filter)
        return isinstance(op, FetchAll)

    driver = ScriptedDriver([(LoadKeys, [index_key]), (lookup, [{"_id": "pseu_1"}])])
    clinical = driver.run(resolve_filter(ctx, {"email": "a@x", "age": 3}))
    assert term == {f"{BLIND_FIELD}.email": _blind(ring, "patient__identity", "email", "a@x")}
    assert "pseu_1" in repr(clinical)
    assert "a@x" not in repr(clinical)


def test_reading_a_shredded_subject_returns_no_identity_values() -> None:
    ring = _ring()
    ctx = _sealed_context(ring)
    key = local(ring.new_key("pseu_a"))
    ring.add([key])
    rows = [
        {"_id": "pseu_a", "_rev": "r", SEALED_FIELD: local(ring.seal("pseu_a", {"email": "a@x"}))},
        {"_id": "pseu_b", "_rev": "r", SEALED_FIELD: local(ring.seal("pseu_a", {"email": "b@x"}))},
    ]
    ring.forget()
    driver = ScriptedDriver(
        [
            (FetchAll, rows),
            (LoadKeys, [key]),
            (lambda op: op == FindErased(("pseu_b",)), ["pseu_b"]),
        ]
    )
    found = driver.run(fetch_identities(ctx, ["pseu_a", "pseu_b"]))
    assert found == {
        "pseu_a": {"_id": "pseu_a", "_rev": "r", "email": "a@x"},
        "pseu_b": {"_id": "pseu_b", "_rev": "r"},
    }


def _two_rows(ring: KeyRing) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two subjects' stored rows and their key documents, each sealed under its own key."""
    made = [local(ring.new_key("pseu_a")), local(ring.new_key("pseu_b"))]
    ring.add(made)
    rows = [
        {"_id": p, "_rev": "r", SEALED_FIELD: local(ring.seal(p, {"email": e}))}
        for p, e in (("pseu_a", "ada@example.org"), ("pseu_b", "grace@example.org"))
    ]
    ring.forget()
    return rows, made


def test_identity_ciphertexts_swapped_between_rows_are_an_integrity_error() -> None:
    ring = _ring()
    ctx = _sealed_context(ring)
    rows, made = _two_rows(ring)
    swapped = [
        {**rows[0], SEALED_FIELD: rows[1][SEALED_FIELD]},
        {**rows[1], SEALED_FIELD: rows[0][SEALED_FIELD]},
    ]
    for wanted in (["pseu_a"], ["pseu_b"], ["pseu_a", "pseu_b"]):
        ring.forget()
        found = [r for r in swapped if r["_id"] in wanted]
        driver = ScriptedDriver([(FetchAll, found), (LoadKeys, made)])
        with pytest.raises(IntegrityError) as caught:
            driver.run(fetch_identities(ctx, wanted))
        assert isinstance(caught.value, KeyUnavailable)  # fails closed, as a lost key does
        assert caught.value.pseudonyms == tuple(wanted)
        message = str(caught.value)
        assert all(p in message for p in wanted)
        assert "ada@" not in message
        assert "grace@" not in message
    # the stored rows, unchanged, read fine
    ring.forget()
    driver = ScriptedDriver([(FetchAll, rows), (LoadKeys, made)])
    found = driver.run(fetch_identities(ctx, ["pseu_a", "pseu_b"]))
    assert found["pseu_a"]["email"] == "ada@example.org"
    assert found["pseu_b"]["email"] == "grace@example.org"


def test_unseal_row_refuses_a_ciphertext_of_another_subjects_key() -> None:
    ring = _ring()
    rows, made = _two_rows(ring)
    moved = {**rows[0], SEALED_FIELD: rows[1][SEALED_FIELD]}
    driver = ScriptedDriver([(LoadKeys, [made[0]])])
    with pytest.raises(IntegrityError, match="pseu_a") as caught:
        driver.run(keys.unseal_row(ring, moved))
    assert caught.value.pseudonyms == ("pseu_a",)
    assert "grace@" not in str(caught.value)
    ring.forget()
    driver = ScriptedDriver([(LoadKeys, [made[0]])])
    assert driver.run(keys.unseal_row(ring, rows[0])) == {"email": "ada@example.org"}


def test_a_key_missing_without_a_tombstone_is_key_unavailable() -> None:
    ring = _ring()
    ctx = _sealed_context(ring)
    ring.add([local(ring.new_key("pseu_a"))])
    rows = [{"_id": "pseu_a", SEALED_FIELD: local(ring.seal("pseu_a", {"email": "a@x"}))}]
    ring.forget()
    driver = ScriptedDriver([(FetchAll, rows), (LoadKeys, []), (FindErased, [])])
    with pytest.raises(KeyUnavailable, match="missing from the key vault") as caught:
        driver.run(fetch_identities(ctx, ["pseu_a"]))
    assert caught.value.fields == ("address", "email", "first_name")


def test_a_key_shredded_while_a_read_decrypts_reads_as_an_erased_subject() -> None:
    # a delete in another thread of this process shreds pseu_a's key (every ring forgets it)
    # after the reader's identity read, while it loads pseu_b's: pseu_a now reads as erased,
    # not as a row sealed under another subject's key (IntegrityError)
    ring = _ring()
    ctx = _sealed_context(ring)
    key_a, key_b = local(ring.new_key("pseu_a")), local(ring.new_key("pseu_b"))
    ring.add([key_a, key_b])
    rows = [
        {"_id": name, SEALED_FIELD: local(ring.seal(name, {"first_name": name[-1]}))}
        for name in ("pseu_a", "pseu_b")
    ]
    ring.forget(["pseu_b"])

    def loading_b(op: Any) -> bool:
        ring.forget(["pseu_a"])  # the concurrent shred
        return op == LoadKeys(("pseu_b",))

    driver = ScriptedDriver(
        [
            (FetchAll, rows),
            (loading_b, [key_b]),
            (lambda op: op == LoadKeys(("pseu_a",)), []),
            (lambda op: op == FindErased(("pseu_a",)), ["pseu_a"]),
        ]
    )
    found = driver.run(fetch_identities(ctx, ["pseu_a", "pseu_b"]))
    assert found["pseu_a"] == {"_id": "pseu_a"}
    assert found["pseu_b"]["first_name"] == "b"


def test_a_key_shredded_just_before_it_opens_a_row_reads_as_an_erased_subject() -> None:
    ring = _ring()
    ring.add([local(ring.new_key("pseu_a"))])
    value = local(ring.seal("pseu_a", {"first_name": "Ada"}))
    ring.forget(["pseu_a"])  # shredded between the key check and the decryption
    driver = ScriptedDriver([(lambda op: op == FindErased(("pseu_a",)), ["pseu_a"])])
    assert driver.run(keys._opened_unless_erased(ring, "pseu_a", value)) == {}
    lost = ScriptedDriver([(lambda op: op == FindErased(("pseu_a",)), [])])
    with pytest.raises(KeyUnavailable):
        lost.run(keys._opened_unless_erased(ring, "pseu_a", value))


def test_an_erased_subject_is_not_given_a_new_key() -> None:
    ring = _ring()
    ctx = _sealed_context(ring)
    driver = ScriptedDriver([(LoadKeys, []), (FindErased, ["pseu_a"])])
    with pytest.raises(SubjectErased):
        driver.run(keys.seal_rows(ctx, [{"_id": "pseu_a", "first_name": "Ada"}]))


def test_shred_destroys_keys_and_flushes_the_ring() -> None:
    ring = _ring()
    ring.add([local(ring.new_key("pseu_a"))])
    driver = ScriptedDriver([(lambda op: op == ShredKeys(("pseu_a",)), 1)])
    assert driver.run(keys.shred(ring, ["pseu_a", INDEX_KEY_NAME])) == 1
    assert ring.missing(["pseu_a"]) == ["pseu_a"]


def test_rotate_rewraps_every_key_it_reads() -> None:
    ring = _ring()
    key = local(ring.new_key("pseu_a"))
    new_master = {"local": {"key": os.urandom(96)}}
    driver = ScriptedDriver([(lambda op: op == LoadKeys(None), [key]), (ReplaceKeys, None)])
    assert driver.run(keys.rotate(ring, MASTER, new_master)) == 1
    (_, replace) = driver.seen
    assert isinstance(replace, ReplaceKeys)
    assert replace.documents[0]["keyMaterial"] != key["keyMaterial"]


# -- a key vault that lost the blind index key ---------------------------------------------


def test_a_search_without_the_index_key_fails_when_rows_are_indexed_and_creates_no_key() -> None:
    ctx = _sealed_context(_ring())
    driver = ScriptedDriver(
        [
            (lambda op: op == LoadKeys((INDEX_KEY_NAME,)), []),
            (lambda op: isinstance(op, FetchAll) and BLIND_FIELD in op.query.filter, [{"_id": 1}]),
        ]
    )
    with pytest.raises(KeyUnavailable, match="restore the key vault") as caught:
        driver.run(resolve_filter(ctx, {"email": "a@x.org"}))
    assert "a@x.org" not in str(caught.value)
    assert caught.value.model == "Patient"
    assert not any(isinstance(op, StoreKeys) for op in driver.seen)


def test_a_search_without_the_index_key_and_no_indexed_rows_matches_nothing() -> None:
    ctx = _sealed_context(_ring())
    sent: list[Any] = []

    def identity_lookup(op: Any) -> bool:
        sent.append(op.query.filter)
        return isinstance(op, FetchAll)

    driver = ScriptedDriver(
        [
            (lambda op: op == LoadKeys((INDEX_KEY_NAME,)), []),
            (lambda op: isinstance(op, FetchAll) and BLIND_FIELD in op.query.filter, []),
            (identity_lookup, []),
        ]
    )
    driver.run(resolve_filter(ctx, {"email": {"$in": ["a@x.org", None]}}))
    assert sent == [{f"{BLIND_FIELD}.email": {"$in": [Binary(b""), None]}}]
    assert not any(isinstance(op, StoreKeys) for op in driver.seen)


def test_a_write_does_not_replace_a_lost_index_key_of_indexed_rows() -> None:
    ctx = _sealed_context(_ring())
    driver = ScriptedDriver(
        [
            (lambda op: op == LoadKeys((INDEX_KEY_NAME,)), []),
            (lambda op: isinstance(op, FetchAll) and BLIND_FIELD in op.query.filter, [{"_id": 1}]),
        ]
    )
    with pytest.raises(KeyUnavailable, match="restore the key vault"):
        driver.run(write.insert(ctx, [{"_id": 1, "email": "a@x.org"}], True))
    assert not any(isinstance(op, (StoreKeys, Insert)) for op in driver.seen)


# -- a key whose TTL ends during an operation ----------------------------------------------


class TickingClock(Clock):
    """Monotonic seconds that advance by ``tick`` at every reading (0: frozen)."""

    def __init__(self) -> None:
        super().__init__()
        self.tick = 0.0

    def __call__(self) -> float:
        now = self.now
        self.now += self.tick
        return now

    def expire_at(self, reading: int, ttl: float = 60.0) -> None:
        """From now on, keys held since time 0 expire at the ``reading``-th clock reading."""
        self.now, self.tick = ttl + 0.5 - reading, 1.0


def _ticking_ring() -> tuple[KeyRing, TickingClock]:
    clock = TickingClock()
    return KeyRing(MASTER, clock=clock, ttl=60.0), clock


def _held(ring: KeyRing, *names: str) -> list[dict[str, Any]]:
    made = [local(ring.new_key(n)) for n in names]
    ring.add(made)
    return made


# Whichever clock reading of an operation the TTL ends at (at the first one the operation
# decides what to load, and sees its keys fresh), it completes with the keys it holds.
READINGS = range(1, 8)


@pytest.mark.parametrize("reading", READINGS)
def test_keys_that_expire_during_a_write_stay_usable_until_it_ends(reading: int) -> None:
    ring, clock = _ticking_ring()
    ctx = _sealed_context(ring)
    _held(ring, INDEX_KEY_NAME, "pseu_a")
    clock.expire_at(reading)
    rows = local(keys.seal_rows(ctx, [{"_id": "pseu_a", "email": "a@x.org"}]))
    assert local(ring.open(rows[0][SEALED_FIELD])) == {"email": "a@x.org"}


@pytest.mark.parametrize("reading", READINGS)
def test_keys_that_expire_during_a_read_stay_usable_until_it_ends(reading: int) -> None:
    ring, clock = _ticking_ring()
    ctx = _sealed_context(ring)
    documents = _held(ring, "pseu_a", "pseu_b")
    rows = [
        {"_id": p, "_rev": "r", SEALED_FIELD: local(ring.seal(p, {"email": f"{p}@x.org"}))}
        for p in ("pseu_a", "pseu_b")
    ]
    ring.forget()  # libmongocrypt's copies go too; the key documents are held again at time 0
    ring.add(documents)
    clock.expire_at(reading)
    plain = local(keys.unseal_rows(ctx, rows))
    assert [p["email"] for p in plain] == ["pseu_a@x.org", "pseu_b@x.org"]


@pytest.mark.parametrize("reading", READINGS)
def test_an_index_key_that_expires_during_a_search_stays_usable_until_it_ends(
    reading: int,
) -> None:
    ring, clock = _ticking_ring()
    ctx = _sealed_context(ring)
    (index_document,) = _held(ring, INDEX_KEY_NAME)
    expected = _blind(ring, "patient__identity", "email", "a@x.org")
    ring.forget()  # the derived secret goes too; the key document is held again at time 0
    ring.add([index_document])
    clock.expire_at(reading)
    stored = f"{BLIND_FIELD}.email"
    assert local(keys.blind_filter(ctx, {stored: Blind("email", "a@x.org")})) == {stored: expected}


def test_an_expired_key_is_loaded_again_and_a_vanished_one_is_dropped() -> None:
    clock = Clock()
    ring = _ring(clock)
    ctx = _sealed_context(ring)
    ring.add([local(ring.new_key("pseu_a"))])
    sealed = local(ring.seal("pseu_a", {"email": "a@x.org"}))
    clock.now = 61.0
    assert ring.missing(["pseu_a"]) == ["pseu_a"]
    # shredded by another process: the reload finds nothing, the held copy is not used again
    driver = ScriptedDriver([(LoadKeys, []), (FindErased, ["pseu_a"])])
    rows = [{"_id": "pseu_a", SEALED_FIELD: sealed}]
    assert driver.run(keys.unseal_rows(ctx, rows)) == [{"_id": "pseu_a"}]
    with pytest.raises(KeyUnavailable):
        local(ring.open(sealed))


# -- the master-key check ------------------------------------------------------------------


def _insert_ops() -> list[Any]:
    """What an insert of one subject with no searchable value asks once its ring is checked."""
    return [(StoreKeys, None), (Insert, write.InsertOutcome()), (Insert, write.InsertOutcome())]


def _is_check_lookup(op: Any) -> bool:
    return op == LoadKeys((KEY_CHECK_NAME, INDEX_KEY_NAME))


def test_the_first_key_of_an_empty_vault_comes_with_a_key_check_key() -> None:
    ring = _ring()
    ctx = _sealed_context(ring, checked=False)
    stored: list[Any] = []

    def store(op: Any) -> bool:
        stored.extend(op.documents)
        return isinstance(op, StoreKeys)

    driver = ScriptedDriver(
        [
            (_is_check_lookup, []),
            (lambda op: op == LoadKeys(None), []),
            (lambda op: isinstance(op, FetchAll) and SEALED_FIELD in op.query.filter, []),
            (store, None),
            # the key-check key is read back: the list is filled by the time it is sent
            (lambda op: op == LoadKeys((KEY_CHECK_NAME,)), stored),
            *_insert_ops(),
        ]
    )
    driver.run(write.insert(ctx, [{"_id": 1, "first_name": "Ada"}], True))
    assert [d["keyAltNames"] for d in stored[:1]] == [[KEY_CHECK_NAME]]
    assert ring.checked
    # checked once per ring: the next write goes straight to its keys
    again = ScriptedDriver(_insert_ops())
    again.run(write.insert(ctx, [{"_id": 2, "first_name": "Grace"}], True))


def test_a_wrong_master_key_is_refused_before_any_key_or_row_is_written() -> None:
    right = _ring()
    check = local(right.new_key(KEY_CHECK_NAME))
    wrong = KeyRing({"local": {"key": os.urandom(96)}}, clock=Clock())
    ctx = _sealed_context(wrong, checked=False)
    driver = ScriptedDriver([(_is_check_lookup, [check])])
    with pytest.raises(ConfigurationError, match="rotate_master_key") as caught:
        driver.run(write.insert(ctx, [{"_id": 1, "first_name": "Ada"}], True))
    assert "PRIVATA_MASTER_KEY" in str(caught.value)
    assert not wrong.checked
    assert not any(isinstance(op, (StoreKeys, Insert)) for op in driver.seen)


@pytest.mark.parametrize("sample_name", [INDEX_KEY_NAME, "pseu_old"])
def test_a_vault_without_a_key_check_key_gets_one_if_its_keys_unwrap(sample_name: str) -> None:
    ring = _ring()
    ctx = _sealed_context(ring, checked=False)
    sample = local(ring.new_key(sample_name))
    made: list[Any] = []

    def store(op: Any) -> bool:
        made.extend(op.documents)
        return isinstance(op, StoreKeys)

    lookup = [sample] if sample_name == INDEX_KEY_NAME else []
    everything = (
        [] if sample_name == INDEX_KEY_NAME else [(lambda op: op == LoadKeys(None), [sample])]
    )
    driver = ScriptedDriver(
        [
            (_is_check_lookup, lookup),
            *everything,
            (store, None),
            (lambda op: op == LoadKeys((KEY_CHECK_NAME,)), made),
        ]
    )
    driver.run(keys.load_keys(ctx, ring, [], create=True))
    assert [d["keyAltNames"] for d in made] == [[KEY_CHECK_NAME]]
    assert ring.checked


def test_a_vault_without_a_key_check_key_whose_keys_do_not_unwrap_is_refused() -> None:
    foreign = local(_ring().new_key(INDEX_KEY_NAME))
    ring = KeyRing({"local": {"key": os.urandom(96)}}, clock=Clock())
    ctx = _sealed_context(ring, checked=False)
    driver = ScriptedDriver([(_is_check_lookup, [foreign])])
    with pytest.raises(ConfigurationError, match="another master key"):
        driver.run(keys.load_keys(ctx, ring, ["pseu_a"], create=True))
    assert not any(isinstance(op, StoreKeys) for op in driver.seen)


def test_an_empty_vault_next_to_encrypted_rows_is_refused() -> None:
    ring = _ring()
    ctx = _sealed_context(ring, checked=False)
    driver = ScriptedDriver(
        [
            (_is_check_lookup, []),
            (lambda op: op == LoadKeys(None), []),
            (lambda op: isinstance(op, FetchAll) and SEALED_FIELD in op.query.filter, [{"_id": 1}]),
        ]
    )
    with pytest.raises(KeyUnavailable, match="restore it from its backup") as caught:
        driver.run(write.insert(ctx, [{"_id": 1, "first_name": "Ada"}], True))
    assert caught.value.model == "Patient"
    assert not any(isinstance(op, (StoreKeys, Insert)) for op in driver.seen)


def test_rotation_makes_the_ring_check_its_master_key_again() -> None:
    ring = _ring()
    ring.checked = True
    key = local(ring.new_key(KEY_CHECK_NAME))
    driver = ScriptedDriver([(LoadKeys, [key]), (ReplaceKeys, None)])
    driver.run(keys.rotate(ring, MASTER, {"local": {"key": os.urandom(96)}}))
    assert not ring.checked


# -- a failed create -----------------------------------------------------------------------


def test_a_create_that_fails_deletes_the_key_it_made() -> None:
    ring = _ring()
    ctx = _sealed_context(ring)
    duplicate = write.InsertOutcome(failures=(WriteFailure(0, 11000, "duplicate key"),))
    driver = ScriptedDriver(
        [
            (StoreKeys, None),
            (Insert, duplicate),
            (lambda op: op == DiscardKeys(("pseu_00000000000000000000000000000001",)), None),
        ]
    )
    with pytest.raises(BulkWriteFailed):
        driver.run(write.insert(ctx, [{"_id": 1, "first_name": "Ada"}], True))
    assert not any(isinstance(op, ShredKeys) for op in driver.seen)  # no tombstone


def test_a_create_that_raises_keeps_the_keys_it_made_for_the_sweeper_and_reraises() -> None:
    """A raised error is ambiguous: a stalled server may apply the insert after the lookup.

    Deleting the key then would leave a stored document sealed under a deleted key, so the key
    and any row stay, named by the operation's intent, for the recovery sweeper.
    """
    ring = _ring()
    ctx = _sealed_context(ring)
    driver = ScriptedDriver(
        [
            (StoreKeys, None),
            (Insert, ConnectionError("reset")),
            (FetchAll, []),  # not found: proves nothing
        ]
    )
    with pytest.raises(ConnectionError, match="reset"):
        driver.run(write.insert(ctx, [{"_id": 1, "first_name": "Ada"}, {"_id": 2}], True))
    assert isinstance(driver.seen[-1], FetchAll)
    assert not any(isinstance(op, (DiscardKeys, Delete)) for op in driver.seen)


def test_a_clinical_insert_the_server_refused_removes_the_identity_rows_and_keys_at_once() -> None:
    """A refused write is final: no lookup, the identity half and its key go straight away."""
    ring = _ring()
    ctx = dataclasses.replace(_sealed_context(ring), refused=lambda e: isinstance(e, ValueError))
    driver = ScriptedDriver(
        [
            (StoreKeys, None),
            (lambda op: isinstance(op, Insert) and op.side is Side.IDENTITY, write.InsertOutcome()),
            (lambda op: isinstance(op, Insert) and op.side is Side.CLINICAL, ValueError("$ key")),
            (lambda op: isinstance(op, Delete) and op.side is Side.IDENTITY, None),
            (lambda op: op == DiscardKeys(("pseu_00000000000000000000000000000001",)), None),
        ]
    )
    with pytest.raises(ValueError, match="key"):
        driver.run(write.insert(ctx, [{"_id": 1, "first_name": "Ada"}], True))
    assert not any(isinstance(op, FetchAll) for op in driver.seen)


# -- a delete shreds the keys of the subjects it removes -------------------------------------


def _side(kind: type, side: Side) -> Any:
    return lambda op: isinstance(op, kind) and op.side is side


def test_a_delete_shreds_the_keys_of_its_subjects_after_their_identity_rows() -> None:
    ring = _ring()
    ring.add([local(ring.new_key("pseu_a"))])
    ctx = _sealed_context(ring)
    rows = [{"_id": 1, PSEUDONYM_FIELD: "pseu_a"}, {"_id": 2, PSEUDONYM_FIELD: "pseu_b"}]
    driver = ScriptedDriver(
        [
            (_side(Find, Side.CLINICAL), "cursor"),
            (NextBatch, rows),
            (_side(Delete, Side.CLINICAL), 2),
            (_side(Delete, Side.IDENTITY), 2),
            (lambda op: op == ShredKeys(("pseu_a", "pseu_b")), 1),
        ]
    )
    assert driver.run(write.delete(ctx, {}, True, {})) == 2
    assert ring.missing(["pseu_a"]) == ["pseu_a"]  # flushed from memory too


def test_a_delete_whose_shred_fails_fails_with_both_rows_gone_and_the_key_left() -> None:
    # the document is gone for every reader; the key is left to the sweeper, which finds the
    # delete's intent (tests/unit/test_intents.py) and shreds it
    ctx = _sealed_context(_ring())
    driver = ScriptedDriver(
        [
            (_side(Delete, Side.CLINICAL), 1),
            (_side(Delete, Side.IDENTITY), 1),
            (ShredKeys, ConnectionError("vault down")),
        ]
    )
    with pytest.raises(ConnectionError):
        driver.run(write.delete_rows(ctx, [{"_id": 1, PSEUDONYM_FIELD: "pseu_a"}], {}))
    assert [type(op) for op in driver.seen] == [Delete, Delete, ShredKeys]


# -- blind index terms are bound to the database -------------------------------------------


def _in(database: str, ring: KeyRing, *, legacy: bool = False) -> Any:
    return dataclasses.replace(_sealed_context(ring), database=database, legacy_terms=legacy)


def test_the_same_value_in_the_same_collection_of_two_databases_has_two_terms() -> None:
    ring = _ring()
    ring.add([_stored_index_key(ring), local(ring.new_key("pseu_a"))])
    row = {"_id": "pseu_a", "email": "a@x", "first_name": "Ada"}
    terms = {
        database: local(keys.seal_rows(_in(database, ring), [dict(row)]))[0][BLIND_FIELD]
        for database in ("tenant_a", "tenant_b")
    }
    assert terms["tenant_a"]["email"] != terms["tenant_b"]["email"]
    # within one database the term is stable: that is what lets the server find the row
    again = local(keys.seal_rows(_in("tenant_a", ring), [dict(row)]))[0][BLIND_FIELD]
    assert again == terms["tenant_a"]
    key = local(ring.index_key())
    assert terms["tenant_a"]["email"] == blind_term(
        key, "tenant_a", "patient__identity", "email", "a@x"
    )
    # and it is none of the first format's (collection only) terms
    assert terms["tenant_a"]["email"] != legacy_blind_term(key, "patient__identity", "email", "a@x")


def test_a_lookup_matches_first_format_terms_alongside_while_they_are_read() -> None:
    ring = _ring()
    ring.add([_stored_index_key(ring)])
    key = local(ring.index_key())
    stored = f"{BLIND_FIELD}.email"
    current = blind_term(key, "tenant_a", "patient__identity", "email", "a@x")
    old = legacy_blind_term(key, "patient__identity", "email", "a@x")
    other = blind_term(key, "tenant_a", "patient__identity", "email", "b@x")
    other_old = legacy_blind_term(key, "patient__identity", "email", "b@x")
    legacy = _in("tenant_a", ring, legacy=True)
    assert local(keys.blind_filter(legacy, {stored: Blind("email", "a@x")})) == {
        stored: {"$in": [current, old]}
    }
    both = {stored: {"$in": [Blind("email", "a@x"), Blind("email", "b@x")]}}
    assert local(keys.blind_filter(legacy, both)) == {
        stored: {"$in": [current, old, other, other_old]}
    }
    assert local(keys.blind_filter(legacy, {stored: Blind("email", None)})) == {stored: None}
    # once re-indexed, lookups send this format's term only
    modern = _in("tenant_a", ring)
    assert local(keys.blind_filter(modern, {stored: Blind("email", "a@x")})) == {stored: current}


# -- a data key missing in a listing -------------------------------------------------------


def test_a_missing_key_fails_the_batch_naming_its_subject_and_no_value() -> None:
    ring = _ring()
    ctx = _sealed_context(ring)
    key_a, key_b = local(ring.new_key("pseu_a")), local(ring.new_key("pseu_b"))
    ring.add([key_a, key_b])
    rows = [
        {"_id": name, SEALED_FIELD: local(ring.seal(name, {"email": f"{name}@x.org"}))}
        for name in ("pseu_a", "pseu_b")
    ]
    ring.forget()
    driver = ScriptedDriver(  # pseu_b's key is gone from the vault, with no tombstone
        [(FetchAll, rows), (LoadKeys, [key_a]), (lambda op: op == FindErased(("pseu_b",)), [])]
    )
    with pytest.raises(KeyUnavailable) as caught:
        driver.run(fetch_identities(ctx, ["pseu_a", "pseu_b"]))
    assert caught.value.pseudonyms == ("pseu_b",)
    assert "pseu_b" in str(caught.value)
    assert "pseu_a" not in str(caught.value)
    assert "@x.org" not in str(caught.value)


def test_reindex_rewrites_first_format_terms_skips_current_ones_and_drops_erased_ones() -> None:
    ring = _ring()
    index_key = _stored_index_key(ring)
    ring.add([index_key])
    key = local(ring.index_key())
    ctx = _in("tenant_a", ring)
    names = ("pseu_a", "pseu_b", "pseu_c")
    documents = {n: local(ring.new_key(n)) for n in names}
    ring.add(documents.values())

    def row(name: str, term: Any) -> dict[str, Any]:
        sealed = local(ring.seal(name, {"email": f"{name}@x"}))
        return {"_id": name, "_rev": "r", BLIND_FIELD: {"email": term}, SEALED_FIELD: sealed}

    current = {
        n: blind_term(key, "tenant_a", "patient__identity", "email", f"{n}@x") for n in names
    }
    rows = [
        row("pseu_a", legacy_blind_term(key, "patient__identity", "email", "pseu_a@x")),
        row("pseu_b", current["pseu_b"]),  # already current: left alone
        row("pseu_c", legacy_blind_term(key, "patient__identity", "email", "pseu_c@x")),
    ]
    ring.forget()
    driver = ScriptedDriver(
        [
            (FetchAll, rows),
            (LoadKeys, [index_key]),
            (LoadKeys, [documents["pseu_a"], documents["pseu_b"]]),  # pseu_c was shredded
            (lambda op: op == FindErased(("pseu_c",)), ["pseu_c"]),
            (Update, UpdateOutcome(1, 1)),
            (Update, UpdateOutcome(1, 1)),
        ]
    )
    assert driver.run(keys.reindex(ctx)) == 2
    updates = [op for op in driver.seen if isinstance(op, Update)]
    assert [(u.side, u.filter) for u in updates] == [
        (Side.IDENTITY, {"_id": "pseu_a", "_rev": "r"}),
        (Side.IDENTITY, {"_id": "pseu_c", "_rev": "r"}),
    ]
    assert updates[0].update == {"$set": {BLIND_FIELD: {"email": current["pseu_a"]}}}
    assert updates[1].update == {"$unset": {BLIND_FIELD: ""}}
