"""The stored audit trail: tamper evidence on the real collection, contexts across threads,
tasks and web requests, chunking of large results."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from mongomock.store import ServerStore
from pymongo.errors import DuplicateKeyError

import privata_mongo
import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from privata_mongo import AccessContext, access_context
from privata_mongo.audit import audit_collection, chain_key, chain_key_async, verify
from privata_mongo.embedded import AsyncMockClient
from privata_mongo.testing.audit import ListAuditSink
from privata_mongo.testing.serialised import serialised_mongomock
from privata_mongo.web import fastapi_access, from_headers
from testkit.backends import Backend


@pytest.fixture
def settings() -> Any:
    saved = privata_mongo.config.current()
    yield
    privata_mongo.config._current = saved


def _patient() -> Any:
    class TrailPatient(pm.Document):
        first_name = pm.StringField()
        email = pm.StringField()
        ward = pm.StringField()
        meta = {"collection": "trail_patient"}

    return TrailPatient


def test_verify_names_each_tampered_record_in_the_audit_collection(connected: Any) -> None:
    Patient = _patient()
    with access_context(actor="dr.lee", purpose="treatment"):
        for i in range(6):
            Patient(first_name=f"P{i}", email=f"p{i}@x.org", ward="A").save()
    trail = audit_collection(connected)
    assert verify(trail).ok
    stream = trail.find_one({})["stream"]

    trail.update_one({"seq": 1}, {"$set": {"actor": "mallory"}})  # edit one
    trail.delete_one({"seq": 3})  # delete one
    trail.update_one({"seq": 4}, {"$set": {"seq": -5}})  # swap two
    trail.update_one({"seq": 5}, {"$set": {"seq": 4}})
    trail.update_one({"seq": -5}, {"$set": {"seq": 5}})

    found = {(p.stream, p.seq, p.kind) for p in verify(trail).problems}
    assert found == {
        (stream, 1, "modified"),
        (stream, 3, "missing"),
        (stream, 4, "modified"),
        (stream, 5, "modified"),
    }


def test_a_record_is_stored_under_its_chain_position(connected: Any) -> None:
    """``_id`` is ``<stream>:<seq>``: a second record at one place is refused by ``_id`` alone,
    with no unique index of the records' own for a store to check by scanning the trail."""
    Patient = _patient()
    with access_context(actor="dr.lee", purpose="treatment"):
        for i in range(11):
            Patient(first_name=f"P{i}", email=f"p{i}@x.org", ward="A").save()
    trail = audit_collection(connected)
    records = list(trail.find({}, sort=[("_id", 1)]))
    assert [r["seq"] for r in records] == list(range(11))  # 20 digits: 10 sorts after 9
    assert all(r["_id"] == f"{r['stream']}:{r['seq']:020d}" for r in records)
    unique = [n for n, i in trail.index_information().items() if i.get("unique") and n != "_id_"]
    assert unique == []
    raw = connected[trail.name]
    with pytest.raises(DuplicateKeyError):
        raw.insert_one({**records[-1], "actor": "mallory"})
    assert verify(trail).ok


def test_verify_names_forgeries_a_cut_end_and_a_deleted_stream_without_anchors(
    connected: Any, backend: Any
) -> None:
    import hashlib

    import mongoengine
    from bson import ObjectId

    from privata_mongo.adapters.audit_collection import checkpoints_of
    from privata_mongo.core.audit import canonical, checkpoint_id

    Patient = _patient()
    with access_context(actor="dr.lee"):
        for i in range(3):
            Patient(first_name=f"P{i}", email=f"p{i}@x.org", ward="A").save()
    mongoengine.disconnect()  # another process, in effect: a stream of its own
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    with access_context(actor="dr.kim"):
        for i in range(2):
            Patient(first_name=f"Q{i}", email=f"q{i}@x.org", ward="B").save()
    trail = audit_collection(connected)
    assert verify(trail).ok
    first = trail.find_one({"actor": "dr.lee"})["stream"]
    second = trail.find_one({"actor": "dr.kim"})["stream"]

    def unkeyed(document: dict[str, Any]) -> dict[str, Any]:
        document["hash"] = hashlib.sha256(canonical(document)).hexdigest()
        return document

    head = trail.find_one({"stream": first}, sort=[("seq", -1)])
    appended = {**head, "_id": ObjectId(), "seq": 3, "prev": head["hash"], "actor": "mallory"}
    trail.insert_one(unkeyed(appended))  # linked to the real head, hashed as before the key
    prev = "0" * 64
    for seq in range(2):  # a whole stream, consistently chained, without the key
        forged = unkeyed({**head, "_id": ObjectId(), "stream": "forged", "seq": seq, "prev": prev})
        trail.insert_one(forged)
        prev = forged["hash"]
    trail.delete_many({"stream": second})  # a whole stream and its checkpoint
    checkpoints_of(trail).delete_one({"_id": checkpoint_id(second)})
    found = {(p.stream, p.seq, p.kind) for p in verify(trail).problems}
    assert found == {
        (first, 3, "modified"),
        ("forged", 0, "modified"),
        ("forged", 1, "modified"),
        ("forged", 1, "unanchored"),
        ("forged", -1, "unregistered"),
        (second, -1, "deleted"),
    }

    trail.delete_many({"stream": {"$in": [first, "forged"]}, "seq": {"$gte": 1}})  # cut ends
    trail.delete_many({"stream": "forged"})
    found = {(p.stream, p.seq, p.kind) for p in verify(trail).problems}
    assert found == {(first, 2, "truncated"), (second, -1, "deleted")}


