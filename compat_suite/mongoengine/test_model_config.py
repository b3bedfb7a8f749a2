"""Model configurations a name default or another model must never break.

A user table keyed by its e-mail address is common: the name default (``email``) would make
the primary key identity data, which the layout cannot store apart from the document. Such a
key stays clinical, as native. And a model whose privacy declaration is invalid (here, an
explicit ``pii=True`` on a primary key) raises only when it is itself used: other models, and
listing the database's collections, work as natively.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from compat_suite.harness import scenario


@dataclass(frozen=True)
class Accounts:
    """A user table keyed by e-mail, a split model, and a model with an invalid declaration."""

    Account: Any
    Patient: Any
    Misdeclared: Any


def accounts(me: ModuleType) -> Accounts:
    class Account(me.Document):
        email = me.EmailField(primary_key=True)
        display = me.StringField()
        logins = me.IntField(default=0)

    class Patient(me.Document):
        first_name = me.StringField(required=True)
        account = me.ReferenceField(Account)
        weight_kg = me.FloatField()

    class Misdeclared(me.Document):
        code = me.StringField(primary_key=True, pii=True)
        note = me.StringField()

    return Accounts(Account, Patient, Misdeclared)


def _raw(document_class: Any) -> Any:
    """The storage behind a model's database (the real database, under the wrapper too)."""
    database = document_class._get_db()
    # A native database answers any attribute with a collection: ask the type.
    return database.inner if hasattr(type(database), "inner") else database


@scenario(accounts)
def test_a_primary_key_named_email_is_stored_as_native(me: ModuleType, m: Accounts) -> Any:
    ada = m.Account(email="ada.lovelace@example.org", display="Ada").save()
    m.Account(email="grace.hopper@example.org", display="Grace", logins=3).save()
    m.Patient(first_name="Ada", account=ada, weight_kg=61.5).save()
    m.Account.objects(email="grace.hopper@example.org").update_one(inc__logins=1)
    raw = _raw(m.Account)["account"].find_one({"_id": "ada.lovelace@example.org"})
    patient = m.Patient.objects.get(first_name="Ada")
    return {
        "ids": [a.pk for a in m.Account.objects.order_by("email")],
        "by_pk": m.Account.objects.get(pk="grace.hopper@example.org").logins,
        "filtered": [
            a.display for a in m.Account.objects(email__in=["ada.lovelace@example.org", "x@y.z"])
        ],
        "stored_keys": list(raw),
        "reference": patient.account.email,
        "referenced_raw": _raw(m.Patient)["patient"].count_documents({"account": ada.pk}),
    }


@scenario(accounts)
def test_a_misdeclared_model_does_not_break_other_models(me: ModuleType, m: Accounts) -> Any:
    _raw(m.Misdeclared).create_collection("misdeclared")
    _raw(m.Misdeclared)["misdeclared"].insert_one({"_id": "x1", "note": "stored natively"})
    m.Patient(first_name="Grace", weight_kg=70.0).save()
    m.Patient(first_name="Alan", weight_kg=80.0).save()
    names = sorted(m.Patient._get_db().list_collection_names())
    return {
        "collections": [n for n in names if n in {"misdeclared", "patient", "account"}],
        "patients": sorted(p.first_name for p in m.Patient.objects),
        "heaviest": m.Patient.objects.order_by("-weight_kg").first().first_name,
        "aggregated": [
            d["n"]
            for d in m.Patient.objects.aggregate([{"$group": {"_id": None, "n": {"$sum": 1}}}])
        ],
        "deleted": m.Patient.objects(first_name="Alan").delete(),
    }
