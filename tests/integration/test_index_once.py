"""Internal indexes are created once per connection and collection, not with every write."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import mongoengine as me
import pytest

import privata_mongo.mongoengine as pm
from privata_mongo.testing.counting import CommandCounter, OperationCounter, counting_client_class
from testkit.backends import Backend


def _model() -> Any:
    class IndexedPatient(me.Document):
        first_name = me.StringField()
        diagnosis = me.StringField()
        meta = {"collection": "indexed_patient"}

    return IndexedPatient


@pytest.fixture
def counted(backend: Backend) -> Iterator[Callable[[str], int]]:
    """The facade connected with a counter; yields ``count(kind)`` of what reached storage.

    ``kind`` is ``"index"`` (index creations) or ``"all"`` (every operation or command).
    """
    if backend.uri is None:
        operations = OperationCounter()
        inner = backend.mongoengine_settings()["mongo_client_class"]
        pm.connect(
            db=backend.db_name,
            mongo_client_class=counting_client_class(inner, operations),
            uuidRepresentation="standard",
        )
        kinds = {"index": ("create_index",), "all": ()}
        counter: Any = operations
    else:
        commands = CommandCounter()
        pm.connect(
            db=backend.db_name,
            host=backend.uri,
            uuidRepresentation="standard",
            event_listeners=[commands],
        )
        kinds = {"index": ("createIndexes",), "all": ()}
        counter = commands
    try:
        yield lambda kind: counter.total(*kinds[kind])
    finally:
        me.disconnect()


def test_a_second_save_sends_no_create_indexes(counted: Callable[[str], int]) -> None:
    Patient = _model()
    Patient(first_name="Ada", diagnosis="J45").save()
    before_index, before_all = counted("index"), counted("all")
    Patient(first_name="Grace", diagnosis="J45").save()
    assert counted("index") - before_index == 0
    # the intent, the subject's key, the identity row, the clinical row, the audit record, its
    # checkpoint, the intent settled (docs/reliability.md, "Crashes and lost replies")
    assert counted("all") - before_all == 7


def test_dropping_the_collection_through_the_proxy_makes_the_link_index_again(
    counted: Callable[[str], int], backend: Backend
) -> None:
    Patient = _model()
    Patient(first_name="Ada", diagnosis="J45").save()
    Patient.drop_collection()
    before = counted("index")
    Patient(first_name="Grace", diagnosis="J45").save()
    assert counted("index") - before >= 1
    client = backend.client()
    try:
        names = client[backend.db_name]["indexed_patient"].index_information()
        assert "_pseudonym_1" in names
    finally:
        client.close()