def test_a_trail_whose_chain_key_was_lost_is_not_given_a_new_one(
    connected: Any, backend: Any
) -> None:
    import mongoengine

    from privata_mongo.config import current
    from privata_mongo.core.crypto.chain_key import chain_key_name

    Patient = _patient()
    with access_context(actor="dr.lee"):
        Patient(first_name="Ada", email="ada@x.org", ward="A").save()
    database, _, name = current().key_vault_namespace.partition(".")
    vault = connected.client[database][name]
    own = chain_key_name(audit_collection(connected).full_name)
    assert vault.delete_many({"keyAltNames": own}).deleted_count == 1
    mongoengine.disconnect()  # a process started after the loss
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    with access_context(actor="dr.lee"), pytest.raises(privata_mongo.AuditUnavailable):
        Patient.objects.count()
    assert vault.count_documents({"keyAltNames": own}) == 0


def test_concurrent_threads_share_one_chain_and_keep_their_own_contexts(
    connected: Any, backend: Backend
) -> None:
    """Eight actors on four threads: one chain, each record under its own thread's context.

    On mongomock behind ``serialised_mongomock()``: mongomock is not thread-safe (two threads
    replacing the same checkpoint race in its deep copy of the stored document), and a server
    applies each operation atomically, which is what the chain relies on.
    """
    atomic = serialised_mongomock() if backend.name == "mongomock" else contextlib.nullcontext()
    with atomic:
        _share_one_chain(connected)


def _share_one_chain(connected: Any) -> None:
    Patient = _patient()
    with access_context(actor="setup"):
        Patient(first_name="Ada", email="ada@x.org", ward="A").save()

    def work(actor: str) -> None:
        with access_context(actor=actor, purpose="treatment"):
            for _ in range(5):
                assert Patient.objects(ward="A").first().first_name == "Ada"

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, [f"user{i}" for i in range(8)]))
    records = list(audit_collection(connected).find({"operation": "read"}))
    assert sorted({r["actor"] for r in records}) == [f"user{i}" for i in range(8)]
    assert len(records) == 40
    assert verify(audit_collection(connected)).ok

    # a thread started from a copied context acts for the code that started it
    seen: list[Any] = []
    with access_context(actor="parent"):
        copied = contextvars.copy_context()
    thread = threading.Thread(target=lambda: seen.append(copied.run(Patient.objects.count)))
    thread.start()
    thread.join()
    assert seen == [1]
    last = audit_collection(connected).find_one({}, sort=[("seq", -1)])
    assert (last["operation"], last["actor"]) == ("count", "parent")


@pytest.mark.usefixtures("settings")
def test_a_large_result_is_chunked_across_records(connected: Any) -> None:
    Patient = _patient()
    privata_mongo.configure(audit_max_subjects=10)
    Patient.objects.insert(
        [Patient(first_name=f"P{i}", email=f"p{i}@x.org", ward="A") for i in range(25)],
        load_bulk=False,
    )
    trail = audit_collection(connected)
    created = list(trail.find({"operation": "create"}, sort=[("seq", 1)]))
    assert [(len(r["subjects"]), r["part"], r["count"]) for r in created] == [
        (10, 0, 25),
        (10, 1, 25),
        (5, 2, 25),
    ]
    assert len({s for r in created for s in r["subjects"]}) == 25


