"""A delete crypto-shreds: the deleted subject's data key goes, with a tombstone.

Every way an application deletes (mongoengine's ``doc.delete()`` and ``QuerySet.delete()``,
Beanie's ``delete()`` and ``delete_many``, raw ``delete_one``/``delete_many``,
``find_one_and_delete`` and bulk deletes through the proxy) removes the identity row and
shreds its key, so a backup copy of the row taken before the delete reads as an erased
subject, and the key vault does not grow with every create/delete cycle.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import mongoengine as me
import pytest
from pymongo import DeleteOne

import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from privata_mongo import KeyUnavailable
from privata_mongo.adapters.key_vault import CollectionKeyVault, tombstones_of
from privata_mongo.config import current
from privata_mongo.encryption import forget_keys, unseal_row, unseal_row_async
from testkit.backends import Backend, beanie_database


def _vault(client: Any) -> Any:
    database, _, collection = current().key_vault_namespace.partition(".")
    return client[database][collection]


def _model() -> Any:
    class ShredPatient(me.Document):
        first_name = me.StringField()
        email = me.StringField(unique=True)
        diagnosis = me.StringField()
        meta = {"collection": "shred_patient"}

    return ShredPatient


def _other_model() -> Any:
    class ShredVisitor(me.Document):
        first_name = me.StringField()
        ward = me.StringField()
        meta = {"collection": "shred_visitor"}

    return ShredVisitor


def _pseudonym(db: Any, doc: Any) -> str:
    row = db[doc._get_collection_name()].find_one({"_id": doc.id})
    pseudonym: str = row["_pseudonym"]
    return pseudonym


def _delete_document(Patient: Any, doc: Any) -> None:
    doc.delete()


def _delete_queryset(Patient: Any, doc: Any) -> None:
    Patient.objects(email=doc.email).delete()


def _raw_delete_one(Patient: Any, doc: Any) -> None:
    assert Patient._get_collection().delete_one({"_id": doc.id}).deleted_count == 1


def _raw_delete_many(Patient: Any, doc: Any) -> None:
    assert Patient._get_collection().delete_many({"email": doc.email}).deleted_count == 1


def _find_one_and_delete(Patient: Any, doc: Any) -> None:
    assert Patient._get_collection().find_one_and_delete({"_id": doc.id}) is not None


def _bulk_delete(Patient: Any, doc: Any) -> None:
    result = Patient._get_collection().bulk_write([DeleteOne({"_id": doc.id})])
    assert result.deleted_count == 1


DELETES: dict[str, Callable[[Any, Any], None]] = {
    "doc.delete": _delete_document,
    "QuerySet.delete": _delete_queryset,
    "delete_one": _raw_delete_one,
    "delete_many": _raw_delete_many,
    "find_one_and_delete": _find_one_and_delete,
    "bulk_write": _bulk_delete,
}


@pytest.mark.parametrize("how", sorted(DELETES))
def test_deleting_a_document_shreds_its_key_and_its_backup_reads_as_erased(
    connected: Any, backend: Backend, how: str
) -> None:
    Patient = _model()
    ada = Patient(first_name="Ada", email="ada@example.org", diagnosis="J45").save()
    grace = Patient(first_name="Grace", email="grace@example.org", diagnosis="J45").save()
    ada_pseudonym, grace_pseudonym = _pseudonym(connected, ada), _pseudonym(connected, grace)
    backup = {r["_id"]: r for r in connected["shred_patient__identity"].find()}
    backup_clinical = list(connected["shred_patient"].find())

    DELETES[how](Patient, ada)

    vault = _vault(connected.client)
    assert vault.count_documents({"keyAltNames": ada_pseudonym}) == 0
    assert tombstones_of(vault).count_documents({"_id": ada_pseudonym}) == 1
    # the other subject keeps its key and still decrypts
    assert vault.count_documents({"keyAltNames": grace_pseudonym}) == 1
    assert tombstones_of(vault).count_documents({"_id": grace_pseudonym}) == 0
    assert unseal_row(connected, backup[grace_pseudonym])["first_name"] == "Grace"
    # the backup copy of the deleted row no longer decrypts ...
    forget_keys()
    with pytest.raises(KeyUnavailable):
        unseal_row(connected, backup[ada_pseudonym])
    # ... and restored, it reads as an erased subject (no identity values), not a lost key
    restored_name = f"{backend.db_name}_restored"
    restored = connected.client[restored_name]
    restored["shred_patient__identity"].insert_many(list(backup.values()))
    restored["shred_patient"].insert_many(backup_clinical)
    try:
        me.disconnect()
        pm.connect(db=restored_name, **backend.mongoengine_settings())
        by_id = {p.id: p for p in _model().objects}
        assert (by_id[ada.id].first_name, by_id[ada.id].email) == (None, None)
        assert by_id[ada.id].diagnosis == "J45"
        assert by_id[grace.id].first_name == "Grace"
    finally:
        connected.client.drop_database(restored_name)


def test_no_other_document_shares_the_deleted_subjects_key(connected: Any) -> None:
    Patient, Visitor = _model(), _other_model()
    ada = Patient(first_name="Ada", email="ada@example.org").save()
    pseudonym = _pseudonym(connected, ada)
    # a document that brings the pseudonym of another subject is given its own: a
    # pseudonym names one logical document, in one model
    Visitor._get_collection().insert_one({"first_name": "Eve", "_pseudonym": pseudonym})
    Patient._get_collection().insert_one({"first_name": "Mallory", "_pseudonym": pseudonym})
    links = [r["_pseudonym"] for r in connected["shred_visitor"].find()]
    links += [r["_pseudonym"] for r in connected["shred_patient"].find({"_id": {"$ne": ada.id}})]
    assert len(links) == 2
    assert pseudonym not in links
    eve = Visitor.objects.get(first_name="Eve")

    ada.delete()

    vault = _vault(connected.client)
    assert vault.count_documents({"keyAltNames": pseudonym}) == 0
    assert vault.count_documents({"keyAltNames": {"$in": links}}) == 2
    forget_keys()
    assert Visitor.objects.get(id=eve.id).first_name == "Eve"
    assert Patient.objects.get(first_name="Mallory").first_name == "Mallory"


def test_the_key_count_stays_flat_over_creates_and_deletes(connected: Any) -> None:
    Patient = _model()
    Patient(first_name="Grace", email="grace@example.org").save()  # the vault's fixed keys exist
    vault = _vault(connected.client)
    before = vault.count_documents({})
    for i in range(100):
        Patient(first_name="Ada", email=f"ada{i}@example.org").save().delete()
    for i in range(100):
        Patient(first_name="Alan", email=f"alan{i}@example.org").save()
    assert Patient.objects(first_name="Alan").delete() == 100
    assert vault.count_documents({}) == before
    assert Patient.objects.get().first_name == "Grace"


# -- Beanie ----------------------------------------------------------------------------------


def _beanie_model() -> Any:
    class ShredMember(pb.Document):
        first_name: str | None = None
        email: str | None = None
        ward: str = "A"

        class Settings:
            name = "shred_members"

    return ShredMember


async def _keys(database: Any, pseudonyms: list[str]) -> int:
    count: int = await _vault(database.client).count_documents({"keyAltNames": {"$in": pseudonyms}})
    return count


async def _links(database: Any) -> dict[str, str]:
    rows = await database["shred_members"].find({}).to_list(None)
    return {r["first_name"] if "first_name" in r else r["ward"]: r["_pseudonym"] for r in rows}


async def test_beanie_deletes_shred_their_subjects_keys(backend: Backend) -> None:
    async with beanie_database(backend, uuidRepresentation="standard") as database:
        Member = _beanie_model()
        await pb.init_beanie(database=database, document_models=[Member])
        names = ["Ada", "Grace", "Alan", "Edsger", "Barbara"]
        members = {
            n: await Member(first_name=n, email=f"{n}@x.org", ward=n).insert() for n in names
        }
        links = await _links(database)
        backup = {r["_id"]: r for r in await database["shred_members__identity"].find({}).to_list()}
        vault = _vault(database.client)

        await members["Ada"].delete()  # Beanie's delete(): delete_one
        assert await _keys(database, [links["Ada"]]) == 0
        await Member.find(Member.ward == "Grace").delete()  # delete_many
        assert await _keys(database, [links["Grace"]]) == 0
        await Member.find_one(Member.ward == "Alan").delete()  # delete_one by filter
        assert await _keys(database, [links["Alan"]]) == 0

        assert (
            await tombstones_of(vault).count_documents(
                {"_id": {"$in": [links[n] for n in ("Ada", "Grace", "Alan")]}}
            )
            == 3
        )
        assert await _keys(database, [links["Edsger"], links["Barbara"]]) == 2
        forget_keys()
        with pytest.raises(KeyUnavailable):
            await unseal_row_async(database, backup[links["Ada"]])
        still = await unseal_row_async(database, backup[links["Edsger"]])
        assert still["first_name"] == "Edsger"

        before = await vault.count_documents({})
        for i in range(50):
            await (await Member(first_name="Tmp", email=f"t{i}@x.org").insert()).delete()
        for i in range(50):
            await Member(first_name="Tmp", email=f"u{i}@x.org").insert()
        await Member.find(Member.ward == "A").delete()
        assert await vault.count_documents({}) == before
        assert await Member.count() == 2


class _Clock:
    def __init__(self, at: datetime.datetime) -> None:
        self.at = at

    def now(self) -> datetime.datetime:
        return self.at


def test_shredding_a_subject_again_keeps_its_first_tombstone(backend: Backend) -> None:
    client = backend.client()
    try:
        first = datetime.datetime(2026, 1, 2, 3, 4, 5)
        clock = _Clock(first)
        vault = CollectionKeyVault(client[backend.db_name]["vault"], clock)
        assert vault.shred(["pseu_a", "pseu_a", "pseu_b"]) == 0  # no keys: tombstones only
        clock.at = first + datetime.timedelta(days=1)
        vault.shred(["pseu_a", "pseu_c"])
        stones = {d["_id"]: d["shreddedAt"] for d in vault.tombstones.find()}
        assert stones == {"pseu_a": first, "pseu_b": first, "pseu_c": clock.at}
    finally:
        client.drop_database(backend.db_name)
        client.close()
