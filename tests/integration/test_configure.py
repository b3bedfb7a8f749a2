"""``configure`` takes effect for every later operation, on collections already in use.

A collection handed to an ODM (mongoengine keeps it on the document class, Beanie on its
settings) outlives any number of ``configure`` calls; each operation reads the settings in
force when it starts. The storage layout is the exception: it cannot change under documents
already stored, and ``configure`` says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import privata_mongo
import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from privata_mongo import ConfigurationError, UnsupportedQuery
from privata_mongo.config import current
from testkit.backends import Backend


@pytest.fixture
def settings() -> Iterator[None]:
    saved = current()
    yield
    privata_mongo.config._current = saved


@pytest.mark.usefixtures("settings")
def test_a_new_scan_limit_applies_to_a_model_already_used(connected: Any) -> None:
    class Limited(pm.Document):
        first_name = pm.StringField()
        ward = pm.StringField()
        meta = {"collection": "configure_limited"}

    Limited.objects.insert([Limited(first_name=f"N{i}", ward="A") for i in range(6)])
    assert len(Limited.objects(first_name__startswith="N")) == 6  # the default limit: 10,000

    privata_mongo.configure(scan_limit=4)
    with pytest.raises(UnsupportedQuery, match="more than 4 documents"):
        list(Limited.objects(first_name__startswith="N"))

    privata_mongo.configure(scan_limit=6)
    assert len(Limited.objects(first_name__startswith="N")) == 6


@pytest.mark.usefixtures("settings")
def test_a_models_own_scan_limit_still_wins_over_the_configured_one(connected: Any) -> None:
    class Declared(pm.Document):
        first_name = pm.StringField()
        meta = {"collection": "configure_declared", "privacy": {"scan_limit": 2}}

    Declared.objects.insert([Declared(first_name=f"N{i}") for i in range(3)])
    privata_mongo.configure(scan_limit=100)
    with pytest.raises(UnsupportedQuery, match="more than 2 documents"):
        list(Declared.objects(first_name__startswith="N"))


@pytest.mark.usefixtures("settings")
async def test_a_new_scan_limit_applies_to_a_beanie_model_already_used(backend: Backend) -> None:
    class Member(pb.Document):
        first_name: str
        ward: str = "A"

        class Settings:
            name = "configure_members"

    import pymongo

    client: Any = None
    if backend.uri is None:
        database: Any = pb.embedded_database(backend.db_name)
    else:
        client = pymongo.AsyncMongoClient(backend.uri)
        database = client[backend.db_name]
    try:
        await pb.init_beanie(database=database, document_models=[Member])
        for i in range(5):
            await Member(first_name=f"N{i}").insert()
        query = {"first_name": {"$regex": "^N"}}
        assert len(await Member.find(query).to_list()) == 5
        privata_mongo.configure(scan_limit=3)
        with pytest.raises(UnsupportedQuery, match="more than 3 documents"):
            await Member.find(query).to_list()
    finally:
        if client is not None:
            await client.drop_database(backend.db_name)
            await client.close()


@pytest.mark.usefixtures("settings")
def test_the_storage_layout_cannot_change_once_a_model_is_used(connected: Any) -> None:
    class Used(pm.Document):
        first_name = pm.StringField()
        meta = {"collection": "configure_used"}

    Used(first_name="Ada").save()
    with pytest.raises(ConfigurationError, match=r"identity_suffix.*restart the process"):
        privata_mongo.configure(identity_suffix="_pii")
    with pytest.raises(ConfigurationError, match="classification"):
        privata_mongo.configure(classification={"Used.first_name": False})
    assert current().identity_suffix == "__identity"
    # restating the layout in force is no change
    privata_mongo.configure(identity_suffix="__identity", audit_max_subjects=50)
    assert current().audit_max_subjects == 50
    assert Used.objects.get().first_name == "Ada"


def test_configure_names_what_needs_a_restart_in_its_docstring() -> None:
    doc = privata_mongo.configure.__doc__ or ""
    assert "later operation" in doc
    assert "LAYOUT_SETTINGS" in doc
    assert set(privata_mongo.config.LAYOUT_SETTINGS) == {
        "classification",
        "name_defaults",
        "identity_suffix",
        "encryption",
        "searchable_names",
    }