@pytest.mark.usefixtures("settings")
async def test_asyncio_tasks_keep_their_own_contexts() -> None:
    class TaskPerson(pb.Document):
        first_name: str
        email: str

        class Settings:
            name = "task_people"

    sink = ListAuditSink()
    privata_mongo.configure(audit_sink=sink)
    database = AsyncMockClient(ServerStore())["tasks"]
    await pb.init_beanie(database=database, document_models=[TaskPerson])
    with access_context(actor="setup"):
        await TaskPerson(first_name="Ada", email="ada@x.org").insert()

    async def work(actor: str) -> None:
        with access_context(actor=actor):
            await asyncio.sleep(0)
            assert (await TaskPerson.find_one(TaskPerson.first_name == "Ada")) is not None

    await asyncio.gather(*(work(f"user{i}") for i in range(10)))
    reads = [r["actor"] for r in sink.records if r["operation"] == "read"]
    assert sorted(reads) == sorted(f"user{i}" for i in range(10))
    assert verify(sink, key=await chain_key_async(database.client)).ok


@pytest.mark.usefixtures("settings")
async def test_the_fastapi_dependency_sets_the_context_per_request() -> None:
    class WebPerson(pb.Document):
        first_name: str
        email: Annotated[str, pb.PII()]

        class Settings:
            name = "web_people"

    sink = ListAuditSink()
    privata_mongo.configure(audit_sink=sink, audit_strict=True)
    database = AsyncMockClient(ServerStore())["web"]
    await pb.init_beanie(database=database, document_models=[WebPerson])
    with access_context(actor="setup"):
        await WebPerson(first_name="Ada", email="ada@x.org").insert()

    def resolve(request: Request) -> AccessContext | None:
        return from_headers(request.headers)

    app = FastAPI(dependencies=[Depends(fastapi_access(resolve))])

    @app.get("/people")
    async def people() -> list[str]:
        return [p.first_name for p in await WebPerson.find_all().to_list()]

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        ok = await client.get(
            "/people", headers={"X-Actor": "dr.lee", "X-Purpose": "care", "X-Request-ID": "r1"}
        )
        assert ok.json() == ["Ada"]
        with pytest.raises(privata_mongo.MissingAccessContext):
            await client.get("/people")
    read = [r for r in sink.records if r["operation"] == "read"]
    assert [(r["actor"], r["purpose"], r["request_id"], r["outcome"]) for r in read] == [
        ("dr.lee", "care", "r1", "ok"),
        (None, None, None, "denied"),
    ]


@pytest.mark.usefixtures("settings")
def test_buffered_mode_appends_in_groups_and_flushes(connected: Any) -> None:
    from privata_mongo.audit import flush

    Patient = _patient()
    sink = ListAuditSink()
    privata_mongo.configure(audit_sink=sink, audit_buffer=4)
    with access_context(actor="dr.lee"):
        for i in range(3):
            Patient(first_name=f"P{i}", email=f"p{i}@x.org", ward="A").save()
        assert sink.records == []  # the loss window: at most audit_buffer - 1 records
        assert Patient.objects(ward="A").count() == 3
        assert len(sink.records) == 4
        Patient.objects(ward="A").first()
    assert len(sink.records) == 4
    flush(pm.get_db())
    assert [r["operation"] for r in sink.records] == ["create"] * 3 + ["count", "read"]
    assert verify(sink, key=chain_key(connected.client)).ok


@pytest.mark.usefixtures("settings")
def test_records_can_go_to_a_collection_on_another_client(connected: Any, backend: Any) -> None:
    from privata_mongo.adapters.audit_collection import CollectionAuditSink

    Patient = _patient()
    elsewhere = backend.client()
    try:
        trail = elsewhere[backend.db_name + "_audit"]["trail"]
        privata_mongo.configure(audit_sink=CollectionAuditSink(trail))
        with access_context(actor="dr.lee"):
            Patient(first_name="Ada", email="ada@x.org", ward="A").save()
            assert Patient.objects.get(first_name="Ada").ward == "A"
        assert [r["operation"] for r in trail.find({}, sort=[("seq", 1)])] == ["create", "read"]
        assert "privata_audit" not in connected.list_collection_names()
        assert verify(trail, key=chain_key(connected.client, trail.full_name)).ok
    finally:
        elsewhere.drop_database(backend.db_name + "_audit")
        elsewhere.close()


def test_a_trail_never_written_verifies_and_one_without_its_key_cannot(
    connected: Any, backend: Any
) -> None:
    from privata_mongo.config import current
    from privata_mongo.core.crypto.chain_key import chain_key_name

    trail = audit_collection(connected)
    assert verify(trail).ok  # nothing audited yet: no chain key, no record
    with access_context(actor="dr.lee"):
        _patient()(first_name="Ada", email="ada@x.org", ward="A").save()
    database, _, name = current().key_vault_namespace.partition(".")
    own = chain_key_name(trail.full_name)
    assert connected.client[database][name].delete_many({"keyAltNames": own}).deleted_count == 1
    with pytest.raises(privata_mongo.KeyUnavailable, match="no audit chain key"):
        verify(trail)
