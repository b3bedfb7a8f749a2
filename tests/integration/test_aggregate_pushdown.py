"""A ``$group`` on an identity field is pushed down: unbounded by the scan limit, native results.

The server computes partial groups per pseudonym; the wrapper reads the identity rows once per
batch of partial groups and merges. So the result equals native mongoengine's over the same
documents, however many there are beyond the model's scan limit, and the round trips the wrapper
adds are the identity batches: they grow with ``ceil(subjects / batch_size)``, not with the
documents. (``stress/bench_aggregate.py`` measures the same at 50,000 documents.)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from typing import Any

import mongoengine as me
import mongomock
import pytest
from mongomock.store import ServerStore

import privata_mongo
import privata_mongo.mongoengine as pm
from privata_mongo.testing.counting import CommandCounter, OperationCounter, counting_client_class
from testkit.backends import Backend

SCAN_LIMIT = 50
BATCH = 100
PIPELINE: list[dict[str, Any]] = [
    {"$match": {"visits": {"$gte": 0}}},
    {"$group": {"_id": "$last_name", "n": {"$sum": 1}, "visits": {"$sum": "$visits"}}},
    {"$sort": {"_id": 1}},
]


@pytest.fixture
def small_batches() -> Iterator[None]:
    """Identity rows read ``BATCH`` at a time, so that a few hundred documents make batches."""
    saved = privata_mongo.config.current()
    privata_mongo.configure(batch_size=BATCH)
    yield
    privata_mongo.config._current = saved


def _model(alias: str) -> Any:
    class AggPatient(me.Document):
        last_name = me.StringField()
        visits = me.IntField()
        meta = {
            "collection": "agg_patient",
            "db_alias": alias,
            "privacy": {"scan_limit": SCAN_LIMIT},
        }

    return AggPatient


def _connect(backend: Backend, store: ServerStore, connect: Callable[..., Any], db: str) -> Any:
    """Connect with a counter of the reads that reach storage (audit appends left out)."""
    if backend.uri is None:
        operations = OperationCounter()
        inner = functools.partial(mongomock.MongoClient, _store=store)
        connect(
            db,
            alias="agg",
            mongo_client_class=counting_client_class(inner, operations),
            uuidRepresentation="standard",
        )
        trail = ("privata_audit", "privata_audit.checkpoints")  # the appends and checkpoints
        return lambda: (
            operations.total() - sum(n for (c, _), n in operations.counts.items() if c in trail)
        )
    commands = CommandCounter()
    connect(
        db, alias="agg", host=backend.uri, uuidRepresentation="standard", event_listeners=[commands]
    )
    return lambda: commands.total("find", "getMore", "aggregate")


def _run(backend: Backend, connect: Callable[..., Any], db: str, n: int) -> tuple[Any, int]:
    """The pipeline's result over ``n`` documents, and the round trips it took."""
    count = _connect(backend, ServerStore(), connect, db)
    try:
        Patient = _model("agg")
        Patient.objects.insert(
            [Patient(last_name=f"L{i % 7}", visits=i % 5) for i in range(n)], load_bulk=False
        )
        before = count()
        result = list(Patient.objects.aggregate(PIPELINE))
        trips = count() - before
        Patient.drop_collection()
        return result, trips
    finally:
        me.disconnect("agg")


@pytest.mark.usefixtures("small_batches")
def test_a_group_on_an_identity_field_is_pushed_down_past_the_scan_limit(
    backend: Backend,
) -> None:
    extra: dict[int, int] = {}
    for n in (2 * SCAN_LIMIT + 20, 5 * BATCH + 1, 12 * BATCH + 1):
        native, native_trips = _run(backend, me.connect, f"{backend.db_name}n{n}", n)
        wrapped, wrapped_trips = _run(backend, pm.connect, f"{backend.db_name}w{n}", n)
        assert wrapped == native
        assert sum(group["n"] for group in wrapped) == n > SCAN_LIMIT
        extra[n] = wrapped_trips - native_trips
    # Every document is one data subject here, so there is one partial group per document and
    # one identity read per batch of them; on a server, reading the next batch of partial
    # groups is one more round trip (a getMore) after the first.
    batches = {n: math.ceil(n / BATCH) for n in extra}
    assert batches == {2 * SCAN_LIMIT + 20: 2, 5 * BATCH + 1: 6, 12 * BATCH + 1: 13}
    per_batch = 1 if backend.uri is None else 2
    assert extra == {n: per_batch * b - (per_batch - 1) for n, b in batches.items()}
