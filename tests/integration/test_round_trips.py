"""Reads join identity rows per batch: round trips do not grow with the number of documents.

On mongomock every collection operation is a round trip (counted by a counting client); on a
real server the commands on the wire are counted (pymongo command monitoring). Either way the
wrapper must add the same small number of round trips to what native mongoengine needs, for
100 documents as for 1,000.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import mongoengine as me
import mongomock
from mongomock.store import ServerStore
from pymongo import monitoring

import privata_mongo
import privata_mongo.config
import privata_mongo.mongoengine as pm
from privata_mongo.encryption import forget_keys
from privata_mongo.runtime.keys import held_everywhere
from privata_mongo.testing.counting import CommandCounter, OperationCounter, counting_client_class
from testkit.backends import Backend


def _models(alias: str) -> tuple[Any, Any]:
    class Clinic(me.Document):
        name = me.StringField()
        phone = me.StringField()
        meta = {"collection": "rt_clinic", "db_alias": alias}

    class Visit(me.Document):
        first_name = me.StringField()
        email = me.StringField()
        clinic = me.ReferenceField(Clinic)
        score = me.IntField()
        meta = {"collection": "rt_visit", "db_alias": alias}

    return Clinic, Visit


class _Meter:
    """Connects an ODM to the backend with a counter on everything that reaches storage."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = ServerStore()

    def connect(self, connect: Callable[..., Any], db: str) -> Callable[[], int]:
        if self.backend.uri is None:
            operations = OperationCounter()
            inner = functools.partial(mongomock.MongoClient, _store=self.store)
            connect(
                db,
                alias="rt",
                mongo_client_class=counting_client_class(inner, operations),
                uuidRepresentation="standard",
            )
            operations.reset()
            # Reads only: the audit trail's appends and checkpoints (one each per read
            # operation, whatever the page size; their cost is measured by
            # stress/bench_audit.py) are left out, as the wire count below leaves out every write.
            trail = ("privata_audit", "privata_audit.checkpoints")
            return lambda: (
                operations.total() - sum(n for (c, _), n in operations.counts.items() if c in trail)
            )
        commands = CommandCounter()
        connect(
            db,
            alias="rt",
            host=self.backend.uri,
            uuidRepresentation="standard",
            event_listeners=[commands],
        )
        return lambda: commands.total("find", "getMore", "aggregate")


def _round_trips(meter: _Meter, connect: Callable[..., Any], db: str, n: int) -> tuple[int, int]:
    """Round trips of a page, and of the same page with select_related."""
    count = meter.connect(connect, db)
    try:
        Clinic, Visit = _models("rt")
        clinics = [Clinic(name=f"C{i}", phone=f"+1-555-{i:04d}").save() for i in range(3)]
        Visit.objects.insert(
            [
                Visit(first_name=f"N{i}", email=f"v{i}@x.org", clinic=clinics[i % 3], score=i)
                for i in range(n)
            ],
            load_bulk=False,
        )
        before = count()
        page = list(Visit.objects[:n])
        assert len(page) == n
        assert page[-1].email == f"v{n - 1}@x.org"
        middle = count()
        related = list(Visit.objects[:n].select_related())
        assert related[0].clinic.phone == "+1-555-0000"
        after = count()
        Visit.drop_collection()
        Clinic.drop_collection()
        return middle - before, after - middle
    finally:
        me.disconnect("rt")


def test_wrapper_adds_the_same_round_trips_for_100_and_1000_documents(backend: Backend) -> None:
    meter = _Meter(backend)
    extra = {}
    for n in (100, 1000):
        native = _round_trips(meter, me.connect, backend.db_name + "n", n)
        wrapped = _round_trips(meter, pm.connect, backend.db_name + "w", n)
        extra[n] = (wrapped[0] - native[0], wrapped[1] - native[1])
    assert extra[100] == extra[1000], extra
    # one identity read for the page; with select_related one more for the referenced clinics
    assert extra[100] == (1, 2), extra


class _ByCollection(monitoring.CommandListener):
    """Commands on the wire, by ``(collection, command name)``."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        target = event.command.get("collection" if name == "getMore" else name)
        if isinstance(target, str):
            key = (target, event.command_name)
            self.counts[key] = self.counts.get(key, 0) + 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to record."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to record."""


