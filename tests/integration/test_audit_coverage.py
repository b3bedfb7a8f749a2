"""Every operation through either facade leaves its audit record, and no record holds a value.

Each step runs one application-level operation and states how many records it must add (one;
two when it also reads a second model, e.g. mongoengine's ``insert`` reading its documents back,
or dereferencing). The records land in the default audit collection of the test's database;
the scan at the end looks for every classified value the test wrote, anywhere in any record,
and for the application-visible ids of the documents.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

import pytest
from bson import ObjectId

import privata_mongo
import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from compat_suite.requirements import requires
from privata_mongo import AccessContext, AuditUnavailable, MissingAccessContext, access_context
from privata_mongo.audit import (
    audit_collection,
    chain_key_async,
    subject_of,
    verify,
    who_accessed,
)
from privata_mongo.recovery import sweep
from privata_mongo.testing.audit import ListAuditSink
from testkit.backends import Backend, beanie_database

VALUES = {
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Lin",
    "ada@x.org",
    "grace@x.org",
    "alan@x.org",
    "edsger@x.org",
    "lin@x.org",
    "new@x.org",
    "+1 555 0100",
}
DR_LEE = AccessContext("dr.lee", "treatment", "art9_2h", "req-7")


@pytest.fixture
def settings() -> Iterator[None]:
    saved = privata_mongo.config.current()
    yield
    privata_mongo.config._current = saved


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _assert_no_values(records: list[dict[str, Any]], ids: set[Any]) -> None:
    for record in records:
        for text in _strings(record):
            assert not any(v in text for v in VALUES), (record["operation"], text)

        def walk(value: Any, record: dict[str, Any] = record) -> None:
            if isinstance(value, ObjectId):
                assert value not in ids or value == record.get("_id"), record["operation"]
            elif isinstance(value, dict):
                for k, v in value.items():
                    if k != "_id":
                        walk(v)
            elif isinstance(value, list):
                for v in value:
                    walk(v)

        walk(record)


class _Steps:
    """Runs steps and checks each adds exactly the records it should, with that operation."""

    def __init__(self, records: Callable[[], list[dict[str, Any]]]) -> None:
        self._records = records
        self.seen = 0
        self.log: list[tuple[str, int]] = []

    @contextlib.contextmanager
    def step(self, name: str, *operations: str) -> Iterator[None]:
        before = len(self._records())
        yield
        added = self._records()[before:]
        self.log.append((name, len(added)))
        assert sorted(r["operation"] for r in added) == sorted(operations), (name, added)
        assert all(r["actor"] == "dr.lee" and r["outcome"] == "ok" for r in added), name


# -- mongoengine ----------------------------------------------------------------------------


def test_every_mongoengine_operation_is_audited(connected: Any, backend: Backend) -> None:
    class AuditClinic(pm.Document):
        name = pm.StringField()
        phone = pm.StringField()
        meta = {"collection": "audit_clinic"}

    class AuditPatient(pm.Document):
        first_name = pm.StringField()
        email = pm.StringField()
        ward = pm.StringField()
        visits = pm.IntField(default=0)
        clinic = pm.ReferenceField(AuditClinic)
        meta = {"collection": "audit_patient"}

    class AuditNote(pm.Document):  # no identity field: stored natively, not audited
        text = pm.StringField()
        patient = pm.ReferenceField(AuditPatient)
        meta = {"collection": "audit_note"}

    def records() -> list[dict[str, Any]]:
        return list(connected["privata_audit"].find({}, sort=[("seq", 1)]))

    steps = _Steps(records)
    with access_context(actor="dr.lee", purpose="treatment", legal_basis="art9_2h"):
        with steps.step("save (insert)", "create"):
            clinic = AuditClinic(name="North", phone="+1 555 0100").save()
        with steps.step("save (insert)", "create"):
            ada = AuditPatient(first_name="Ada", email="ada@x.org", ward="A", clinic=clinic).save()
        with steps.step("QuerySet.insert, load_bulk=False", "create"):
            AuditPatient.objects.insert(
                [
                    AuditPatient(first_name=n, email=f"{n.lower()}@x.org", ward="B")
                    for n in ("Grace", "Alan")
                ],
                load_bulk=False,
            )
        with steps.step("QuerySet.insert (reads back)", "create", "read"):
            (edsger,) = AuditPatient.objects.insert(
                [AuditPatient(first_name="Edsger", email="edsger@x.org", ward="B")]
            )
        with steps.step("get", "read"):
            assert AuditPatient.objects.get(id=ada.id).email == "ada@x.org"
        with steps.step("first", "read"):
            assert AuditPatient.objects(ward="B").order_by("first_name").first().first_name == (
                "Alan"
            )
        with steps.step("iteration", "read"):
            assert len(list(AuditPatient.objects(ward="B"))) == 3
        with steps.step("count", "count"):
            assert AuditPatient.objects(ward="B").count() == 3
        with steps.step("count (estimated)", "count"):
            assert AuditPatient.objects.count() == 4
        with steps.step("distinct", "distinct"):
            assert sorted(AuditPatient.objects.distinct("email"))[0] == "ada@x.org"
        with steps.step("QuerySet.update", "update"):
            assert AuditPatient.objects(ward="B").update(inc__visits=1) == 3
        with steps.step("QuerySet.update_one", "update"):
            AuditPatient.objects(first_name="Alan").update_one(set__email="new@x.org")
        with steps.step("save (update)", "update"):
            ada.ward = "C"
            ada.save()
        with steps.step("modify", "update"):
            assert edsger.modify(ward="D")
        with steps.step("reload", "read"):
            edsger.reload()
        with steps.step("aggregate", "aggregate"):
            grouped = list(
                AuditPatient.objects.aggregate([{"$group": {"_id": "$ward", "n": {"$sum": 1}}}])
            )
            assert sum(g["n"] for g in grouped) == 4
        with steps.step("save of a model without identity fields (native)"):
            AuditNote(text="x", patient=ada).save()
        with steps.step("select_related (dereferences the patient)", "read"):
            (note,) = AuditNote.objects.select_related()
            assert note.patient.first_name == "Ada"
        with steps.step("dereferencing a reference", "read"):
            assert AuditNote.objects.first().patient.email == "ada@x.org"
        with steps.step("QuerySet.delete", "delete"):
            assert AuditPatient.objects(first_name="Grace").delete() == 1
        with steps.step("Document.delete", "delete"):
            edsger.delete()

    stored = records()
    assert len(stored) == sum(n for _, n in steps.log) == 21
    _assert_no_values(stored, {ada.id, edsger.id, clinic.id})
    assert verify(audit_collection(connected)).ok
    pseudonym = subject_of(connected, "audit_patient", ada.id)
    assert pseudonym is not None
    history = who_accessed(audit_collection(connected), pseudonym)
    # a grouped server-side aggregate names no subject (its output holds none): see docs/audit.md
    assert {a.operation for a in history} == {"create", "read", "update", "distinct"}
    assert {(a.actor, a.purpose, a.legal_basis) for a in history} == {
        ("dr.lee", "treatment", "art9_2h")
    }
    reads = [a for a in history if a.operation == "read"]
    assert all("email" in a.fields for a in reads), reads


@pytest.mark.usefixtures("settings")
def test_a_mongoengine_read_fails_closed_when_the_trail_is_down(connected: Any) -> None:
    class AuditDown(pm.Document):
        first_name = pm.StringField()
        meta = {"collection": "audit_down"}

    sink = ListAuditSink()
    privata_mongo.configure(audit_sink=sink)
    AuditDown(first_name="Ada").save()
    sink.fail = OSError("audit server unreachable")
    with pytest.raises(AuditUnavailable) as caught:
        list(AuditDown.objects())
    assert "Ada" not in str(caught.value)
    # a write whose intent was stored is applied and not failed after the fact (a retry would
    # create a second document); the record is appended by the sweep (docs/reliability.md)
    AuditDown(first_name="Lin").save()
    sink.fail = None
    assert sorted(connected["audit_down"].distinct("_id")) != []
    assert AuditDown.objects.count() == 2
    assert [r["outcome"] for r in sink.records] == ["ok", "ok"]
    report = sweep(pm.get_db(), older_than=0)
    assert (report.intents_resolved, report.rows_completed) == (1, 1)
    assert [r["outcome"] for r in sink.records] == ["ok", "ok", "recovered:ok"]
    assert sink.records[-1]["operation"] == "create"


@pytest.mark.usefixtures("settings")
def test_strict_mode_refuses_personal_data_without_a_context(connected: Any) -> None:
    class AuditStrict(pm.Document):
        first_name = pm.StringField()
        meta = {"collection": "audit_strict"}

    sink = ListAuditSink()
    privata_mongo.configure(audit_sink=sink, audit_strict=True)
    with pytest.raises(MissingAccessContext):
        AuditStrict(first_name="Ada").save()
    assert connected["audit_strict"].count_documents({}) == 0
    assert [r["outcome"] for r in sink.records] == ["denied"]
    with access_context(actor="dr.lee", purpose="treatment"):
        AuditStrict(first_name="Ada").save()
    privata_mongo.configure(default_access=AccessContext("nightly", "billing"))
    assert AuditStrict.objects.count() == 1
    assert [r["actor"] for r in sink.records] == [None, "dr.lee", "nightly"]


@pytest.mark.usefixtures("settings")
def test_auditing_can_be_turned_off(connected: Any) -> None:
    class AuditOff(pm.Document):
        first_name = pm.StringField()
        meta = {"collection": "audit_off"}

    privata_mongo.configure(audit=False)
    AuditOff(first_name="Ada").save()
    assert AuditOff.objects.count() == 1
    assert "privata_audit" not in connected.list_collection_names()


def test_the_audit_collection_is_hidden_from_the_app(connected: Any) -> None:
    class AuditHidden(pm.Document):
        first_name = pm.StringField()
        meta = {"collection": "audit_hidden"}

    AuditHidden(first_name="Ada").save()
    assert "privata_audit" in connected.list_collection_names()
    assert "privata_audit" not in pm.get_db().list_collection_names()


# -- Beanie ---------------------------------------------------------------------------------


def _beanie_models() -> tuple[Any, Any]:
    class AuditPerson(pb.Document):
        first_name: str
        email: str
        phone: Annotated[str | None, pb.PII()] = None
        ward: str = "A"
        visits: int = 0

        class Settings:
            name = "audit_people"

    class AuditVisit(pb.Document):
        reason: str
        person: pb.Link[AuditPerson]

        class Settings:
            name = "audit_visits"

    return AuditPerson, AuditVisit


async def test_every_beanie_operation_is_audited(backend: Backend) -> None:
    Person, Visit = _beanie_models()
    async with beanie_database(backend) as database:
        await pb.init_beanie(database=database, document_models=[Person, Visit])

        async def records() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (
                await database["privata_audit"].find({}, sort=[("seq", 1)]).to_list()
            )
            return found

        log: list[tuple[str, list[str]]] = []

        @contextlib.asynccontextmanager
        async def step(name: str, *operations: str) -> AsyncIterator[None]:
            before = len(await records())
            yield
            added = (await records())[before:]
            log.append((name, [r["operation"] for r in added]))
            assert sorted(r["operation"] for r in added) == sorted(operations), (name, added)
            assert all(r["actor"] == "dr.lee" for r in added), name

        with access_context(actor="dr.lee", purpose="treatment", legal_basis="art9_2h"):
            async with step("insert", "create"):
                ada = await Person(
                    first_name="Ada", email="ada@x.org", phone="+1 555 0100"
                ).insert()
            async with step("save (new)", "update"):
                lin = await Person(first_name="Lin", email="lin@x.org").save()
            async with step("insert_many", "create"):
                await Person.insert_many(
                    [
                        Person(first_name="Grace", email="grace@x.org", ward="B"),
                        Person(first_name="Alan", email="alan@x.org", ward="B"),
                    ]
                )
            async with step("find", "read"):
                assert len(await Person.find(Person.ward == "B").to_list()) == 2
            async with step("get", "read"):
                assert (await Person.get(ada.id)).email == "ada@x.org"
            async with step("find_one", "read"):
                assert (await Person.find_one(Person.first_name == "Alan")).ward == "B"
            async with step("count", "count"):
                assert await Person.find(Person.ward == "B").count() == 2
            async with step("find().update", "update"):
                await Person.find(Person.ward == "B").update({"$inc": {"visits": 1}})
            async with step("update_all", "update"):
                await Person.update_all({"$set": {"ward": "C"}})
            async with step("save (update)", "update"):
                lin.ward = "D"
                await lin.save()
            async with step("aggregate", "aggregate"):
                grouped = (
                    await Person.find_all()
                    .aggregate([{"$group": {"_id": "$ward", "n": {"$sum": 1}}}])
                    .to_list()
                )
                assert sum(g["n"] for g in grouped) == 4
            async with step("BulkWriter", "bulk_write"), pb.BulkWriter() as writer:
                await Person.find(Person.first_name == "Alan").update(
                    {"$set": {"ward": "E"}}, bulk_writer=writer
                )
                await Person.insert_one(
                    Person(first_name="Edsger", email="edsger@x.org"), bulk_writer=writer
                )
            async with step("find().delete", "delete"):
                await Person.find(Person.first_name == "Grace").delete()
            async with step("Document.delete", "delete"):
                await lin.delete()
            async with step("delete_all", "delete"):
                await Person.delete_all()

        stored = await records()
        assert len(stored) == sum(len(ops) for _, ops in log) == 15
        _assert_no_values(stored, {ada.id, lin.id})
        checkpoints = await database["privata_audit.checkpoints"].find({}).to_list()
        key = await chain_key_async(database.client, database["privata_audit"].full_name)
        assert verify([*stored, *checkpoints], key=key).ok


@requires("dbref_in_documents")
@pytest.mark.usefixtures("settings")
async def test_beanie_fetch_link_is_audited(backend: Backend) -> None:
    Person, Visit = _beanie_models()
    sink = ListAuditSink()
    privata_mongo.configure(audit_sink=sink)
    async with beanie_database(backend) as database:
        await pb.init_beanie(database=database, document_models=[Person, Visit])
        with access_context(actor="dr.lee"):
            ada = await Person(first_name="Ada", email="ada@x.org").insert()
            visit = await Visit(reason="check", person=ada).insert()  # native: no record
            assert [r["operation"] for r in sink.records] == ["create"]
            fetched = await Visit.get(visit.id)
            await fetched.fetch_all_links()
            assert fetched.person.first_name == "Ada"
    # Beanie reads the linked person with a pipeline, through the person's audited flow
    assert [r["operation"] for r in sink.records] == ["create", "aggregate"]
    assert sink.records[1]["model"] == "AuditPerson"
    assert sink.records[1]["subjects"] == sink.records[0]["subjects"]


@requires("dbref_in_documents")
async def test_beanie_fetch_links_is_audited_for_both_models(backend: Backend) -> None:
    Person, Visit = _beanie_models()
    sink = ListAuditSink()
    saved = privata_mongo.config.current()
    privata_mongo.configure(audit_sink=sink)
    try:
        async with beanie_database(backend) as database:
            await pb.init_beanie(database=database, document_models=[Person, Visit])
            with access_context(actor="dr.lee"):
                ada = await Person(first_name="Ada", email="ada@x.org").insert()
                await Visit(reason="check", person=ada).insert()
                sink.clear()
                (visit,) = await Visit.find(fetch_links=True).to_list()
                assert visit.person.first_name == "Ada"
        # the visits are native; the joined people are read through their own audited flow,
        # inside the visits' aggregation (as test_a_lookup_into_a_split_collection_… shows)
        assert [(r["operation"], r["model"]) for r in sink.records] == [
            ("read", "AuditPerson"),
            ("aggregate", "audit_visits"),
        ]
    finally:
        privata_mongo.config._current = saved


@pytest.mark.usefixtures("settings")
def test_a_lookup_into_a_split_collection_is_audited_for_both_models(connected: Any) -> None:
    class LookupPatient(pm.Document):
        first_name = pm.StringField()
        email = pm.StringField()
        meta = {"collection": "lookup_patient"}

    class LookupNote(pm.Document):  # no identity field: stored natively
        text = pm.StringField()
        patient = pm.ReferenceField(LookupPatient)
        meta = {"collection": "lookup_note"}

    sink = ListAuditSink()
    privata_mongo.configure(audit_sink=sink)
    with access_context(actor="dr.lee"):
        ada = LookupPatient(first_name="Ada", email="ada@x.org").save()
        LookupNote(text="x", patient=ada).save()
        sink.clear()
        (joined,) = LookupNote.objects.aggregate(
            [
                {
                    "$lookup": {
                        "from": "lookup_patient",
                        "localField": "patient",
                        "foreignField": "_id",
                        "as": "patients",
                    }
                }
            ]
        )
    assert joined["patients"][0]["email"] == "ada@x.org"
    # the patients are read through their own audited flow, inside the notes' aggregation
    assert [(r["operation"], r["model"]) for r in sink.records] == [
        ("read", "LookupPatient"),
        ("aggregate", "lookup_note"),
    ]
    assert sink.records[0]["fields"] == ["email", "first_name"]
    assert len(sink.records[0]["subjects"]) == 1
