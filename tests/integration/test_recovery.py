"""The sweep on the async side: Beanie writes whose records failed, and an interrupted create.

``sweep_async`` takes the database a Beanie model is bound to and runs with the same runtime as
its operations; these tests drive it on every backend.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest

import privata_mongo
import privata_mongo.beanie as pb
from privata_mongo.audit import chain_key_async
from privata_mongo.config import current
from privata_mongo.core.audit.intents import seal_intent
from privata_mongo.recovery import SweepReport, sweep_async
from privata_mongo.testing.audit import ListAuditSink
from testkit.backends import Backend, beanie_database


@pytest.fixture
def settings() -> Iterator[None]:
    saved = current()
    yield
    privata_mongo.config._current = saved


def _model() -> Any:
    class SweptPerson(pb.Document):
        first_name: str
        email: str
        visits: int = 0

        class Settings:
            name = "swept_people"

    return SweptPerson


@pytest.mark.usefixtures("settings")
async def test_a_beanie_write_whose_record_failed_is_recorded_by_the_async_sweep(
    backend: Backend,
) -> None:
    Person = _model()
    sink = ListAuditSink()
    privata_mongo.configure(audit_sink=sink)
    async with beanie_database(backend) as database:
        await pb.init_beanie(database=database, document_models=[Person])
        sink.fail = OSError("audit server unreachable")
        await Person(first_name="Ada", email="ada@example.org").insert()  # applied, not failed
        sink.fail = None
        proxy = Person.get_pymongo_collection().database
        assert await proxy.inner["privata_audit.pending"].count_documents({}) == 1
        report = await sweep_async(proxy, older_than=0)
        assert report == SweepReport(1, 0, 1, 0, ("swept_people",))
        assert [(r["operation"], r["outcome"]) for r in sink.records] == [
            ("create", "recovered:ok")
        ]
        assert await proxy.inner["privata_audit.pending"].count_documents({}) == 0
        assert [p.first_name for p in await Person.find_all().to_list()] == ["Ada"]


@pytest.mark.usefixtures("settings")
async def test_the_async_sweep_removes_an_orphan_an_interrupted_create_left(
    backend: Backend,
) -> None:
    Person = _model()
    async with beanie_database(backend) as database:
        await pb.init_beanie(database=database, document_models=[Person])
        await Person(first_name="Cy", email="cy@example.org").insert()
        proxy = Person.get_pymongo_collection().database
        raw = proxy.inner
        orphan = "pseu_" + "a" * 32
        at = datetime.datetime(2026, 1, 1)
        # what a create killed between its two inserts leaves: its intent and its identity row
        await raw["swept_people__identity"].insert_one({"_id": orphan, "_rev": "r1"})
        # sealed as the library seals an intent: under the chain key of the audit collection
        key = await chain_key_async(raw.client, f"{raw.name}.privata_audit")
        await raw["privata_audit.pending"].insert_one(
            seal_intent(
                {
                    "_id": "i1",
                    "at": at,
                    "actor": "dr.lee",
                    "operation": "create",
                    "kind": "create",
                    "model": "SweptPerson",
                    "collection": "swept_people",
                    "subjects": [orphan],
                    "fields": ["email", "first_name"],
                },
                key,
            )
        )
        report = await sweep_async(proxy)
        assert (report.intents_resolved, report.orphans_removed) == (1, 1)
        assert await raw["swept_people__identity"].count_documents({"_id": orphan}) == 0
        records = await raw["privata_audit"].find({"subjects": orphan}).to_list(None)
        assert [(r["actor"], r["outcome"]) for r in records] == [
            ("dr.lee", "recovered:rolled_back")
        ]
        assert [p.first_name for p in await Person.find_all().to_list()] == ["Cy"]


@pytest.mark.usefixtures("settings")
async def test_the_async_sweep_takes_the_database_the_application_gave_init_beanie(
    backend: Backend,
) -> None:
    """An app on Beanie holds the real database it passed to ``init_beanie``, not a proxy."""
    Person = _model()
    sink = ListAuditSink()
    privata_mongo.configure(audit_sink=sink)
    async with beanie_database(backend) as database:
        await pb.init_beanie(database=database, document_models=[Person])
        sink.fail = OSError("audit server unreachable")
        await Person(first_name="Ada", email="ada@example.org").insert()
        sink.fail = None
        report = await sweep_async(database, older_than=0)
        assert report == SweepReport(1, 0, 1, 0, ("swept_people",))
        assert [(r["operation"], r["outcome"]) for r in sink.records] == [
            ("create", "recovered:ok")
        ]
        assert await database["privata_audit.pending"].count_documents({}) == 0
