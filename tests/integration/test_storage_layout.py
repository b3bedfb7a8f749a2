"""What is really stored: the split, the pseudonyms, nothing identifying on the clinical side."""

from __future__ import annotations

import datetime
import re
from typing import Any

import mongoengine as me
import pytest

import privata_mongo
from privata_mongo.core.pseudonym import PSEUDONYM_PATTERN
from privata_mongo.encryption import unseal_row
from privata_mongo.mongoengine import get_db


def _patient_model() -> Any:
    class Contact(me.EmbeddedDocument):
        relation = me.StringField()
        phone = me.StringField()

    class StoredPatient(me.Document):
        first_name = me.StringField(required=True)
        email = me.EmailField(unique=True)
        date_of_birth = me.DateTimeField()
        mrn = me.StringField(pii=True)
        emergency = me.EmbeddedDocumentField(Contact)
        diagnosis = me.StringField()
        visits = me.IntField(default=0)
        meta = {"collection": "stored_patient"}

    return StoredPatient


def _values(document: Any) -> list[Any]:
    if isinstance(document, dict):
        return [v for value in document.values() for v in _values(value)]
    if isinstance(document, list):
        return [v for value in document for v in _values(value)]
    return [document]


PII = ("Ada", "ada@example.org", "MRN-0001", "+44 20 7946 0000")


def test_documents_are_split_by_classification(connected: Any) -> None:
    Patient = _patient_model()
    saved = Patient(
        first_name="Ada",
        email="ada@example.org",
        date_of_birth=datetime.datetime(1815, 12, 10),
        mrn="MRN-0001",
        emergency={"relation": "mother", "phone": "+44 20 7946 0000"},
        diagnosis="J45",
        visits=2,
    ).save()

    (clinical,) = list(connected["stored_patient"].find())
    (identity,) = list(connected["stored_patient__identity"].find())
    assert clinical["_id"] == saved.id
    assert set(clinical) == {"_id", "diagnosis", "visits", "_pseudonym"}
    assert not set(_values(clinical)) & set(PII)
    assert PSEUDONYM_PATTERN.match(clinical["_pseudonym"])
    assert identity["_id"] == clinical["_pseudonym"]
    # stored encrypted: the pseudonym and revision in clear, one CSFLE value, blind index terms
    assert set(identity) == {"_id", "_rev", "_idx", "_enc"}
    assert identity["_enc"].subtype == 6
    # e-mail and MRN are identifiers looked up by equality (Safe Harbor F, H): blind-indexed
    assert set(identity["_idx"]) == {"email", "mrn"}
    assert not set(_values(identity)) & set(PII)
    plain = unseal_row(connected, identity)
    assert {"first_name", "email", "date_of_birth", "mrn", "emergency"} == set(plain)
    assert plain["email"] == "ada@example.org"

    native_shape = Patient.objects.as_pymongo().get(id=saved.id)
    assert native_shape == saved.to_mongo().to_dict()
    assert "_pseudonym" not in native_shape


def test_each_document_gets_its_own_pseudonym(connected: Any) -> None:
    Patient = _patient_model()
    for i in range(5):
        Patient(first_name=f"P{i}", email=f"p{i}@example.org").save()
    pseudonyms = [d["_pseudonym"] for d in connected["stored_patient"].find()]
    assert len(set(pseudonyms)) == 5


def test_model_without_identity_fields_is_stored_natively(connected: Any) -> None:
    class Ward(me.Document):
        code = me.StringField()
        beds = me.IntField()

    Ward(code="W1", beds=12).save()
    (raw,) = list(connected["ward"].find())
    assert set(raw) == {"_id", "code", "beds"}
    assert "ward__identity" not in connected.list_collection_names()
    assert str(privata_mongo.explain(Ward)).startswith("Ward: no identity fields")


def test_identity_collections_are_hidden_from_the_app(connected: Any) -> None:
    Patient = _patient_model()
    Patient(first_name="Ada").save()
    assert "stored_patient__identity" in connected.list_collection_names()
    assert get_db().list_collection_names() == ["stored_patient"]


def test_strict_model_never_sees_the_link_field(connected: Any) -> None:
    Patient = _patient_model()
    Patient(first_name="Ada", email="ada@example.org").save()
    loaded = Patient.objects.get(first_name="Ada")  # strict: would raise FieldDoesNotExist
    assert loaded.email == "ada@example.org"
    assert "_pseudonym" not in loaded.to_mongo()


def test_unique_identity_field_raises_native_error_without_the_value(connected: Any) -> None:
    Patient = _patient_model()
    Patient(first_name="Ada", email="ada@example.org").save()
    with pytest.raises(me.NotUniqueError) as caught:
        Patient(first_name="Eve", email="ada@example.org").save()
    assert "ada@example.org" not in str(caught.value)
    assert "Eve" not in str(caught.value)
    assert Patient.objects.count() == 1
    assert connected["stored_patient__identity"].count_documents({}) == 1


def test_bulk_insert_writes_whole_documents_or_nothing(connected: Any) -> None:
    Patient = _patient_model()
    Patient.ensure_indexes()
    batch = [
        Patient(first_name=n, email=e)
        for n, e in [("A", "a@x.org"), ("B", "a@x.org"), ("C", "c@x.org")]
    ]
    with pytest.raises(me.BulkWriteError) as caught:  # mongoengine's own type for bulk inserts
        Patient.objects.insert(batch)
    assert "a@x.org" not in str(caught.value)
    clinical = connected["stored_patient"].count_documents({})
    identity = connected["stored_patient__identity"].count_documents({})
    assert (clinical, identity) == (1, 1)  # ordered insert: the first document only


def test_explain_names_the_rule_of_every_field() -> None:
    Patient = _patient_model()
    text = str(privata_mongo.explain(Patient))
    assert "identity 'stored_patient__identity'" in text
    assert re.search(r"mrn: identity — field marker", text)
    assert re.search(r"emergency: identity — contains a classified field: 'emergency.phone'", text)
    assert re.search(r"diagnosis: clinical", text)
    assert privata_mongo.explain(Patient).identity_fields == (
        "first_name",
        "email",
        "date_of_birth",
        "mrn",
        "emergency",
    )
