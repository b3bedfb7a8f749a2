"""Restriction, objection and break-glass on the async facade (Beanie), on every backend.

The same subjects as the sync tests: ``bob`` restricted with ``legal_claims`` allowed, ``cy``
objecting to ``research``. Beanie's queries, counts, pages, ``distinct``, aggregation and the
raw async collection see exactly the subjects visible under the purpose; stored markers and
audit records are asserted on the real collections.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pymongo
import pytest
from mongomock.store import ServerStore

import privata_mongo
import privata_mongo.beanie as pb
from privata_mongo import audit, restriction
from privata_mongo.config import current
from privata_mongo.embedded import AsyncMockClient
from privata_mongo.errors import ProcessingRestricted, UnsupportedQuery
from privata_mongo.testing.audit import ListAuditSink
from testkit.backends import Backend

VISIBLE = {
    None: {"ada", "cy"},
    "treatment": {"ada", "cy"},
    "research": {"ada"},
    "legal_claims": {"ada", "bob", "cy"},
}


@pytest.fixture
def sink() -> Iterator[ListAuditSink]:
    saved = current()
    made = ListAuditSink()
    privata_mongo.configure(audit_sink=made)
    yield made
    privata_mongo.config._current = saved


def _model() -> Any:
    class RestrictedMember(pb.Document):
        first_name: str
        email: str
        ward: str

        class Settings:
            name = "restricted_members"

    return RestrictedMember


@contextlib.asynccontextmanager
async def _people(backend: Backend) -> AsyncIterator[tuple[Any, Any, dict[str, str]]]:
    """The model, its privata database and the subjects' pseudonyms, requests recorded."""
    client: Any = (
        AsyncMockClient(ServerStore())
        if backend.uri is None
        else pymongo.AsyncMongoClient(backend.uri)
    )
    try:
        Member = _model()
        await pb.init_beanie(database=client[backend.db_name], document_models=[Member])
        for name, ward in (("ada", "north"), ("bob", "south"), ("cy", "east")):
            await Member(first_name=name, email=f"{name}@example.org", ward=ward).insert()
        db = Member.get_pymongo_collection().database
        rows = await db.inner["restricted_members"].find({}).to_list(None)
        by_id = {r["_id"]: r["_pseudonym"] for r in rows}
        people = {m.first_name: by_id[m.id] for m in await Member.find_all().to_list()}
        with privata_mongo.access_context(actor="dpo", purpose="compliance", legal_basis="c"):
            await restriction.restrict_async(db, people["bob"], allowed_purposes=["legal_claims"])
            await restriction.object_async(db, people["cy"], "research")
        yield Member, db, people
    finally:
        await client.close()


def _names(documents: Any) -> set[str]:
    return {d["first_name"] if isinstance(d, dict) else d.first_name for d in documents}


@pytest.mark.parametrize("purpose", list(VISIBLE))
@pytest.mark.usefixtures("sink")
async def test_each_async_read_path_returns_exactly_the_visible_subjects(
    backend: Backend, purpose: str | None
) -> None:
    visible = VISIBLE[purpose]
    async with _people(backend) as (Member, db, _):
        raw = db["restricted_members"]
        with privata_mongo.access_context(actor="dr.lee", purpose=purpose):
            assert _names(await Member.find_all().to_list()) == visible
            assert await Member.find_all().count() == len(visible)
            pages = [
                await Member.find_all().sort("ward").skip(i).limit(1).to_list() for i in range(3)
            ]
            assert _names(p for page in pages for p in page) == visible
            assert sum(len(p) for p in pages) == len(visible)
            by_email = Member.find({"email": {"$regex": "example"}}).sort("email")
            assert _names(await by_email.to_list()) == visible
            assert len(await Member.distinct("ward")) == len(visible)
            emails = await Member.distinct("email")
            assert {e.split("@")[0] for e in emails} == visible
            counted = await Member.aggregate([{"$count": "n"}]).to_list()
            assert (counted[0]["n"] if counted else 0) == len(visible)
            assert _names(await raw.find({}).to_list(None)) == visible
            assert await raw.count_documents({}) == len(visible)
            assert await raw.estimated_document_count() == len(visible)
            assert (await Member.find_one({"first_name": "bob"}) is not None) is ("bob" in visible)


async def test_async_writes_are_refused_and_markers_stored(
    backend: Backend, sink: ListAuditSink
) -> None:
    async with _people(backend) as (Member, db, people):
        raw = db["restricted_members"]
        with privata_mongo.access_context(actor="dr.lee", purpose="treatment"):
            with pytest.raises(ProcessingRestricted):
                await raw.update_many({}, {"$set": {"ward": "west"}})
            with pytest.raises(UnsupportedQuery):
                await raw.update_many({}, {"$unset": {"_rst": ""}})
        with privata_mongo.access_context(actor="counsel", purpose="legal_claims"):
            bob = await Member.find_one({"first_name": "bob"})
            bob.ward = "court"
            await bob.save()  # Beanie replaces the document: the marker stays
        stored = await db.inner["restricted_members"].find_one({"_pseudonym": people["bob"]})
        assert stored["ward"] == "court"
        assert stored["_rst"] == {"r": True, "a": ["legal_claims"]}
        identity = await db.inner["restricted_members__identity"].find_one({"_id": people["cy"]})
        assert identity["_rst"] == {"o": ["research"]}
        named = [(r["operation"], r["subjects"]) for r in sink.records]
        assert ("restrict", [people["bob"]]) in named
        assert ("object", [people["cy"]]) in named
        with privata_mongo.access_context(actor="dpo", purpose="compliance"):
            await restriction.lift_restriction_async(db, people["bob"])
            await restriction.withdraw_objection_async(db, people["cy"], "research")
        with privata_mongo.access_context(actor="dr.lee", purpose="research"):
            assert _names(await Member.find_all().to_list()) == {"ada", "bob", "cy"}
        for half, key in (
            ("restricted_members", "_pseudonym"),
            ("restricted_members__identity", "_id"),
        ):
            assert (await db.inner[half].find_one({key: people["bob"]}))["_rst"] == {}
            assert (await db.inner[half].find_one({key: people["cy"]}))["_rst"] == {"o": []}
        rights = ("restrict", "object", "lift_restriction", "withdraw_objection")
        assert [r["operation"] for r in sink.records if r["operation"] in rights] == list(rights)
        assert sink.records[-2]["actor"] == "dpo"


@pytest.mark.usefixtures("sink")
async def test_async_break_glass_reads_the_restricted_subject_and_is_listed(
    backend: Backend, sink: ListAuditSink
) -> None:
    async with _people(backend) as (Member, _, people):
        with (
            privata_mongo.access_context(actor="dr.er", purpose="treatment"),
            restriction.break_glass(actor="dr.er", reason="cardiac arrest, bay 2"),
        ):
            assert _names(await Member.find_all().to_list()) == {"ada", "bob", "cy"}
        listed = audit.break_glass_accesses(sink)
        assert [a.reason for a in listed] == ["cardiac arrest, bay 2"]
        assert people["bob"] in listed[0].subjects
