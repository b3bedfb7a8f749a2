"""A key vault that is dropped, restored or paired with the wrong master key."""

from __future__ import annotations

from typing import Any

import mongoengine as me
import pytest

import privata_mongo.mongoengine as pm
from privata_mongo import ConfigurationError, KeyUnavailable
from privata_mongo.config import current
from privata_mongo.core.crypto import INDEX_KEY_NAME, KEY_CHECK_NAME
from privata_mongo.core.crypto.chain_key import is_chain_key_name
from privata_mongo.encryption import MASTER_KEY_ENV, forget_keys, new_master_key
from testkit.backends import Backend

EMAILS = ("ada@example.org", "grace@example.org")


def _vault(client: Any) -> Any:
    database, _, collection = current().key_vault_namespace.partition(".")
    return client[database][collection]


def _model() -> Any:
    class VaultPatient(me.Document):
        first_name = me.StringField()
        email = me.StringField()
        meta = {"collection": "vault_patient"}

    return VaultPatient


def _restart(backend: Backend) -> Any:
    """A new process: nothing held in memory, connected again."""
    me.disconnect()
    forget_keys()
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    return _model()


def test_a_dropped_key_vault_fails_searches_and_restoring_it_brings_them_back(
    connected: Any, backend: Backend
) -> None:
    Patient = _model()
    for email in EMAILS:
        Patient(first_name=email.split("@")[0], email=email).save()
    vault = _vault(connected.client)
    backup = list(vault.find())
    vault.drop()
    try:
        Patient = _restart(backend)
        with pytest.raises(KeyUnavailable, match="restore the key vault") as caught:
            list(Patient.objects(email=EMAILS[0]))
        assert not any(e in str(caught.value) for e in EMAILS)
        assert vault.count_documents({"keyAltNames": INDEX_KEY_NAME}) == 0
    finally:
        vault.drop()
        vault.insert_many(backup)
    Patient = _restart(backend)
    assert [p.first_name for p in Patient.objects(email=EMAILS[0])] == ["ada"]
    assert Patient.objects(email=EMAILS[1]).count() == 1


def test_a_search_before_any_write_creates_no_key(connected: Any) -> None:
    Patient = _model()
    names_before = {n for k in _vault(connected.client).find() for n in k.get("keyAltNames", ())}
    assert list(Patient.objects(email=EMAILS[0])) == []
    names_after = {n for k in _vault(connected.client).find() for n in k.get("keyAltNames", ())}
    # the audit trail's own key (its records of this search are MACed with it) is no data key
    keys_before = {n for n in names_before if not is_chain_key_name(n)}
    assert {n for n in names_after if not is_chain_key_name(n)} == keys_before


# -- the master-key check --------------------------------------------------------------------


def _plain_model() -> Any:
    class PlainPatient(me.Document):
        first_name = me.StringField()
        diagnosis = me.StringField()
        meta = {"collection": "plain_patient"}

    return PlainPatient


def _restart_plain(backend: Backend) -> Any:
    me.disconnect()
    forget_keys()
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    return _plain_model()


def test_a_process_with_the_wrong_master_key_cannot_write(
    connected: Any, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    Patient = _plain_model()
    Patient(first_name="Ada", diagnosis="J45").save()  # the vault has its key-check key
    vault = _vault(connected.client)
    keys_before = vault.count_documents({})
    monkeypatch.setenv(MASTER_KEY_ENV, new_master_key())
    Patient = _restart_plain(backend)
    with pytest.raises(ConfigurationError, match="rotate_master_key"):
        Patient(first_name="Grace", diagnosis="J45").save()
    assert vault.count_documents({}) == keys_before
    assert connected["plain_patient"].count_documents({}) == 1
    assert connected["plain_patient__identity"].count_documents({}) == 1


def test_a_vault_from_before_the_key_check_gets_its_key_check_key(
    connected: Any, backend: Backend
) -> None:
    Patient = _plain_model()
    Patient(first_name="Ada", diagnosis="J45").save()
    vault = _vault(connected.client)
    assert vault.count_documents({"keyAltNames": KEY_CHECK_NAME}) == 1
    vault.delete_many({"keyAltNames": KEY_CHECK_NAME})
    Patient = _restart_plain(backend)
    Patient(first_name="Grace", diagnosis="J45").save()
    assert vault.count_documents({"keyAltNames": KEY_CHECK_NAME}) == 1
    assert sorted(p.first_name for p in Patient.objects) == ["Ada", "Grace"]


def test_writing_next_to_a_dropped_vault_is_refused(connected: Any, backend: Backend) -> None:
    Patient = _plain_model()
    Patient(first_name="Ada", diagnosis="J45").save()
    vault = _vault(connected.client)
    backup = list(vault.find())
    vault.drop()
    try:
        Patient = _restart_plain(backend)
        with pytest.raises(KeyUnavailable, match="restore it from its backup"):
            Patient(first_name="Grace", diagnosis="J45").save()
        assert vault.count_documents({}) == 0
    finally:
        vault.drop()
        vault.insert_many(backup)


# -- a failed create -------------------------------------------------------------------------


def test_a_create_refused_as_a_duplicate_leaves_no_key_behind(connected: Any) -> None:
    class UniquePatient(me.Document):
        first_name = me.StringField()
        email = me.StringField(unique=True)
        meta = {"collection": "unique_patient"}

    UniquePatient(first_name="Ada", email=EMAILS[0]).save()
    vault = _vault(connected.client)
    keys_before = vault.count_documents({})
    with pytest.raises(me.NotUniqueError):
        UniquePatient(first_name="Eve", email=EMAILS[0]).save()
    with pytest.raises((me.NotUniqueError, me.errors.BulkWriteError)):
        UniquePatient.objects.insert(
            [UniquePatient(first_name="Eve", email=EMAILS[0]), UniquePatient(email=EMAILS[0])]
        )
    assert vault.count_documents({}) == keys_before
    assert connected["unique_patient__identity"].count_documents({}) == 1


def test_the_key_vault_discards_keys_without_a_tombstone(backend: Backend) -> None:
    import os

    from privata_mongo.adapters.key_vault import CollectionKeyVault
    from privata_mongo.core.crypto import KeyRing
    from privata_mongo.testing import ScriptedDriver

    ring = KeyRing({"local": {"key": os.urandom(96)}}, clock=lambda: 0.0)
    client = backend.client()
    try:
        vault = CollectionKeyVault(client[backend.db_name]["vault"])
        made = [ScriptedDriver([]).run(ring.new_key(n)) for n in ("pseu_a", "pseu_b")]
        vault.insert(made)
        vault.discard(["pseu_a"])
        assert [k["keyAltNames"] for k in vault.find(None)] == [["pseu_b"]]
        assert vault.erased(["pseu_a"]) == []
    finally:
        client.close()
