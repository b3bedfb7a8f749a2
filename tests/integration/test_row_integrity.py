"""An identity ciphertext belongs to its row: one moved to another row is refused, not served."""

from __future__ import annotations

from typing import Any

import mongoengine as me
import pytest

from privata_mongo.encryption import forget_keys, unseal_row
from privata_mongo.errors import IntegrityError, KeyUnavailable

PEOPLE = (("Ada", "ada@example.org"), ("Grace", "grace@example.org"), ("Edsger", "ew@example.org"))


def _model() -> Any:
    class BoundPatient(me.Document):
        first_name = me.StringField(required=True)
        email = me.EmailField()
        diagnosis = me.StringField()
        meta = {"collection": "bound_patient"}

    return BoundPatient


def _stored(connected: Any) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """The model, its saved documents by first name, and their pseudonyms by first name."""
    Patient = _model()
    docs = {n: Patient(first_name=n, email=e, diagnosis="J45").save() for n, e in PEOPLE}
    links = {
        n: connected["bound_patient"].find_one({"_id": d.id})["_pseudonym"] for n, d in docs.items()
    }
    return Patient, docs, links


def _swap(connected: Any, first: str, second: str) -> dict[str, Any]:
    """Exchange the ``_enc`` of two identity rows in raw storage; the rows as they were."""
    identity = connected["bound_patient__identity"]
    before = {p: identity.find_one({"_id": p}) for p in (first, second)}
    identity.update_one({"_id": first}, {"$set": {"_enc": before[second]["_enc"]}})
    identity.update_one({"_id": second}, {"$set": {"_enc": before[first]["_enc"]}})
    return before


def _assert_no_value(message: str) -> None:
    for name, email in PEOPLE:
        assert name not in message
        assert email not in message


def test_identity_ciphertexts_swapped_between_rows_fail_to_read(connected: Any) -> None:
    Patient, docs, links = _stored(connected)
    _swap(connected, links["Ada"], links["Grace"])
    forget_keys()
    for name in ("Ada", "Grace"):
        with pytest.raises(IntegrityError) as caught:
            Patient.objects.get(id=docs[name].id)
        assert isinstance(caught.value, KeyUnavailable)
        assert caught.value.pseudonyms == (links[name],)
        assert links[name] in str(caught.value)
        _assert_no_value(str(caught.value))
    # a listing that includes a swapped row fails as a whole (closed), naming both rows
    with pytest.raises(IntegrityError) as caught:
        list(Patient.objects.order_by("first_name"))
    assert set(caught.value.pseudonyms) == {links["Ada"], links["Grace"]}
    _assert_no_value(str(caught.value))
    # the unchanged row reads as written
    edsger = Patient.objects.get(id=docs["Edsger"].id)
    assert (edsger.first_name, edsger.email) == ("Edsger", "ew@example.org")


def test_unseal_row_refuses_a_row_holding_another_subjects_ciphertext(connected: Any) -> None:
    _, _, links = _stored(connected)
    before = _swap(connected, links["Ada"], links["Grace"])
    identity = connected["bound_patient__identity"]
    with pytest.raises(IntegrityError) as caught:
        unseal_row(connected, identity.find_one({"_id": links["Ada"]}))
    _assert_no_value(str(caught.value))
    assert unseal_row(connected, before[links["Ada"]])["first_name"] == "Ada"
    edsger = identity.find_one({"_id": links["Edsger"]})
    assert unseal_row(connected, edsger)["email"] == "ew@example.org"


def test_rows_swapped_back_read_again(connected: Any) -> None:
    Patient, docs, links = _stored(connected)
    _swap(connected, links["Ada"], links["Grace"])
    _swap(connected, links["Ada"], links["Grace"])
    assert [p.first_name for p in Patient.objects.order_by("first_name")] == [
        "Ada",
        "Edsger",
        "Grace",
    ]
    assert Patient.objects.get(id=docs["Grace"].id).email == "grace@example.org"
