"""The key ring holds about ``size`` subjects' keys: a process reading every subject stays bounded.

Past its size the ring drops the keys used longest ago, but never one a running operation still
holds (``core.crypto.holds``): the operation uses its keys right after it was handed them. A
stream lets go of its keys at each batch it emits; the library's own keys are neither evicted
nor counted.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import privata_mongo
from privata_mongo.core.crypto.blind import INDEX_KEY_NAME
from privata_mongo.core.crypto.holds import current, holding
from privata_mongo.core.crypto.ring import KeyRing
from privata_mongo.core.ops import Emit, Flow, Pause
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


def _ring(size: int) -> KeyRing:
    return KeyRing(MASTER, clock=Clock(), ttl=3_600.0, size=size)


def _documents(ring: KeyRing, names: list[str]) -> list[dict[str, Any]]:
    return [_local(ring.new_key(n)) for n in names]


def _held(ring: KeyRing, names: list[str]) -> list[str]:
    return [n for n in names if ring.key_id(n) is not None]


def _steps(flow: Flow[Any]) -> Iterator[Any]:
    """Run ``flow`` under ``holding`` one request at a time, answering each with ``None``."""
    wrapped = holding(flow)
    try:
        op = next(wrapped)
        while True:
            yield op
            op = wrapped.send(None)
    except StopIteration:
        return


def test_past_its_size_the_ring_drops_the_keys_used_longest_ago() -> None:
    ring = _ring(size=3)
    names = [_p(i) for i in range(5)]
    for document in _documents(ring, names):
        ring.add([document])
    assert _held(ring, names) == names[2:]
    assert ring.held_subjects == 3
    assert ring.missing([names[0], names[4]]) == [names[0]]


@pytest.mark.parametrize(
    "use",
    [
        pytest.param(lambda ring, name: ring.missing([name]), id="found by missing"),
        pytest.param(lambda ring, name: ring.confirm([name]), id="confirmed by the cache"),
    ],
)
def test_a_key_used_again_outlives_keys_loaded_after_it(use: Any) -> None:
    ring = _ring(size=2)
    a, b, c = _p(1), _p(2), _p(3)
    first, second, third = _documents(ring, [a, b, c])
    ring.add([first])
    ring.add([second])
    use(ring, a)  # now the most recently used
    ring.add([third])
    assert _held(ring, [a, b, c]) == [a, c]


def test_keys_a_running_operation_holds_stay_whatever_the_size() -> None:
    ring = _ring(size=2)
    old = _p(100)
    ring.add(_documents(ring, [old]))
    batch = [_p(i) for i in range(5)]
    documents = _documents(ring, batch)
    other = _documents(ring, [_p(200), _p(201)])

    def operation() -> Flow[None]:
        ring.add(documents)  # loads one batch's keys
        yield Pause(0)  # the round trip before the rows are opened
        ring.add(other)  # meanwhile, more keys come in
        assert _held(ring, batch) == batch

    list(_steps(operation()))
    assert ring.key_id(old) is None  # the old one made room, as far as it could
    assert ring.held_subjects == 7  # the bound is the keys in use; nothing is evicted on release
    ring.add(_documents(ring, [_p(300)]))
    assert ring.held_subjects == 2  # the next add brings the ring back to its size


def test_a_key_another_thread_holds_survives_a_burst_of_loads_in_this_one() -> None:
    ring = _ring(size=1)
    mine = _p(1)
    document = _documents(ring, [mine])[0]
    burst = _documents(ring, [_p(i) for i in range(10, 30)])
    loaded, burst_done = threading.Event(), threading.Event()
    opened: list[dict[str, Any]] = []

    def reader() -> Flow[None]:
        ring.add([document])
        sealed = yield from ring.seal(mine, {"email": "a@example.org"})
        loaded.set()
        yield Pause(0)
        burst_done.wait(5)
        opened.append((yield from ring.open(sealed)))

    thread = threading.Thread(target=lambda: list(_steps(reader())))
    thread.start()
    assert loaded.wait(5)
    for one in burst:  # another thread's operations, each past the size, none holding ``mine``
        ring.add([one])
    burst_done.set()
    thread.join(5)
    assert opened == [{"email": "a@example.org"}]
    assert ring.held_subjects <= 2  # the burst's own keys were evicted as it went


def test_a_stream_lets_go_of_its_keys_at_each_batch_it_emits() -> None:
    ring = _ring(size=2)
    batches = [[_p(10 * b + i) for i in range(4)] for b in range(3)]
    documents = {
        n: d for names in batches for n, d in zip(names, _documents(ring, names), strict=True)
    }
    sizes: list[int] = []

    def stream() -> Flow[None]:
        for names in batches:
            ring.add([documents[n] for n in names])
            sizes.append(ring.held_subjects)
            yield Emit((), tuple(names))

    list(_steps(stream()))
    # each batch is held whole while it is joined; the batches before it are not
    assert sizes == [4, 4, 4]


def test_an_operation_that_fails_or_is_closed_lets_go_of_its_keys() -> None:
    ring = _ring(size=1)
    names = [_p(i) for i in range(3)]
    documents = _documents(ring, names)

    def failing() -> Flow[None]:
        ring.add(documents)
        yield Pause(0)
        raise RuntimeError("the read failed")

    with pytest.raises(RuntimeError, match="the read failed"):
        list(_steps(failing()))

    def abandoned() -> Flow[None]:
        ring.add(documents)
        yield Pause(0)
        yield Pause(0)

    wrapped = holding(abandoned())
    next(wrapped)
    wrapped.close()
    ring.add(_documents(ring, [_p(9)]))
    assert ring.held_subjects == 1


def test_the_hold_is_current_only_while_the_flow_runs() -> None:
    seen: list[bool] = []

    def flow() -> Flow[None]:
        seen.append(current() is not None)
        yield Pause(0)
        seen.append(current() is not None)

    steps = _steps(flow())
    next(steps)
    seen.append(current() is not None)  # the driver's own code, between two requests
    list(steps)
    assert seen == [True, False, True]


def test_holding_passes_answers_errors_and_the_result_through() -> None:
    def flow() -> Flow[str]:
        answer = yield Pause(1)
        try:
            yield Pause(2)
        except KeyError as exc:
            return f"{answer}/{exc.args[0]}"
        return "no error"

    wrapped = holding(flow())
    assert next(wrapped) == Pause(1)
    assert wrapped.send("one") == Pause(2)
    with pytest.raises(StopIteration) as done:
        wrapped.throw(KeyError("two"))
    assert done.value.value == "one/two"


def test_the_librarys_own_keys_are_neither_evicted_nor_counted() -> None:
    ring = _ring(size=1)
    ring.add(_documents(ring, [INDEX_KEY_NAME]))
    names = [_p(i) for i in range(3)]
    for document in _documents(ring, names):
        ring.add([document])
    assert ring.key_id(INDEX_KEY_NAME) is not None
    assert _held(ring, names) == names[-1:]
    assert ring.held_subjects == 1


def test_an_evicted_key_opens_again_once_it_is_loaded_again() -> None:
    ring = _ring(size=1)
    a = _p(1)
    document = _documents(ring, [a])[0]
    ring.add([document])
    sealed = _local(ring.seal(a, {"email": "a@example.org"}))
    ring.add(_documents(ring, [_p(2)]))
    assert ring.key_id(a) is None
    ring.add([document])
    assert _local(ring.open(sealed)) == {"email": "a@example.org"}


def test_forgetting_a_key_keeps_the_count_of_subjects_right() -> None:
    ring = _ring(size=5)
    names = [_p(i) for i in range(3)]
    ring.add(_documents(ring, names))
    ring.forget(names[:1])
    assert ring.held_subjects == 2
    ring.add(_documents(ring, names[1:2]))  # a reload replaces the entry, not adds one
    assert ring.held_subjects == 2
    ring.forget()
    assert ring.held_subjects == 0


def test_the_size_is_a_positive_number_of_keys() -> None:
    with pytest.raises(ConfigurationError, match="key_cache_size must be a positive integer"):
        privata_mongo.configure(key_cache_size=0)
