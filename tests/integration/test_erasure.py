"""Erasure (Art. 17) end to end, on both facades and every backend, asserted on what is stored:
the raw collections, the key vault and its tombstones, the erasure log and the audit trail."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterator
from typing import Annotated, Any

import mongoengine
import pymongo
import pytest

import privata_mongo
import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from privata_mongo import AsyncRights, Rights, UnknownSubject, access_context
from privata_mongo.audit import subject_of
from privata_mongo.config import current
from privata_mongo.errors import ConfigurationError, ProtectedCollection
from privata_mongo.rights import ErasureReceipt, Subject, verify_receipt
from privata_mongo.testing.faults import FaultPlan, faulty_client_class, faulty_database
from testkit.backends import Backend, beanie_database

CONTEXT = {"actor": "dpo", "purpose": "subject request", "legal_basis": "GDPR Art. 17"}
AUDIT = ("privata_audit", "privata_audit.checkpoints", "privata_audit.pending")
VALUES = ("ann@example.org", "Ann", "bob@example.org", "Bob")


def _models(policy: str, patient: str | None = None) -> dict[str, Any]:
    privacy = {"erasure": policy}

    class EPatient(pm.Document):
        first_name = pm.StringField()
        email = pm.EmailField(pii=True, searchable=True)
        blood_type = pm.StringField()
        meta = {"collection": "e_patient", "privacy": {"erasure": patient or policy}}

    class EVisit(pm.Document):
        patient = pm.ReferenceField(EPatient)
        reason = pm.StringField()
        meta = {"collection": "e_visit", "privacy": privacy}

    class ELab(pm.Document):
        visit = pm.LazyReferenceField(EVisit)
        value = pm.IntField()
        meta = {"collection": "e_lab", "privacy": privacy}

    class ENote(pm.Document):
        lab = pm.ReferenceField(ELab)
        text = pm.StringField()
        meta = {"collection": "e_note", "privacy": privacy}

    return {c.__name__: c for c in (EPatient, EVisit, ELab, ENote)}


def _seed(m: dict[str, Any]) -> dict[str, Any]:
    """Ann and Bob, each with a visit, two labs on it and a note on the first lab."""
    made: dict[str, Any] = {}
    with access_context(**CONTEXT):
        for name, email, blood in (
            ("Ann", "ann@example.org", "A+"),
            ("Bob", "bob@example.org", "0-"),
        ):
            patient = m["EPatient"](first_name=name, email=email, blood_type=blood).save()
            visit = m["EVisit"](patient=patient, reason="check-up").save()
            labs = [m["ELab"](visit=visit, value=v).save() for v in (1, 2)]
            note = m["ENote"](lab=labs[0], text="normal").save()
            made[name] = {
                "EPatient": {patient.id},
                "EVisit": {visit.id},
                "ELab": {lab.id for lab in labs},
                "ENote": {note.id},
            }
            made[f"{name}_doc"] = patient
    return made


def _vault_collections(client: Any) -> tuple[Any, Any]:
    database, _, name = current().key_vault_namespace.partition(".")
    return client[database][name], client[database][f"{name}.tombstones"]


def _state(db: Any, *, audit: bool = False) -> dict[str, dict[str, Any]]:
    """Every document of every collection of ``db`` (audit trail left out), by ``repr(_id)``."""
    return {
        name: {repr(d["_id"]): d for d in db[name].find()}
        for name in sorted(db.list_collection_names())
        if audit or name not in AUDIT
    }


def _erase_records(db: Any, outcome: str | None = None) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"operation": "erase"}
    if outcome is not None:
        query["outcome"] = outcome
    return list(db["privata_audit"].find(query, sort=[("seq", 1)]))


@pytest.fixture
def restore_settings() -> Iterator[None]:
    saved = privata_mongo.config._current
    try:
        yield
    finally:
        privata_mongo.config._current = saved


@pytest.mark.parametrize("policy", ["pseudonymise", "delete"])
def test_erase_a_subject_with_a_three_level_chain(connected: Any, policy: str) -> None:
    db = connected
    m = _models(policy)
    world = _seed(m)
    pseudonym = subject_of(db, "e_patient", world["Ann_doc"].id)
    bob = subject_of(db, "e_patient", world["Bob_doc"].id)
    vault, tombstones = _vault_collections(db.client)
    assert vault.count_documents({"keyAltNames": pseudonym}) == 1
    before = _state(db)
    rights = Rights(m.values())
    with access_context(**CONTEXT):
        receipt = rights.erase(Subject(model="EPatient", field="email", value="ann@example.org"))

    # the receipt: what, where, when, by whom; verifiable
    assert receipt.pseudonym == pseudonym
    assert (receipt.actor, receipt.purpose, receipt.legal_basis) == (
        "dpo",
        "subject request",
        "GDPR Art. 17",
    )
    assert receipt.key_shredded
    assert verify_receipt(receipt)
    deleted = policy == "delete"
    assert [
        (r.model, r.collection, r.identity_deleted, r.clinical_deleted, r.clinical_kept)
        for r in receipt.models
    ] == [
        ("EPatient", "e_patient", 1, int(deleted), int(not deleted)),
        ("EVisit", "e_visit", 0, int(deleted), int(not deleted)),
        ("ELab", "e_lab", 0, 2 * deleted, 2 * (not deleted)),
        ("ENote", "e_note", 0, int(deleted), int(not deleted)),
    ]

    # the stored rows: Ann's identity row (and its blind terms) gone, Bob untouched
    after = _state(db)
    assert db["e_patient__identity"].find_one({"_id": pseudonym}) is None
    assert after["e_patient__identity"] == {
        k: v for k, v in before["e_patient__identity"].items() if v["_id"] != pseudonym
    }
    assert db["e_patient__identity"].find_one({"_id": bob})["_idx"]
    for name, collection in (("EPatient", "e_patient"), ("EVisit", "e_visit"), ("ELab", "e_lab"),
                             ("ENote", "e_note")):  # fmt: skip
        ann_ids = {repr(i) for i in world["Ann"][name]}
        if deleted:
            expected = {k: v for k, v in before[collection].items() if k not in ann_ids}
        else:
            expected = before[collection]
        assert after[collection] == expected, collection
    if not deleted:  # kept, pseudonymised: the rows no longer join any identity
        with access_context(**CONTEXT):
            kept = m["EPatient"].objects.get(id=world["Ann_doc"].id)
        assert (kept.first_name, kept.email, kept.blood_type) == (None, None, "A+")

    # the key vault: Ann's key shredded, with a tombstone; Bob's key kept
    assert vault.count_documents({"keyAltNames": pseudonym}) == 0
    assert tombstones.count_documents({"_id": pseudonym}) == 1
    assert vault.count_documents({"keyAltNames": bob}) == 1

    # the erasure log: one entry, done, with the receipt
    (entry,) = list(db["privata_erasures"].find())
    assert (entry["_id"], entry["state"]) == (pseudonym, "done")
    assert ErasureReceipt.from_document(entry["receipt"]) == receipt
    assert verify_receipt(entry["receipt"])

    # the audit trail: one erase record per model, naming only the pseudonym
    records = _erase_records(db)
    assert [(r["model"], r["outcome"]) for r in records] == [
        (name, "ok") for name in ("EPatient", "EVisit", "ELab", "ENote")
    ]
    assert all(r["subjects"] == [pseudonym] for r in records)
    assert all(r["subject_request"] == "erase" for r in records)
    assert all(r["legal_basis"] == "GDPR Art. 17" and r["actor"] == "dpo" for r in records)
    assert records[0]["fields"] == ["email", "first_name"]
    kept_records = list(db["privata_audit"].find({"subjects": pseudonym}))
    assert {"create", "erase"} <= {r["operation"] for r in kept_records}  # earlier ones stay
    stored = repr([*db["privata_audit"].find(), entry])
    assert not [value for value in VALUES if value in stored]

    # the subject can no longer be found by its e-mail
    with access_context(**CONTEXT), pytest.raises(UnknownSubject):
        rights.pseudonym(Subject(model="EPatient", field="email", value="ann@example.org"))


def test_erasing_twice_returns_the_first_receipt_without_a_second_shred(connected: Any) -> None:
    db = connected
    m = _models("delete")
    world = _seed(m)
    rights = Rights(m.values())
    with access_context(**CONTEXT):
        first = rights.erase(Subject(model="EPatient", id=world["Ann_doc"].id))
    _, tombstones = _vault_collections(db.client)
    shredded = tombstones.find_one({"_id": first.pseudonym})
    state = _state(db)
    with access_context(actor="dpo2", purpose="subject request", legal_basis="GDPR Art. 17"):
        again = rights.erase(first.pseudonym)
    assert again == first
    assert _state(db) == state  # nothing stored changed: no shred, no delete, same log entry
    assert tombstones.find_one({"_id": first.pseudonym}) == shredded
    assert len(_erase_records(db, "ok")) == 4
    repeats = _erase_records(db, "repeat")
    assert [(r["model"], r["actor"], r["count"]) for r in repeats] == [
        (name, "dpo2", 0) for name in ("EPatient", "EVisit", "ELab", "ENote")
    ]


def test_an_unknown_subject_is_a_typed_error_and_nothing_is_stored(connected: Any) -> None:
    db = connected
    m = _models("delete")
    _seed(m)
    state = _state(db)
    rights = Rights(m.values())
    with access_context(**CONTEXT):
        with pytest.raises(UnknownSubject) as raised:
            rights.erase(Subject(model="EPatient", field="email", value="nobody@example.org"))
        assert "nobody" not in str(raised.value)
        with pytest.raises(UnknownSubject):
            rights.erase("pseu_" + "0" * 32)
    assert _state(db) == state
    assert "privata_erasures" not in db.list_collection_names()
    assert _erase_records(db) == []


def test_the_erasure_log_is_protected_and_hidden_from_the_application(connected: Any) -> None:
    m = _models("pseudonymise")
    world = _seed(m)
    with access_context(**CONTEXT):
        Rights(m.values()).erase(Subject(model="EPatient", id=world["Ann_doc"].id))
    app_db = pm.get_db()
    assert "privata_erasures" not in app_db.list_collection_names()
    assert app_db["privata_erasures"].count_documents({}) == 1  # readable by auditors
    with pytest.raises(ProtectedCollection, match="erasure log"):
        app_db["privata_erasures"].delete_many({})
    with pytest.raises(ProtectedCollection):
        app_db["privata_erasures"].insert_one({"_id": "forged"})
    assert connected["privata_erasures"].count_documents({}) == 1


def test_the_erasure_log_can_live_on_its_own_client(
    backend: Backend, connected: Any, restore_settings: None
) -> None:
    log_client = backend.client()
    log_db = f"{backend.db_name}_log"
    privata_mongo.configure(erasure_client=log_client, erasure_database=log_db)
    try:
        m = _models("delete")
        world = _seed(m)
        with access_context(**CONTEXT):
            receipt = Rights(m.values()).erase(Subject(model="EPatient", id=world["Ann_doc"].id))
        (entry,) = list(log_client[log_db]["privata_erasures"].find())
        assert entry["_id"] == receipt.pseudonym
        assert verify_receipt(entry["receipt"])
        assert "privata_erasures" not in connected.list_collection_names()
    finally:
        log_client.drop_database(log_db)
        log_client.close()


def test_erasure_settings_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="erasure_collection"):
        privata_mongo.configure(erasure_collection="")
    with pytest.raises(ConfigurationError, match="erasure_database"):
        privata_mongo.configure(erasure_database=3)


def test_a_restricted_subject_is_erased(connected: Any) -> None:
    m = _models("delete")
    world = _seed(m)
    rights = Rights(m.values())
    subject = Subject(model="EPatient", id=world["Ann_doc"].id)
    with access_context(**CONTEXT):
        assert rights.restrict(subject) == 1
        receipt = rights.erase(subject)
    assert [m.clinical_deleted for m in receipt.models] == [1, 1, 2, 1]
    assert connected["e_patient__identity"].count_documents({"_id": receipt.pseudonym}) == 0


def test_an_invalid_erasure_policy_is_a_configuration_error(connected: Any) -> None:
    m = _models("forget")
    with pytest.raises(ConfigurationError, match="ELab: privacy 'erasure' must be"):
        Rights(m.values()).data_map()


# -- crashes part-way ------------------------------------------------------------------------


@pytest.fixture
def faulty(backend: Backend) -> Iterator[tuple[FaultPlan, Any]]:
    """The facade on a client whose calls go through a ``FaultPlan``; yields it and the raw db."""
    plan = FaultPlan()
    settings = backend.mongoengine_settings()
    inner = settings.pop("mongo_client_class", functools.partial(pymongo.MongoClient))
    pm.connect(db=backend.db_name, mongo_client_class=faulty_client_class(inner, plan), **settings)
    raw_client = backend.client()
    try:
        yield plan, raw_client[backend.db_name]
    finally:
        mongoengine.disconnect()
        raw_client.close()


def _position(plan: FaultPlan, collection_suffix: str, method: str) -> int:
    return next(
        c.position
        for c in plan.calls
        if c.collection.endswith(collection_suffix) and c.method == method
    )


@pytest.mark.parametrize(
    ("where", "method"),
    [("privata_erasures", "find_one_and_update"), ("__keyVault", "delete_many")],
    ids=["after the log entry", "after the shred"],
)
def test_a_crash_part_way_is_completed_by_a_rerun(
    faulty: tuple[FaultPlan, Any], where: str, method: str
) -> None:
    plan, db = faulty
    m = _models("delete")
    world = _seed(m)
    ann = subject_of(db, "e_patient", world["Ann_doc"].id)
    bob = subject_of(db, "e_patient", world["Bob_doc"].id)
    rights = Rights(m.values())
    plan.arm()  # count the calls of a fault-free erasure (Bob's map has Ann's shape)
    with access_context(**CONTEXT):
        expected = rights.erase(bob)
    at = _position(plan, where, method)
    plan.arm(at, "after")
    with access_context(**CONTEXT), pytest.raises(pymongo.errors.AutoReconnect):
        rights.erase(ann)
    plan.disarm()
    assert db["privata_erasures"].find_one({"_id": ann})["state"] == "pending"
    vault, tombstones = _vault_collections(db.client)
    shredded = method == "delete_many"
    assert vault.count_documents({"keyAltNames": ann}) == (0 if shredded else 1)
    assert db["e_patient__identity"].count_documents({"_id": ann}) == 1  # not yet deleted
    assert len(_erase_records(db, "ok")) == 4  # only Bob's

    with access_context(**CONTEXT):
        receipt = rights.erase(ann)
    assert [(r.model, r.identity_deleted, r.clinical_deleted) for r in receipt.models] == [
        (r.model, r.identity_deleted, r.clinical_deleted) for r in expected.models
    ]
    assert receipt.key_shredded
    assert verify_receipt(receipt)
    assert db["privata_erasures"].find_one({"_id": ann})["state"] == "done"
    assert vault.count_documents({"keyAltNames": ann}) == 0
    assert tombstones.count_documents({"_id": ann}) == 1
    assert db["e_patient__identity"].count_documents({}) == 0
    for name, collection in (("EVisit", "e_visit"), ("ELab", "e_lab"), ("ENote", "e_note")):
        assert db[collection].count_documents({}) == 0, name
    assert [r["outcome"] for r in _erase_records(db) if r["subjects"] == [ann]] == ["resumed"] * 4


# -- backups ---------------------------------------------------------------------------------


def _dump(db: Any) -> dict[str, list[dict[str, Any]]]:
    return {name: list(db[name].find()) for name in db.list_collection_names()}


def _restore(db: Any, dump: dict[str, list[dict[str, Any]]]) -> None:
    for name, documents in dump.items():
        db[name].delete_many({})
        if documents:
            db[name].insert_many(documents)


@pytest.mark.parametrize("vault_restored", [True, False], ids=["vault restored", "vault kept"])
def test_replay_erasures_after_a_backup_restore(
    backend: Backend, connected: Any, restore_settings: None, vault_restored: bool
) -> None:
    """Dump, erase, restore the dump into a fresh database, replay: erased again, all else equal."""
    db = connected
    log_db = f"{backend.db_name}_erasures"
    privata_mongo.configure(erasure_database=log_db)  # the log is kept apart from the data
    try:
        m = _models("delete", patient="pseudonymise")
        world = _seed(m)
        pseudonym = subject_of(db, "e_patient", world["Ann_doc"].id)
        vault, tombstones = _vault_collections(db.client)
        backup = _dump(db)
        vault_backup = {"vault": list(vault.find()), "tombstones": list(tombstones.find())}
        rights = Rights(m.values())
        with access_context(**CONTEXT):
            receipt = rights.erase(pseudonym)
        erased = _state(db)
        assert db.client[log_db]["privata_erasures"].count_documents({}) == 1

        db.client.drop_database(backend.db_name)  # a fresh database, the backup restored in it
        _restore(db, backup)
        if vault_restored:
            vault.delete_many({})
            vault.insert_many(vault_backup["vault"])
            tombstones.delete_many({})
            if vault_backup["tombstones"]:
                tombstones.insert_many(vault_backup["tombstones"])
        assert db["e_patient__identity"].count_documents({"_id": pseudonym}) == 1  # came back
        assert vault.count_documents({"keyAltNames": pseudonym}) == int(vault_restored)

        with access_context(**CONTEXT):
            (replayed,) = rights.replay_erasures()
            assert rights.replay_erasures()[0].removed == 0  # idempotent
        assert replayed.pseudonym == pseudonym
        assert replayed.key_shredded is vault_restored
        assert {r.model: (r.identity_deleted, r.clinical_deleted) for r in replayed.models} == {
            "EPatient": (1, 0),
            "EVisit": (0, 1),
            "ELab": (0, 2),
            "ENote": (0, 1),
        }
        # the subject is erased again, and every other document equals the backup's
        assert _state(db) == erased
        ann_ids = {repr(i) for ids in world["Ann"].values() for i in ids}
        for name, documents in backup.items():
            if name in AUDIT:
                continue
            expected = {
                repr(d["_id"]): d
                for d in documents
                if d["_id"] != pseudonym and (name == "e_patient" or repr(d["_id"]) not in ann_ids)
            }
            assert _state(db)[name] == expected, name
        assert {d["_id"]: d for d in vault.find()} == {
            d["_id"]: d for d in vault_backup["vault"] if pseudonym not in d.get("keyAltNames", ())
        }
        assert tombstones.count_documents({"_id": pseudonym}) == 1
        (entry,) = list(db.client[log_db]["privata_erasures"].find())
        assert ErasureReceipt.from_document(entry["receipt"]) == receipt
        replays = _erase_records(db, "replay")
        assert [(r["model"], r["count"]) for r in replays[:4]] == [
            ("EPatient", 1),
            ("EVisit", 1),
            ("ELab", 2),
            ("ENote", 1),
        ]
        assert {r["subjects"][0] for r in replays} == {pseudonym}
    finally:
        db.client.drop_database(log_db)


# -- Beanie ----------------------------------------------------------------------------------


def _beanie_models(policy: str) -> list[Any]:
    class BEPatient(pb.Document):
        first_name: str
        email: Annotated[str, pb.PII(searchable=True)]
        blood_type: str = "A+"

        class Settings:
            name = "be_patient"
            privacy = {"erasure": policy}

    class BEVisit(pb.Document):
        patient_id: pb.PydanticObjectId
        reason: str

        class Settings:
            name = "be_visit"
            references = {"patient_id": "BEPatient"}
            privacy = {"erasure": policy}

    class BELab(pb.Document):
        visit_id: pb.PydanticObjectId
        value: int

        class Settings:
            name = "be_lab"
            references = {"visit_id": "BEVisit"}
            privacy = {"erasure": policy}

    class BENote(pb.Document):
        lab_id: pb.PydanticObjectId
        text: str

        class Settings:
            name = "be_note"
            references = {"lab_id": "BELab"}
            privacy = {"erasure": policy}

    return [BEPatient, BEVisit, BELab, BENote]


async def _beanie_seed(models: list[Any]) -> dict[str, Any]:
    patient_cls, visit_cls, lab_cls, note_cls = models
    made: dict[str, Any] = {}
    with access_context(**CONTEXT):
        for name, email in (("Ann", "ann@example.org"), ("Bob", "bob@example.org")):
            patient = await patient_cls(first_name=name, email=email).insert()
            visit = await visit_cls(patient_id=patient.id, reason="check-up").insert()
            labs = [await lab_cls(visit_id=visit.id, value=v).insert() for v in (1, 2)]
            note = await note_cls(lab_id=labs[0].id, text="normal").insert()
            made[name] = {
                "be_patient": {patient.id},
                "be_visit": {visit.id},
                "be_lab": {lab.id for lab in labs},
                "be_note": {note.id},
            }
            made[f"{name}_id"] = patient.id
    return made


async def _astate(db: Any) -> dict[str, dict[str, Any]]:
    names = sorted(await db.list_collection_names())
    return {
        name: {repr(d["_id"]): d for d in await db[name].find().to_list(None)}
        for name in names
        if name not in AUDIT
    }


@pytest.mark.parametrize("policy", ["pseudonymise", "delete"])
async def test_beanie_erase_a_subject_with_a_three_level_chain(
    backend: Backend, policy: str
) -> None:
    async with beanie_database(backend) as raw:
        models = _beanie_models(policy)
        await pb.init_beanie(database=raw, document_models=models)
        world = await _beanie_seed(models)
        rights = AsyncRights(models)
        before = await _astate(raw)
        with access_context(**CONTEXT):
            with pytest.raises(UnknownSubject):
                await rights.erase("pseu_" + "0" * 32)
            assert await _astate(raw) == before  # nothing stored for an unknown subject
            subject = Subject(model="BEPatient", field="email", value="ann@example.org")
            receipt = await rights.erase(subject)
            again = await rights.erase(receipt.pseudonym)
            with pytest.raises(UnknownSubject):
                await rights.erase(subject)
        pseudonym = receipt.pseudonym
        assert again == receipt
        assert verify_receipt(receipt)
        deleted = policy == "delete"
        assert [(r.model, r.identity_deleted, r.clinical_deleted, r.clinical_kept)
                for r in receipt.models] == [
            ("BEPatient", 1, int(deleted), int(not deleted)),
            ("BEVisit", 0, int(deleted), int(not deleted)),
            ("BELab", 0, 2 * deleted, 2 * (not deleted)),
            ("BENote", 0, int(deleted), int(not deleted)),
        ]  # fmt: skip
        after = await _astate(raw)
        assert await raw["be_patient__identity"].find_one({"_id": pseudonym}) is None
        assert len(after["be_patient__identity"]) == 1  # Bob's
        for collection in ("be_patient", "be_visit", "be_lab", "be_note"):
            ann_ids = {repr(i) for i in world["Ann"][collection]}
            expected = (
                {k: v for k, v in before[collection].items() if k not in ann_ids}
                if deleted
                else before[collection]
            )
            assert after[collection] == expected, collection
        database, _, name = current().key_vault_namespace.partition(".")
        vault = raw.client[database][name]
        assert await vault.count_documents({"keyAltNames": pseudonym}) == 0
        assert (
            await raw.client[database][f"{name}.tombstones"].count_documents({"_id": pseudonym})
            == 1
        )
        entries = await raw["privata_erasures"].find().to_list(None)
        assert [(e["_id"], e["state"]) for e in entries] == [(pseudonym, "done")]
        assert verify_receipt(entries[0]["receipt"])
        trail = await raw["privata_audit"].find({"operation": "erase"}).to_list(None)
        assert [(r["model"], r["outcome"]) for r in trail] == [
            *[(m, "ok") for m in ("BEPatient", "BEVisit", "BELab", "BENote")],
            *[(m, "repeat") for m in ("BEPatient", "BEVisit", "BELab", "BENote")],
        ]
        assert all(r["subjects"] == [pseudonym] for r in trail)
        everything = repr([*await raw["privata_audit"].find().to_list(None), *entries])
        assert not [value for value in VALUES if value in everything]


@pytest.mark.parametrize("vault_restored", [True, False], ids=["vault restored", "vault kept"])
async def test_beanie_replay_erasures_after_a_backup_restore(
    backend: Backend, restore_settings: None, vault_restored: bool
) -> None:
    log_db = f"{backend.db_name}_erasures"
    privata_mongo.configure(erasure_database=log_db)
    async with beanie_database(backend) as raw:
        try:
            models = _beanie_models("delete")
            await pb.init_beanie(database=raw, document_models=models)
            world = await _beanie_seed(models)
            names = await raw.list_collection_names()
            backup = {n: await raw[n].find().to_list(None) for n in names}
            database, _, name = current().key_vault_namespace.partition(".")
            vault = raw.client[database][name]
            keys = await vault.find().to_list(None)
            rights = AsyncRights(models)
            with access_context(**CONTEXT):
                receipt = await rights.erase(Subject(model="BEPatient", id=world["Ann_id"]))
            erased = await _astate(raw)
            await raw.client.drop_database(backend.db_name)
            for collection, documents in backup.items():
                if documents:
                    await raw[collection].insert_many(documents)
            if vault_restored:
                await vault.delete_many({})
                await vault.insert_many(keys)
            assert await raw["be_patient__identity"].count_documents({}) == 2
            with access_context(**CONTEXT):
                (replayed,) = await rights.replay_erasures()
                (again,) = await rights.replay_erasures()
            assert replayed.pseudonym == receipt.pseudonym
            assert replayed.removed == 6  # an identity row, a patient, a visit, 2 labs, a note
            assert replayed.key_shredded is vault_restored
            assert again.removed == 0
            assert await _astate(raw) == erased
            assert {d["_id"] for d in await vault.find().to_list(None)} == {
                d["_id"] for d in keys if receipt.pseudonym not in d.get("keyAltNames", ())
            }
            bob = {repr(i) for ids in world["Bob"].values() for i in ids}
            for collection in ("be_patient", "be_visit", "be_lab", "be_note"):
                assert set(erased[collection]) == {
                    repr(d["_id"]) for d in backup[collection] if repr(d["_id"]) in bob
                }
        finally:
            await raw.client.drop_database(log_db)


# -- retention -------------------------------------------------------------------------------


def _retention_models(then: str) -> dict[str, Any]:
    class TPatient(pm.Document):
        first_name = pm.StringField()
        email = pm.EmailField(pii=True, searchable=True)
        last_seen = pm.DateTimeField()
        meta = {
            "collection": "t_patient",
            "privacy": {
                "not_pii": ["last_seen"],
                "erasure": "delete",
                "retention": {"days": 365, "field": "last_seen", "then": then},
            },
        }

    class TVisit(pm.Document):
        patient = pm.ReferenceField(TPatient)
        meta = {"collection": "t_visit", "privacy": {"erasure": "delete"}}

    return {"TPatient": TPatient, "TVisit": TVisit}


@pytest.mark.parametrize("then", ["erase", "pseudonymise"])
def test_retention_erases_subjects_past_it_idempotently_and_audited(
    connected: Any, then: str
) -> None:
    db = connected
    m = _retention_models(then)
    now = datetime.datetime(2026, 6, 1)
    with access_context(**CONTEXT):
        old = m["TPatient"](first_name="Ann", email="ann@example.org",
                            last_seen=now - datetime.timedelta(days=400)).save()  # fmt: skip
        recent = m["TPatient"](first_name="Bob", email="bob@example.org",
                               last_seen=now - datetime.timedelta(days=10)).save()  # fmt: skip
        undated = m["TPatient"](first_name="Cy", email="cy@example.org").save()
        for patient in (old, recent, undated):
            m["TVisit"](patient=patient).save()
    ann, bob, cy = (subject_of(db, "t_patient", p.id) for p in (old, recent, undated))
    rights = Rights(m.values())
    retention_context = {"actor": "retention-job", "purpose": "retention", "legal_basis": "HIPAA"}
    with access_context(**retention_context):
        (receipt,) = rights.enforce_retention(now=now)
        assert rights.enforce_retention(now=now) == []  # idempotent
    assert receipt.pseudonym == ann
    assert receipt.actor == "retention-job"
    assert verify_receipt(receipt)
    assert db["t_patient__identity"].count_documents({"_id": ann}) == 0
    assert {r["_id"] for r in db["t_patient__identity"].find()} == {bob, cy}
    _, tombstones = _vault_collections(db.client)
    assert tombstones.count_documents({"_id": ann}) == 1
    kept = 0 if then == "erase" else 1  # pseudonymise keeps every clinical row
    assert db["t_patient"].count_documents({"_pseudonym": ann}) == kept
    assert db["t_visit"].count_documents({"patient": old.id}) == kept
    assert db["t_visit"].count_documents({}) == 2 + kept
    assert db["privata_erasures"].find_one({"_id": ann})["state"] == "done"
    runs = list(db["privata_audit"].find({"operation": "retention"}, sort=[("seq", 1)]))
    assert [(r["model"], r["subjects"], r["count"], r["actor"]) for r in runs] == [
        ("TPatient", [ann], 1, "retention-job"),
        ("TPatient", [], 0, "retention-job"),
    ]
    assert [r["outcome"] for r in _erase_records(db)] == ["ok", "ok"]  # TPatient, TVisit
    # a year later Bob is past it too; Cy, with no date, never is
    with access_context(**retention_context):
        later = rights.enforce_retention(now=now + datetime.timedelta(days=400))
    assert [r.pseudonym for r in later] == [bob]
    assert {r["_id"] for r in db["t_patient__identity"].find()} == {cy}


def _beanie_retention_models() -> list[Any]:
    class BTPatient(pb.Document):  # identity fields optional: a kept document has none
        first_name: Annotated[str | None, pb.PII()] = None
        email: Annotated[str | None, pb.PII(searchable=True)] = None
        last_seen: datetime.datetime | None = None

        class Settings:
            name = "bt_patient"
            privacy = {
                "not_pii": ["last_seen"],
                "retention": {"days": 30, "field": "last_seen", "then": "pseudonymise"},
            }

    return [BTPatient]


async def test_beanie_retention_pseudonymises_subjects_past_it(backend: Backend) -> None:
    async with beanie_database(backend) as raw:
        models = _beanie_retention_models()
        (patient_cls,) = models
        await pb.init_beanie(database=raw, document_models=models)
        now = datetime.datetime(2026, 6, 1)
        with access_context(**CONTEXT):
            old = await patient_cls(
                first_name="Ann",
                email="ann@example.org",
                last_seen=now - datetime.timedelta(days=31),
            ).insert()
            await patient_cls(
                first_name="Bob",
                email="bob@example.org",
                last_seen=now - datetime.timedelta(days=1),
            ).insert()
            rights = AsyncRights(models)
            (receipt,) = await rights.enforce_retention(now=now)
            assert await rights.enforce_retention(now=now) == []
            kept = await patient_cls.get(old.id)
        assert kept is not None
        assert (kept.first_name, kept.email) == (None, None)  # pseudonymised, not deleted
        assert await raw["bt_patient__identity"].count_documents({}) == 1
        assert await raw["bt_patient"].count_documents({}) == 2
        assert [(m.model, m.clinical_kept) for m in receipt.models] == [("BTPatient", 1)]
        runs = await raw["privata_audit"].find({"operation": "retention"}).to_list(None)
        assert [r["count"] for r in runs] == [1, 0]
        assert runs[0]["subjects"] == [receipt.pseudonym]


async def test_beanie_a_crash_after_the_shred_is_completed_by_a_rerun(backend: Backend) -> None:
    async with beanie_database(backend) as raw:
        plan = FaultPlan()
        models = _beanie_models("delete")
        await pb.init_beanie(database=faulty_database(raw, plan), document_models=models)
        world = await _beanie_seed(models)
        rights = AsyncRights(models)
        with access_context(**CONTEXT):
            plan.arm()  # the calls of a fault-free erasure (Bob's map has Ann's shape)
            expected = await rights.erase(Subject(model="BEPatient", id=world["Bob_id"]))
            plan.arm(_position(plan, "__keyVault", "delete_many"), "after")
            with pytest.raises(pymongo.errors.AutoReconnect):
                await rights.erase(Subject(model="BEPatient", id=world["Ann_id"]))
            plan.disarm()
            (entry,) = await raw["privata_erasures"].find({"state": "pending"}).to_list(None)
            assert await raw["be_patient__identity"].count_documents({"_id": entry["_id"]}) == 1
            database, _, name = current().key_vault_namespace.partition(".")
            vault = raw.client[database][name]
            assert await vault.count_documents({"keyAltNames": entry["_id"]}) == 0  # shredded
            receipt = await rights.erase(entry["_id"])
        assert [(m.model, m.clinical_deleted) for m in receipt.models] == [
            (m.model, m.clinical_deleted) for m in expected.models
        ]
        assert receipt.key_shredded
        assert await raw["be_patient__identity"].count_documents({}) == 0
        for collection in ("be_patient", "be_visit", "be_lab", "be_note"):
            assert await raw[collection].count_documents({}) == 0, collection
        outcomes = (
            await raw["privata_audit"]
            .find({"operation": "erase", "subjects": entry["_id"]})
            .to_list(None)
        )
        assert {r["outcome"] for r in outcomes} == {"resumed"}
