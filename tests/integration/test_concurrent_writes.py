"""Concurrent writes to one logical document: every update applies, in some serial order.

An update touching identity fields writes two rows (identity, then clinical). Under the
document's write lease (``core/flows/lease.py``) concurrent updates of one document wait for
each other, so none fails and none is lost, and the two halves always come from the same
serial order of the updates. These tests need a backend that applies each operation
atomically: mongomock behind ``serialised_mongomock()`` (mongomock itself is not thread-safe)
or a real server; FerretDB v1.24 loses concurrent updates even without privata, which the
first assertion of each test measures (``atomic_updates`` in ``compat_suite/requirements.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import mongoengine
import pymongo
import pytest

import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from compat_suite.requirements import requires
from privata_mongo.core.schema import LEASE_FIELD
from privata_mongo.embedded import AsyncMockClient
from privata_mongo.testing.serialised import delayed_embedded, serialised_mongomock
from testkit.backends import Backend

LATENCY = 0.0002
"""Seconds of simulated round trip per mongomock operation, so threads interleave as on a
server."""


class ConcurrentPatient(pm.Document):
    """One data subject: ``first_name`` is identity data, ``blood`` and ``score`` clinical."""

    first_name = pm.StringField()
    blood = pm.StringField()
    score = pm.IntField(default=0)
    meta = {"collection": "concurrent_patients"}


@pytest.fixture
def atomic(backend: Backend) -> Iterator[None]:
    """The backend made atomic per operation where it is not by itself (mongomock)."""
    with serialised_mongomock(LATENCY) if backend.name == "mongomock" else contextlib.nullcontext():
        yield


@pytest.fixture
def db(backend: Backend, atomic: None) -> Iterator[Any]:
    """The sync facade connected to this test's database; yields the raw database."""
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    raw_client = backend.client()
    try:
        yield raw_client[backend.db_name]
    finally:
        mongoengine.disconnect()
        raw_client.close()


