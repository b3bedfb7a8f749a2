"""Privacy-specific behaviour: bounded in-process work, refused operations, no values in errors."""

from __future__ import annotations

import logging
import re
from typing import Any

import mongoengine as me
import pymongo
import pytest

from privata_mongo import ConfigurationError, UnsupportedQuery
from privata_mongo.encryption import unseal_row


def _patient(**extra_meta: Any) -> Any:
    class LimitPatient(me.Document):
        first_name = me.StringField()
        email = me.StringField(unique=True)
        ward = me.StringField()
        age = me.IntField()
        meta = {"collection": "limit_patient", **extra_meta}

    return LimitPatient


def test_scan_limit_names_field_and_remedy(connected: Any) -> None:
    Patient = _patient(privacy={"scan_limit": 5})
    Patient.objects.insert(
        [
            Patient(first_name=f"N{i}", email=f"n{i}@x.org", ward="A" if i < 3 else "B")
            for i in range(8)
        ]
    )
    with pytest.raises(UnsupportedQuery) as caught:
        list(Patient.objects(first_name__startswith="N"))
    message = str(caught.value)
    assert caught.value.field == "first_name"
    assert "more than 5 documents" in message
    assert "scan_limit" in message
    # narrowed by a clinical condition, the same predicate reads only 3 identity rows
    assert [p.first_name for p in Patient.objects(ward="A", first_name__startswith="N")] == [
        "N0",
        "N1",
        "N2",
    ]
    # equality on a searchable field is answered by the server (blind index): no scan, no limit
    assert Patient.objects(email="n7@x.org").count() == 1
    # equality on an encrypted, non-searchable field is evaluated in the process, bounded
    with pytest.raises(UnsupportedQuery):
        Patient.objects(first_name="N7").count()
    with pytest.raises(UnsupportedQuery, match="sort"):
        list(Patient.objects.order_by("first_name"))


def test_pipeline_reading_identity_fields_is_pushed_down_or_bounded(connected: Any) -> None:
    Patient = _patient(privacy={"scan_limit": 3})
    for name, age in (("Ada", 3), ("Ada", 4), ("Bob", 5)):
        Patient(first_name=name, email=f"{name}{age}@x.org", age=age).save()
    by_name = [{"$group": {"_id": "$first_name", "n": {"$sum": "$age"}}}, {"$sort": {"_id": 1}}]
    assert list(Patient.objects.aggregate(by_name)) == [
        {"_id": "Ada", "n": 7},
        {"_id": "Bob", "n": 5},
    ]
    # a stage the process cannot run, after identity fields are read
    with pytest.raises(UnsupportedQuery, match=r"cannot run \$bucketAuto"):
        list(Patient.objects.aggregate([{"$bucketAuto": {"groupBy": "$first_name", "buckets": 2}}]))
    Patient(first_name="Cy", email="cy@x.org", age=6).save()
    # a group on an identity field is merged from partial groups: the scan limit does not apply
    assert list(Patient.objects.aggregate(by_name)) == [
        {"_id": "Ada", "n": 7},
        {"_id": "Bob", "n": 5},
        {"_id": "Cy", "n": 6},
    ]
    # a sort over values computed in the process still holds the documents: bounded
    computed = [
        {"$project": {"name": {"$cond": [True, "$first_name", None]}}},
        {"$sort": {"name": 1}},
    ]
    with pytest.raises(UnsupportedQuery, match="more than 3 documents"):
        list(Patient.objects.aggregate(computed))
    # clinical conditions first keep it within bounds
    narrowed = [{"$match": {"age": {"$gte": 5}}}, *computed]
    assert [row["name"] for row in Patient.objects.aggregate(narrowed)] == ["Bob", "Cy"]


def test_lookup_into_a_split_collection_joins_identity_fields(connected: Any) -> None:
    Patient = _patient()

    class LimitVisit(me.Document):
        patient = me.ReferenceField(Patient)
        reason = me.StringField()
        meta = {"collection": "limit_visit"}

    ada = Patient(first_name="Ada", email="ada@x.org", ward="A").save()
    LimitVisit(patient=ada, reason="check-up").save()
    LimitVisit(patient=None, reason="walk-in").save()
    lookup = {
        "$lookup": {
            "from": "limit_patient",
            "localField": "patient",
            "foreignField": "_id",
            "as": "p",
        }
    }
    rows = list(LimitVisit.objects.order_by("reason").aggregate([lookup]))
    assert [(r["reason"], [p.get("first_name") for p in r["p"]]) for r in rows] == [
        ("check-up", ["Ada"]),
        ("walk-in", []),
    ]
    assert "_pseudonym" not in rows[0]["p"][0]
    graph = {
        "$graphLookup": {
            "from": "limit_patient",
            "startWith": "$patient",
            "connectFromField": "_id",
            "connectToField": "_id",
            "as": "g",
        }
    }
    with pytest.raises(UnsupportedQuery, match=r"\$graphLookup into a split collection"):
        list(LimitVisit.objects.aggregate([graph]))


def test_mixed_index_is_refused_at_declaration(connected: Any) -> None:
    class MixedIndex(me.Document):
        email = me.StringField(unique_with="ward")
        ward = me.StringField()

    with pytest.raises(
        ConfigurationError, match=r"\['email'\] \(identity\) together with \['ward'\]"
    ):
        MixedIndex(email="a@x.org", ward="A").save()


