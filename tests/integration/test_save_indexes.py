"""A hundred saves send the index creations of the first one, whatever mongoengine copies.

mongoengine calls ``with_options`` on the collection for every save with a write concern; the
proxy's copy shares the runtime's record of the indexes already ensured (the link index of the
clinical collection, the key vault's and the audit collection's), so no copy ensures them again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import mongoengine as me
import mongomock.collection
import pytest
from pymongo import WriteConcern

import privata_mongo.mongoengine as pm
from privata_mongo.testing.counting import CommandCounter
from testkit.backends import Backend


def _model() -> Any:
    class SavedPatient(me.Document):
        first_name = me.StringField()
        email = me.StringField(searchable=True)
        diagnosis = me.StringField()
        meta = {"collection": "saved_patient"}

    return SavedPatient


@pytest.fixture
def index_creations(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], int]]:
    """The facade connected; yields how many index creations reached storage so far.

    On mongomock the count is taken inside mongomock itself (a wrapping client class would
    hide from the proxy that the store is in the process, and updates would then be measured
    with ``$bsonSize``, which mongomock lacks).
    """
    if backend.uri is None:
        calls = {"n": 0}
        for name in ("create_index", "create_indexes"):
            original = getattr(mongomock.collection.Collection, name)

            def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                calls["n"] += 1
                return _original(*args, **kwargs)

            monkeypatch.setattr(mongomock.collection.Collection, name, counted)
        pm.connect(db=backend.db_name, **backend.mongoengine_settings())
        yield lambda: calls["n"]
    else:
        commands = CommandCounter()
        pm.connect(
            db=backend.db_name,
            host=backend.uri,
            uuidRepresentation="standard",
            event_listeners=[commands],
        )
        yield lambda: commands.total("createIndexes")
    me.disconnect()


def test_a_hundred_saves_create_the_indexes_of_the_first_save_only(
    index_creations: Callable[[], int],
) -> None:
    Patient = _model()
    Patient(first_name="P0", email="p0@example.org", diagnosis="J45").save()
    first = index_creations()
    assert first >= 1  # the first save did ensure them (the count sees index creations)
    for i in range(1, 100):
        patient = Patient(first_name=f"P{i}", email=f"p{i}@example.org", diagnosis="J45")
        patient.save(write_concern={"w": 1})  # mongoengine copies the collection with_options
        patient.diagnosis = "J45.9"
        patient.save()  # an update
    assert index_creations() == first


def test_a_with_options_copy_shares_what_was_ensured(
    index_creations: Callable[[], int],
) -> None:
    Patient = _model()
    collection = Patient._get_collection()
    copy = collection.with_options(write_concern=WriteConcern(w=1))
    assert type(copy) is type(collection)
    assert copy.write_concern == WriteConcern(w=1)
    copy.insert_one({"first_name": "Ada", "diagnosis": "J45"})
    ensured = index_creations()
    assert ensured >= 1
    collection.insert_one({"first_name": "Grace", "diagnosis": "J45"})
    collection.with_options(write_concern=WriteConcern(w=1)).insert_one({"first_name": "Hedy"})
    assert index_creations() == ensured
    assert collection.count_documents({}) == 3