def _in_threads(writers: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(i)`` for each writer in its own thread, all released at once."""
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except Exception as exc:  # collected: the test asserts there is none
            errors.append(exc)

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(run, range(writers)))
    return errors


def _lost_raw_increments(raw_db: Any, writers: int = 8, each: int = 50) -> int:
    """How many of ``writers * each`` concurrent raw ``$inc``s the backend lost."""
    raw = raw_db["atomicity_probe"]
    raw.insert_one({"_id": 1, "n": 0})
    _in_threads(
        writers, lambda _: [raw.update_one({"_id": 1}, {"$inc": {"n": 1}}) for _ in range(each)]
    )
    return writers * each - raw.find_one({"_id": 1})["n"]


@requires("atomic_updates")
@pytest.mark.parametrize(("writers", "each"), [(4, 10), (16, 4), (64, 1)])
def test_concurrent_updates_of_one_subject_all_apply(db: Any, writers: int, each: int) -> None:
    assert _lost_raw_increments(db) == 0, "the backend is not atomic per operation"
    patient = ConcurrentPatient(first_name="start", blood="0", score=0).save()
    names = {f"w{w}-{i}" for w in range(writers) for i in range(each)}

    def work(w: int) -> None:
        for i in range(each):
            ConcurrentPatient.objects(id=patient.id).update_one(
                inc__score=1, set__first_name=f"w{w}-{i}"
            )

    assert _in_threads(writers, work) == []
    stored = ConcurrentPatient.objects.get(id=patient.id)
    assert stored.score == writers * each
    assert stored.first_name in names
    leftover = db["concurrent_patients__identity"].count_documents({LEASE_FIELD: {"$exists": True}})
    assert leftover == 0


@requires("atomic_updates")
def test_concurrent_updates_of_both_halves_end_in_a_serial_order(db: Any) -> None:
    """Each update sets both halves to one letter: any serial order leaves them equal."""
    assert _lost_raw_increments(db) == 0, "the backend is not atomic per operation"
    letters = "ABCDEF"
    torn: list[tuple[str, str]] = []
    for _ in range(8):
        patient = ConcurrentPatient(first_name="0", blood="0").save()

        def work(w: int, pid: Any = patient.id) -> None:
            letter = letters[w]
            for _ in range(3):
                ConcurrentPatient.objects(id=pid).update_one(
                    set__first_name=letter, set__blood=letter
                )

        assert _in_threads(len(letters), work) == []
        stored = ConcurrentPatient.objects.get(id=patient.id)
        if stored.first_name != stored.blood:
            torn.append((stored.first_name, stored.blood))
    assert torn == []


@requires("atomic_updates")
def test_reads_never_observe_a_torn_document(db: Any) -> None:
    """A reader running beside writers of both halves sees each document whole.

    The writers go on until the reader has made all its reads, and before each read the reader
    waits for a write that landed after its previous read, so every read falls among writes
    however the threads are scheduled (on a busy machine a fixed number of writes could end
    before the reader ran) and each one sees a state the previous one did not.
    """
    assert _lost_raw_increments(db) == 0, "the backend is not atomic per operation"
    patient = ConcurrentPatient(first_name="0", blood="0").save()
    writers, reads, done = 3, 20, threading.Event()
    landed, count = threading.Condition(), [0]
    observed: list[tuple[str, str]] = []

    def work(w: int) -> None:
        if w == writers:
            try:
                last = 0
                for _ in range(reads):
                    with landed:
                        assert landed.wait_for(lambda last=last: count[0] > last, timeout=30)
                    seen = ConcurrentPatient.objects.get(id=patient.id)
                    observed.append((seen.first_name, seen.blood))
                    with landed:
                        last = count[0]
            finally:
                done.set()
            return
        i = 0
        while not done.is_set():
            value = f"{w}.{i}"
            ConcurrentPatient.objects(id=patient.id).update_one(
                set__first_name=value, set__blood=value
            )
            with landed:
                count[0] += 1
                landed.notify_all()
            i += 1

    assert _in_threads(writers + 1, work) == []
    assert len(set(observed)) == reads  # each read saw a state the one before it did not
    assert [pair for pair in observed if pair[0] != pair[1]] == []


class _AsyncPatient(pb.Document):
    first_name: str
    score: int = 0

    class Settings:
        name = "concurrent_async_patients"


@requires("atomic_updates")
@pytest.mark.parametrize(("writers", "each"), [(4, 10), (16, 4), (64, 1)])
async def test_concurrent_tasks_on_the_async_facade_all_apply(
    backend: Backend, writers: int, each: int
) -> None:
    raw_client = backend.client()
    try:
        with serialised_mongomock() if backend.name == "mongomock" else contextlib.nullcontext():
            lost = _lost_raw_increments(raw_client[backend.db_name])
    finally:
        raw_client.close()
    assert lost == 0, "the backend is not atomic per operation"
    if backend.name == "mongomock":
        client: Any = AsyncMockClient()
        delayed: Any = delayed_embedded(LATENCY)
    else:
        client = pymongo.AsyncMongoClient(backend.uri)
        delayed = contextlib.nullcontext()
    try:
        await pb.init_beanie(database=client[backend.db_name], document_models=[_AsyncPatient])
        patient = await _AsyncPatient(first_name="start").insert()

        async def work(w: int) -> None:
            for i in range(each):
                await _AsyncPatient.find_one(_AsyncPatient.id == patient.id).update(
                    {"$inc": {"score": 1}, "$set": {"first_name": f"t{w}-{i}"}}
                )

        with delayed:
            results = await asyncio.gather(
                *(work(w) for w in range(writers)), return_exceptions=True
            )
        assert [r for r in results if r is not None] == []
        stored = await _AsyncPatient.get(patient.id)
        assert stored is not None
        assert stored.score == writers * each
        assert stored.first_name.startswith("t")
    finally:
        if backend.name != "mongomock":
            await client.drop_database(backend.db_name)
            await client.close()
