"""``explain()`` names the HIPAA Safe Harbor rule that made each field identity data."""

from __future__ import annotations

import datetime
from typing import Any

import mongoengine as me

import privata_mongo.beanie as pb
from privata_mongo import explain


def test_explain_names_the_safe_harbor_rule_of_a_mongoengine_model() -> None:
    class HarborPatient(me.Document):
        name = me.StringField()
        zip_code = me.StringField()
        home_phone = me.StringField()
        ip_address = me.StringField()
        mrn = me.StringField()
        created_at = me.DateTimeField()
        diagnosis = me.StringField()
        meta = {"collection": "harbor_patient"}

    class HarborDrug(me.Document):
        name = me.StringField()
        meta = {"collection": "harbor_drug"}

    explained = explain(HarborPatient)
    letters = {d.attribute: d.safe_harbor for d in explained.decisions}
    assert letters == {
        "id": None,
        "name": "A",
        "zip_code": "B",
        "home_phone": "D",
        "ip_address": "O",
        "mrn": "H",
        "created_at": None,
        "diagnosis": None,
    }
    assert explained.identity_fields == ("name", "zip_code", "home_phone", "ip_address", "mrn")
    assert set(explained.searchable) == {"home_phone", "ip_address", "mrn"}
    text = str(explained)
    assert "zip_code: identity — name default" in text
    assert "HIPAA Safe Harbor 164.514(b)(2)(i)(B) geographic subdivisions" in text
    assert explain(HarborDrug).identity_fields == ()


def test_explain_names_the_safe_harbor_rule_of_a_beanie_model() -> None:
    class HarborMember(pb.Document):
        full_name: str
        postal_code: str
        mobile: str
        birth_date: datetime.datetime
        updated_at: datetime.datetime
        plan: str

        class Settings:
            name = "harbor_member"

    explained: Any = explain(HarborMember)
    letters = {d.attribute: d.safe_harbor for d in explained.decisions if d.identity}
    assert letters == {"full_name": "A", "postal_code": "B", "mobile": "D", "birth_date": "C"}
    assert "dates (except year) directly related to an individual" in str(explained)
