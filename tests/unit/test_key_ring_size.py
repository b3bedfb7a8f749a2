"""The key ring holds about ``size`` subjects' keys: a process reading every subject stays bounded.

A key loaded in the last ``EVICTION_GRACE`` seconds is never evicted (an operation uses its keys
right after loading them), nor is one of the library's own keys.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

import privata_mongo
from privata_mongo.core.crypto.blind import INDEX_KEY_NAME
from privata_mongo.core.crypto.ring import EVICTION_GRACE, KeyRing
from privata_mongo.errors import ConfigurationError
from privata_mongo.testing import ScriptedDriver

MASTER = {"local": {"key": os.urandom(96)}}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _p(n: int) -> str:
    """The pseudonym (``pseu_`` + 32 hex) numbered ``n``."""
    return f"pseu_{n:032x}"


def _local(flow: Any) -> Any:
    return ScriptedDriver([]).run(flow)


def _ring(size: int) -> tuple[KeyRing, Clock]:
    clock = Clock()
    return KeyRing(MASTER, clock=clock, ttl=3_600.0, size=size), clock


def _load(ring: KeyRing, clock: Clock, names: list[str]) -> None:
    """Add the keys ``names``, each a grace period after the one before."""
    for name in names:
        ring.add([_local(ring.new_key(name))])
        clock.now += EVICTION_GRACE + 1


def _held(ring: KeyRing, names: list[str]) -> list[str]:
    return [n for n in names if ring.key_id(n) is not None]


def test_past_its_size_the_ring_drops_the_keys_loaded_longest_ago() -> None:
    ring, clock = _ring(size=3)
    names = [_p(i) for i in range(5)]
    _load(ring, clock, names)
    assert _held(ring, names) == names[2:]
    assert ring.missing([names[0], names[4]]) == [names[0]]


def test_keys_loaded_within_the_grace_period_stay_whatever_the_size() -> None:
    ring, clock = _ring(size=2)
    _load(ring, clock, [_p(100)])  # an old one
    batch = [_p(i) for i in range(5)]
    ring.add([_local(ring.new_key(n)) for n in batch])  # one operation's batch, just loaded
    assert _held(ring, batch) == batch
    assert ring.key_id(_p(100)) is None  # the old one made room, as far as it could


def test_a_confirmed_key_counts_as_recent_and_stays() -> None:
    ring, clock = _ring(size=2)
    a, b, c = _p(1), _p(2), _p(3)
    _load(ring, clock, [a, b])
    ring.confirm([a])  # the shared cache vouched for it: now the most recent
    clock.now += EVICTION_GRACE + 1
    _load(ring, clock, [c])
    assert _held(ring, [a, b, c]) == [a, c]


def test_the_librarys_own_keys_are_never_evicted() -> None:
    ring, clock = _ring(size=1)
    _load(ring, clock, [INDEX_KEY_NAME])
    names = [_p(i) for i in range(3)]
    _load(ring, clock, names)
    assert ring.key_id(INDEX_KEY_NAME) is not None
    assert _held(ring, names) == names[-1:]


def test_an_evicted_key_opens_again_once_it_is_loaded_again() -> None:
    ring, clock = _ring(size=1)
    a = _p(1)
    document = _local(ring.new_key(a))
    ring.add([document])
    sealed = _local(ring.seal(a, {"email": "a@example.org"}))
    clock.now += EVICTION_GRACE + 1
    _load(ring, clock, [_p(2)])
    assert ring.key_id(a) is None
    ring.add([document])
    assert _local(ring.open(sealed)) == {"email": "a@example.org"}


def test_the_size_is_a_positive_number_of_keys() -> None:
    with pytest.raises(ConfigurationError, match="key_cache_size must be a positive integer"):
        privata_mongo.configure(key_cache_size=0)