def test_bulk_write_error_details_carry_no_identity_values(connected: Any) -> None:
    Patient = _patient()
    Patient.ensure_indexes()
    collection = Patient._get_collection()
    collection.insert_one({"first_name": "Ada", "email": "ada@x.org", "ward": "A"})
    with pytest.raises(pymongo.errors.BulkWriteError) as caught:
        collection.insert_many(
            [{"first_name": "Eve", "email": "ada@x.org", "ward": "B"}, {"first_name": "Bob"}]
        )
    (error,) = caught.value.details["writeErrors"]
    assert error["code"] == 11000
    assert error["op"]["ward"] == "B"
    assert "email" not in error["op"]
    assert "first_name" not in error["op"]
    assert "ada@x.org" not in str(caught.value.details)
    assert "Eve" not in str(caught.value.details)


def test_dynamic_identity_fields_are_split(connected: Any) -> None:
    class Intake(me.DynamicDocument):
        ward = me.StringField()

    Intake(ward="A", email="dyn@x.org", phone_number="+1 555", note="n").save()
    (clinical,) = list(connected["intake"].find())
    (identity,) = list(connected["intake__identity"].find())
    assert {"ward", "note"} <= set(clinical)
    assert "email" not in clinical
    assert "phone_number" not in clinical
    assert "email" not in identity
    assert unseal_row(connected, identity)["email"] == "dyn@x.org"
    assert Intake.objects.get(email="dyn@x.org").phone_number == "+1 555"


def test_cached_reference_copies_of_identity_fields_are_split(connected: Any) -> None:
    Patient = _patient()

    class Booking(me.Document):
        patient = me.CachedReferenceField(Patient, fields=["first_name", "ward"])
        slot = me.IntField()

    Booking(patient=Patient(first_name="Ada", ward="A").save(), slot=3).save()
    (clinical,) = list(connected["booking"].find())
    assert set(clinical) == {"_id", "slot", "_pseudonym"}
    assert Booking.objects.get(slot=3).patient.first_name == "Ada"


def test_no_identity_value_reaches_logs_or_messages(
    connected: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    Patient = _patient(privacy={"scan_limit": 2})
    Patient.ensure_indexes()
    secrets = ["Zelda Secret", "zelda@secret.example"]
    Patient(first_name=secrets[0], email=secrets[1], ward="A").save()
    Patient(first_name="Other", email="o@x.org").save()
    Patient(first_name="Third", email="t@x.org").save()
    assert [p.email for p in Patient.objects(ward="A", first_name__icontains="zel")] == [secrets[1]]
    messages = []
    for action in (
        lambda: Patient(first_name="X", email=secrets[1]).save(),
        lambda: Patient.objects(email=secrets[1]).update(set__email="o@x.org"),
        lambda: list(Patient.objects(first_name__icontains="zel")),
        lambda: list(Patient.objects(first_name=re.compile("^Z"), email={"$bad": 1})),
    ):
        with pytest.raises(Exception) as caught:  # noqa: PT011 - each raises its own native type
            action()
        messages.append(f"{type(caught.value).__name__}: {caught.value}")
    # pymongo's own DEBUG command log is the application's to enable (and carries only
    # ciphertext once identity values are encrypted); privata's loggers must carry no value.
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("privata_mongo")]
    text = "\n".join(messages + ours)
    assert len(messages) == 4
    assert any("in-process condition on first_name" in line for line in ours)
    for secret in secrets:
        assert secret not in text
        assert secret.lower() not in text.lower()


def test_update_one_and_replace_one_honour_sort(connected: Any) -> None:
    Patient = _patient()
    for name, age in (("Cy", 1), ("Ada", 2), ("Bob", 3)):
        Patient(first_name=name, email=f"{name}@x.org", age=age).save()
    collection = Patient._get_collection()
    collection.update_one({}, {"$set": {"ward": "first by name"}}, sort=[("first_name", 1)])
    collection.update_one({}, {"$inc": {"age": 10}}, sort=[("age", -1)])
    collection.replace_one({}, {"first_name": "Zed", "age": 0}, sort=[("first_name", -1)])
    rows = sorted((p.first_name, p.age, p.ward) for p in Patient.objects)
    assert rows == [("Ada", 2, "first by name"), ("Bob", 13, None), ("Zed", 0, None)]


def test_projection_operators_on_identity_lists_follow_mongodb(connected: Any) -> None:
    """``$slice``/``$elemMatch`` on an encrypted identity list are applied after decryption.

    Neither test backend is a reference here (mongomock treats ``$slice`` alone as an inclusion,
    FerretDB v1.24 implements neither operator), so the expectations are MongoDB's documented
    results; the operators never reach the server, the clinical side is projected natively.
    """

    class SlicePatient(me.Document):
        first_name = me.StringField()
        aliases = me.ListField(me.StringField(), pii=True)
        ward = me.StringField()
        meta = {"collection": "slice_patient"}

    SlicePatient(first_name="Ada", aliases=["Countess", "Enchantress", "A. K."], ward="B").save()
    (alone,) = SlicePatient.objects.fields(slice__aliases=-1).as_pymongo()
    assert {k: v for k, v in alone.items() if k != "_id"} == {
        "first_name": "Ada",
        "aliases": ["A. K."],
        "ward": "B",
    }
    raw = SlicePatient._get_collection()
    (mixed,) = raw.find({}, {"_id": 0, "ward": 1, "aliases": {"$slice": [1, 1]}})
    assert mixed == {"ward": "B", "aliases": ["Enchantress"]}
    (matched,) = raw.find({}, {"_id": 0, "aliases": {"$elemMatch": {"$regex": "^E"}}})
    assert matched == {"aliases": ["Enchantress"]}
    with pytest.raises(pymongo.errors.OperationFailure) as caught:
        raw.find_one({}, {"aliases": {"$slice": [1, 0]}})
    assert caught.value.code == 28724
