"""A find by a searchable field reads each identity row it joins once: the probe keeps them.

Counted per collection, on mongomock (its collection calls) and on a server (the ``find``
commands sent to the identity collection).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable

import mongoengine as me
import mongomock
from mongomock.store import ServerStore
from pymongo import monitoring

import privata_mongo.mongoengine as pm
from privata_mongo import access_context
from privata_mongo.testing.counting import OperationCounter, counting_client_class
from testkit.backends import Backend

CONTEXT = {"actor": "dr.lee", "purpose": "treatment", "legal_basis": "art9_2h"}


class _Finds(monitoring.CommandListener):
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.counts[str(event.command["find"])] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to record."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to record."""


def _identity_finds(backend: Backend) -> Callable[[], int]:
    """Connect the facade counting identity ``find``s; the counter's reader."""
    if backend.uri is None:
        operations = OperationCounter()
        inner = functools.partial(mongomock.MongoClient, _store=ServerStore())
        pm.connect(
            backend.db_name,
            mongo_client_class=counting_client_class(inner, operations),
            uuidRepresentation="standard",
        )
        return lambda: operations.counts[("kept_patient__identity", "find")]
    finds = _Finds()
    pm.connect(
        backend.db_name, host=backend.uri, uuidRepresentation="standard", event_listeners=[finds]
    )
    return lambda: finds.counts["kept_patient__identity"]


def test_a_find_by_email_reads_the_identity_row_once(backend: Backend) -> None:
    count = _identity_finds(backend)
    try:

        class KeptPatient(pm.Document):
            first_name = pm.StringField()
            email = pm.EmailField(searchable=True)
            ward = pm.StringField()
            meta = {"collection": "kept_patient"}

        with access_context(**CONTEXT):
            for i in range(5):
                KeptPatient(first_name=f"P{i}", email=f"p{i}@example.org", ward="A").save()
            before = count()
            found = KeptPatient.objects.get(email="p3@example.org")
            assert (found.first_name, found.ward) == ("P3", "A")
            assert count() - before == 1
            before = count()
            names = [
                p.first_name
                for p in KeptPatient.objects(email__in=["p1@example.org", "p4@example.org"]).only(
                    "first_name"
                )
            ]
            assert sorted(names) == ["P1", "P4"]
            assert count() - before == 1
            before = count()  # a read of identity fields the probe did not select still joins
            assert KeptPatient.objects(ward="A").count() == 5
            assert sorted(p.email for p in KeptPatient.objects(ward="A")) == [
                f"p{i}@example.org" for i in range(5)
            ]
            assert count() - before == 1
    finally:
        me.disconnect()
