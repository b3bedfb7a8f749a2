"""A key vault that is dropped, restored or paired with the wrong master key."""

from __future__ import annotations

from typing import Any

import mongoengine as me
import pytest

import privata_mongo.mongoengine as pm
from privata_mongo import KeyUnavailable
from privata_mongo.config import current
from privata_mongo.core.crypto import INDEX_KEY_NAME
from privata_mongo.encryption import forget_keys
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
    assert names_after == names_before