_SERVER_NAMES = {"find_one_and_update": "findAndModify"}


def _connect_counted(backend: Backend) -> Callable[..., int]:
    """Connect alias ``rt``; ``sent(collection, *operations)`` counts what has reached storage.

    On mongomock the collection methods called (``find``, ``find_one_and_update`` …, the
    outermost only), on a server the wire commands (``find``, ``getMore``,
    ``findAndModify`` …); an operation is named either way.
    """
    counts: dict[tuple[str, str], int]
    if backend.uri is None:
        operations = OperationCounter()
        inner = functools.partial(mongomock.MongoClient, _store=ServerStore())
        pm.connect(
            backend.db_name,
            alias="rt",
            mongo_client_class=counting_client_class(inner, operations),
            uuidRepresentation="standard",
        )
        counts = operations.counts
    else:
        listener = _ByCollection()
        pm.connect(
            backend.db_name,
            alias="rt",
            host=backend.uri,
            uuidRepresentation="standard",
            event_listeners=[listener],
        )
        counts = listener.counts

    def sent(collection: str, *names: str) -> int:
        wanted = set(names) | {_SERVER_NAMES.get(n, n) for n in names}
        return sum(n for (c, op), n in counts.items() if c == collection and op in wanted)

    return sent


def test_a_page_of_300_subjects_loads_their_keys_in_one_read(backend: Backend) -> None:
    # 300 keys are more than a server's first batch (101 documents): without a limit and a
    # batch size the key look-up takes a getMore.
    sent = _connect_counted(backend)

    def reads() -> int:
        return sent("__keyVault", "find", "getMore")

    try:
        _, Visit = _models("rt")
        Visit.objects.insert(
            [Visit(first_name=f"N{i}", email=f"v{i}@x.org", score=i) for i in range(300)],
            load_bulk=False,
        )
        forget_keys()
        before = reads()
        page = list(Visit.objects.order_by("score"))
        assert [v.email for v in page[:2]] == ["v0@x.org", "v1@x.org"]
        assert len(page) == 300
        assert reads() - before == 1
        Visit.drop_collection()
    finally:
        me.disconnect("rt")


def test_a_key_ring_smaller_than_the_subjects_read_still_reads_every_one(
    backend: Backend,
) -> None:
    # the ring stays at 2 subjects' keys while 6 subjects are created, each get of an evicted
    # one loads its key again, and a page of 6 holds its 6 keys while it is joined
    saved = privata_mongo.config.current()
    privata_mongo.configure(key_cache_size=2)
    pm.connect(backend.db_name, alias="rt", **backend.mongoengine_settings())
    try:
        _, Visit = _models("rt")
        forget_keys()

        for i in range(6):
            Visit(first_name=f"N{i}", email=f"v{i}@x.org", score=i).save()
        assert held_everywhere() == 2
        for i in (0, 5, 1, 4, 0):
            assert Visit.objects.get(score=i).email == f"v{i}@x.org"
            assert held_everywhere() == 2
        page = [v.email for v in Visit.objects.order_by("score")]
        assert page == [f"v{i}@x.org" for i in range(6)]
        assert held_everywhere() == 6  # evicted at the next add, not at the page's end
        Visit(first_name="N6", email="v6@x.org", score=6).save()
        assert held_everywhere() == 2
        Visit.drop_collection()
    finally:
        me.disconnect("rt")
        privata_mongo.config._current = saved


def test_a_single_identity_update_reads_its_row_once_and_leases_the_identity_with_its_read(
    backend: Backend,
) -> None:
    # one clinical read (the row itself, not its id first), and the lease taken by the call
    # that returns the identity row it leased; the reply's values are the update's
    sent = _connect_counted(backend)
    try:
        _, Visit = _models("rt")
        visit = Visit(first_name="Ada", email="old@x.org", score=1).save()
        calls = ("rt_visit", "find"), ("rt_visit__identity", "find_one_and_update")
        before = [sent(*call) for call in (*calls, ("rt_visit__identity", "find"))]
        assert Visit.objects(id=visit.id).update_one(set__email="new@x.org") == 1
        after = [sent(*call) for call in (*calls, ("rt_visit__identity", "find"))]
        assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 0]
        assert Visit.objects.get(id=visit.id).email == "new@x.org"
        Visit.drop_collection()
    finally:
        me.disconnect("rt")
