"""An insert whose clinical half the server refuses leaves no identity row and no data key.

A refusal is final (unlike a network error, after which a stalled server may still apply the
write): the identity half written first is removed at once and its fresh data key deleted.
"""

from __future__ import annotations

from typing import Any

import mongoengine as me
import pytest
from bson.errors import InvalidDocument
from pymongo.errors import OperationFailure

from privata_mongo.config import current


class RefusedPatient(me.Document):
    first_name = me.StringField()
    email = me.StringField()
    meta = {"collection": "refused_patient"}


def _key_count(client: Any) -> int:
    database, _, collection = current().key_vault_namespace.partition(".")
    return client[database][collection].count_documents({})


def test_a_clinical_half_the_server_refuses_leaves_nothing_behind(connected: Any) -> None:
    RefusedPatient(first_name="Ada", email="ada@example.org").save()  # indexes, shared keys
    collection = RefusedPatient._get_collection()
    keys = _key_count(connected.client)
    with pytest.raises((OperationFailure, InvalidDocument)):
        collection.insert_one({"first_name": "Grace", "email": "grace@example.org", "$bad": 1})
    assert connected["refused_patient__identity"].count_documents({}) == 1
    assert connected["refused_patient"].count_documents({}) == 1
    assert _key_count(connected.client) == keys
    assert connected["privata_audit.pending"].count_documents({}) == 0
