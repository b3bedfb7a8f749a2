"""Blind index terms are bound to their database, and rows of the first format are migrated.

Databases (tenants) may share one key vault, hence one blind index key: the term of an e-mail
address names the database too, so the same address in the same collection of two tenants'
databases gives two unrelated terms. Rows written before hold first-format terms (bound to the
collection only): lookups match them alongside while ``legacy_blind_terms`` is on, and
``privata_mongo.encryption.reindex`` rewrites them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mongoengine as me
import pytest

import privata_mongo
import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from privata_mongo import ConfigurationError
from privata_mongo.config import current
from privata_mongo.core.crypto import INDEX_KEY_NAME, legacy_blind_term
from privata_mongo.encryption import key_ring, reindex, reindex_async, shred
from privata_mongo.testing import ScriptedDriver
from testkit.backends import Backend


def _model(alias: str = "default") -> Any:
    class TermPatient(me.Document):
        first_name = me.StringField()
        email = me.StringField(unique=True)
        meta = {"collection": "term_patient", "db_alias": alias}

    return TermPatient


@pytest.fixture
def settings() -> Iterator[None]:
    """Restores the settings a test changes."""
    saved = current()
    yield
    privata_mongo.config._current = saved


def _vault(client: Any) -> Any:
    database, _, name = current().key_vault_namespace.partition(".")
    return client[database][name]


def _index_key(client: Any, documents: list[Any] | None = None) -> bytes:
    """The blind index key, as the key ring derives it from its key document in the vault."""
    ring = key_ring(client)
    if documents is None:
        documents = list(_vault(client).find({"keyAltNames": INDEX_KEY_NAME}))
    ring.add(documents)
    key: bytes = ScriptedDriver([]).run(ring.index_key())
    return key


def test_the_same_value_in_two_databases_sharing_a_vault_has_unrelated_terms(
    connected: Any, backend: Backend
) -> None:
    other = f"{backend.db_name}_b"
    pm.connect(db=other, alias="tenant_b", **backend.mongoengine_settings())
    try:
        InA, InB = _model(), _model("tenant_b")
        InA(first_name="Ada", email="ada@example.org").save()
        InB(first_name="Ada B", email="ada@example.org").save()
        row_a = connected["term_patient__identity"].find_one()
        row_b = connected.client[other]["term_patient__identity"].find_one()
        assert row_a["_idx"]["email"] != row_b["_idx"]["email"]
        # each database finds its own document by the value, on the server
        InA._meta["privacy"] = {"scan_limit": 1}
        InA(first_name="Grace", email="grace@example.org").save()
        assert InA.objects.get(email="ada@example.org").first_name == "Ada"
        assert InB.objects.get(email="ada@example.org").first_name == "Ada B"
        # and uniqueness still holds within one database
        with pytest.raises(me.NotUniqueError):
            InA(first_name="Eve", email="ada@example.org").save()
        with pytest.raises(me.NotUniqueError):
            InB(first_name="Eve", email="ada@example.org").save()
    finally:
        me.disconnect("tenant_b")
        connected.client.drop_database(other)


def _as_first_format(db: Any, client: Any, pseudonym: str, email: str) -> Any:
    """Rewrite a stored row's term as the earlier version wrote it (collection only)."""
    term = legacy_blind_term(_index_key(client), "term_patient__identity", "email", email)
    identity = db["term_patient__identity"]
    identity.update_one({"_id": pseudonym}, {"$set": {"_idx.email": term}})
    return term


def test_first_format_rows_are_found_alongside_and_reindexed(
    connected: Any, settings: None
) -> None:
    Patient = _model()
    Patient._meta["privacy"] = {"scan_limit": 1}  # only a server-side lookup can answer
    ada = Patient(first_name="Ada", email="ada@example.org").save()
    grace = Patient(first_name="Grace", email="grace@example.org").save()
    alan = Patient(first_name="Alan", email="alan@example.org").save()
    link = {
        p.id: connected["term_patient"].find_one({"_id": p.id})["_pseudonym"]
        for p in (ada, grace, alan)
    }
    current_term = connected["term_patient__identity"].find_one({"_id": link[ada.id]})["_idx"]
    old = _as_first_format(connected, connected.client, link[ada.id], "ada@example.org")
    _as_first_format(connected, connected.client, link[alan.id], "alan@example.org")
    assert old != current_term["email"]

    # read alongside (the default): the old row is found by its value
    assert Patient.objects.get(email="ada@example.org").id == ada.id
    assert Patient.objects(email__in=["ada@example.org", "grace@example.org"]).count() == 2
    # without it, the old rows are not found: that is what the re-index is for
    privata_mongo.configure(legacy_blind_terms=False)
    assert Patient.objects(email="ada@example.org").count() == 0

    shred(connected.client, [link[alan.id]])  # an erased subject's terms go at the re-index
    assert reindex(Patient._get_collection()) == 2
    assert reindex(Patient._get_collection()) == 0  # nothing left to rewrite
    stored = connected["term_patient__identity"].find_one({"_id": link[ada.id]})
    assert stored["_idx"] == current_term
    assert "_idx" not in connected["term_patient__identity"].find_one({"_id": link[alan.id]})
    assert Patient.objects.get(email="ada@example.org").id == ada.id
    assert Patient.objects.get(email="grace@example.org").id == grace.id
    assert Patient.objects(email="alan@example.org").count() == 0


def test_reindex_refuses_what_is_not_a_split_collection(connected: Any) -> None:
    with pytest.raises(ConfigurationError, match="split collection"):
        reindex(connected["term_patient"])


async def test_reindex_async_rewrites_a_beanie_collections_terms(settings: None) -> None:
    class TermMember(pb.Document):
        first_name: str
        email: str

        class Settings:
            name = "term_members"

    database = pb.embedded_database("term_beanie")
    await pb.init_beanie(database=database, document_models=[TermMember])
    member = await TermMember(first_name="Ada", email="ada@example.org").insert()
    row = await database["term_members"].find_one({"_id": member.id})
    current_row = await database["term_members__identity"].find_one({"_id": row["_pseudonym"]})
    documents = await _vault(database.client).find({"keyAltNames": INDEX_KEY_NAME}).to_list()
    key = _index_key(database.client, documents)
    old = legacy_blind_term(key, "term_members__identity", "email", "ada@example.org")
    await database["term_members__identity"].update_one(
        {"_id": row["_pseudonym"]}, {"$set": {"_idx.email": old}}
    )
    found = await TermMember.find_one(TermMember.email == "ada@example.org")
    assert found is not None
    assert await reindex_async(TermMember.get_pymongo_collection()) == 1
    privata_mongo.configure(legacy_blind_terms=False)
    after = await database["term_members__identity"].find_one({"_id": row["_pseudonym"]})
    assert after["_idx"] == current_row["_idx"]
    assert await TermMember.find_one(TermMember.email == "ada@example.org") is not None
