"""The record of processing activities (Art. 30) from the data map and the audit trail.

Patients are created and read for ``treatment``, one consents and is read for ``research``;
the register lists exactly those purposes, their legal bases and actors, the models'
categories of data and their operations, from a summary the server computes, on both facades
and every backend, and its Markdown holds no personal value.
"""

from __future__ import annotations

from typing import Annotated, Any

import pymongo
from mongomock.store import ServerStore

import privata_mongo
import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from privata_mongo import AsyncRights, Rights, access_context
from privata_mongo.audit import audit_collection
from privata_mongo.embedded import AsyncMockClient
from privata_mongo.rights import Subject
from testkit.backends import Backend

TREATMENT = {"actor": "dr.lee", "purpose": "treatment", "legal_basis": "art9_2h"}
DPO = {"actor": "dpo", "purpose": "consent management", "legal_basis": "art6_1c"}
RESEARCH = {"actor": "analyst", "purpose": "research", "legal_basis": "art6_1a"}
VALUES = ("Ann", "Bob", "ann@", "bob@", "example.org", "north", "south")
PURPOSES = ("consent management", "research", "treatment")
BASES = ("art6_1a", "art6_1c", "art9_2h")
ACTORS = ("analyst", "dpo", "dr.lee")


class RecordPatient(pm.Document):
    first_name = pm.StringField()
    email = pm.StringField()
    ward = pm.StringField()
    last_seen = pm.DateTimeField()
    meta = {
        "collection": "record_patients",
        "privacy": {
            "retention": {"days": 3650, "field": "last_seen", "then": "erase"},
            "erasure": "delete",
        },
    }


class _OnlyAggregate:
    """An audit collection that answers ``aggregate`` only: the register must not scan it."""

    def __init__(self, inner: Any, asked: list[Any]) -> None:
        self._inner = inner
        self._asked = asked
        self.full_name = inner.full_name

    def aggregate(self, pipeline: list[Any]) -> Any:
        self._asked.append(pipeline)
        return self._inner.aggregate(pipeline)


def _check(record: Any, model: str, collection: str, policy: tuple[str | None, ...]) -> None:
    assert record.purposes == PURPOSES
    assert record.legal_bases == BASES
    assert record.recipients == ACTORS
    (entry,) = [m for m in record.models if m.name == model]
    assert entry.collection == collection
    assert entry.split
    assert set(entry.identity_fields) == {"first_name", "email"}
    assert "ward" in entry.clinical_fields
    assert entry.purposes == PURPOSES
    assert entry.operations["create"] == 2
    assert entry.operations["consent"] == 1
    assert entry.operations["read"] >= 2
    assert (entry.retention, entry.erasure) == policy
    research = [a for a in record.activities if a.purpose == "research"]
    assert {(a.operation, a.actor, a.legal_basis) for a in research} == {
        ("read", "analyst", "art6_1a")
    }
    assert sum(a.documents for a in research) == 1  # only the consenting subject was read
    markdown = record.to_markdown()
    assert markdown.startswith("# Record of processing activities (GDPR Art. 30)")
    assert f"## {model}" in markdown
    assert f"- Retention: {policy[0] or 'not declared'}" in markdown
    assert "| research | art6_1a | analyst |" in markdown
    for value in VALUES:
        assert value not in markdown, value
        assert value not in repr(record.to_dict()), value


def test_the_register_lists_the_purposes_used_and_the_categories_of_data(
    connected: Any,
) -> None:
    with access_context(**TREATMENT):
        ann = RecordPatient(first_name="Ann", email="ann@example.org", ward="north").save()
        RecordPatient(first_name="Bob", email="bob@example.org", ward="south").save()
        assert RecordPatient.objects.count() == 2
        assert {p.first_name for p in RecordPatient.objects} == {"Ann", "Bob"}
    rights = Rights([RecordPatient])
    with access_context(**DPO):
        subject = Subject(model="RecordPatient", id=ann.id)
        rights.consent(subject, "research", source="web form", notice_version="v1")
    with access_context(**RESEARCH):
        assert [p.first_name for p in RecordPatient.objects] == ["Ann"]
    asked: list[Any] = []
    trail = _OnlyAggregate(audit_collection(pm.get_db()), asked)
    record = privata_mongo.processing_record(trail, models=[RecordPatient])
    _check(
        record,
        "RecordPatient",
        "record_patients",
        ("3650 days after last_seen, then erase", "delete"),
    )
    assert len(asked) == 3  # the summary, the oldest and the newest record
    assert any("$group" in stage for stage in asked[0])
    assert record.databases == (f"{connected.name}.privata_audit",)
    again = privata_mongo.processing_record(pm.get_db(), models=[RecordPatient])
    assert again.databases == (connected.name,)
    assert (again.models, again.activities) == (record.models, record.activities)


def _member() -> Any:
    class RecordMember(pb.Document):
        first_name: str
        email: Annotated[str, pb.PII(searchable=True)]
        ward: str

        class Settings:
            name = "record_members"

    return RecordMember


async def test_the_beanie_register_lists_the_purposes_used(backend: Backend) -> None:
    client: Any = (
        AsyncMockClient(ServerStore())
        if backend.uri is None
        else pymongo.AsyncMongoClient(backend.uri)
    )
    try:
        member = _member()
        raw = client[backend.db_name]
        await pb.init_beanie(database=raw, document_models=[member])
        with access_context(**TREATMENT):
            ann = await member(first_name="Ann", email="ann@example.org", ward="north").insert()
            await member(first_name="Bob", email="bob@example.org", ward="south").insert()
            assert await member.find_all().count() == 2
            assert {m.first_name for m in await member.find_all().to_list()} == {"Ann", "Bob"}
        rights = AsyncRights([member])
        with access_context(**DPO):
            subject = Subject(model="RecordMember", id=ann.id)
            await rights.consent(subject, "research", source="web form", notice_version="v1")
        with access_context(**RESEARCH):
            assert [m.first_name for m in await member.find_all().to_list()] == ["Ann"]
        database = member.get_pymongo_collection().database
        record = await privata_mongo.processing_record_async(database, models=[member])
        _check(record, "RecordMember", "record_members", (None, None))
        assert record.databases == (backend.db_name,)
        (entry,) = record.models
        assert entry.searchable == ("email",)
    finally:
        await client.close()
