"""Create, read, update by save, delete: the life of one document."""

from __future__ import annotations

import datetime
import json
from types import ModuleType
from typing import Any

from bson import json_util

from compat_suite.harness import raised, scenario
from compat_suite.mongoengine.models import Clinic, clinic, dt, seed_clinic
from compat_suite.mongoengine.observe import doc, docs, names, stored

JSON = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL)


@scenario(clinic)
def test_save_new_then_read_back(me: ModuleType, m: Clinic) -> dict[str, Any]:
    patient = m.Patient(
        first_name="Mary",
        last_name="Shelley",
        email="mary@example.org",
        phone="+44 9",
        date_of_birth=dt(1797, 8, 30),
        address=m.Address(street="Skinner St", city="London", postcode="N1"),
        insurance_number="INS-777",
        weight_kg=52,
        tags=["writer"],
        vitals={"bp": 110},
        medications=[m.Medication(name="laudanum", dose_mg=5)],
    )
    before = {"pk": patient.pk, "created": patient._created}
    returned = patient.save()
    loaded = m.Patient.objects.get(pk=patient.pk)
    return {
        "before": before,
        "save_returns_self": returned is patient,
        "after": {
            "pk": patient.pk,
            "created": patient._created,
            "changed": patient._changed_fields,
        },
        "loaded": doc(loaded),
        "loaded_fields": doc(loaded, "address", "medications", "vitals", "date_of_birth"),
        "raw": stored(m.Patient.objects.as_pymongo().get(pk=patient.pk)),
        "count": m.Patient.objects.count(),
    }


@scenario(clinic)
def test_save_existing_with_identity_and_clinical_changes(
    me: ModuleType, m: Clinic
) -> dict[str, Any]:
    patients = seed_clinic(m)
    ada = m.Patient.objects.get(email="ada@example.org")
    ada.last_name = "King"
    ada.email = "countess@example.org"
    ada.address.city = "Ockham"
    ada.weight_kg = 60
    ada.tags.append("math")
    ada.vitals["hr"] = 99
    ada.insurance_number = None
    changed = sorted(ada._get_changed_fields())
    delta = ada._delta()
    ada.save()
    reloaded = m.Patient.objects.get(pk=ada.pk)
    untouched = m.Patient.objects.get(pk=patients[1].pk)
    return {
        "changed_fields": changed,
        "delta": delta,
        "reloaded": doc(reloaded),
        "raw": stored(m.Patient.objects(pk=ada.pk).as_pymongo().first()),
        "by_new_email": names(m.Patient.objects(email="countess@example.org")),
        "by_old_email": names(m.Patient.objects(email="ada@example.org")),
        "untouched": doc(untouched),
    }


@scenario(clinic)
def test_save_twice_without_changes_and_force_insert(me: ModuleType, m: Clinic) -> dict[str, Any]:
    doctor = m.Doctor(first_name="Gregory", last_name="House", email="house@example.org").save()
    doctor.save()  # nothing changed: no write
    doctor.speciality = "dx"
    doctor.save()
    clone = m.Doctor(id=doctor.pk, first_name="Other", last_name="House", email="other@example.org")
    return {
        "doctors": docs(m.Doctor.objects.order_by("first_name")),
        "force_insert_same_pk": raised(lambda: clone.save(force_insert=True)),
        "save_same_pk_overwrites": doc(clone.save()),
        "after": docs(m.Doctor.objects),
    }


@scenario(clinic)
def test_queryset_insert_single_and_bulk(me: ModuleType, m: Clinic) -> dict[str, Any]:
    one = m.Doctor.objects.insert(
        m.Doctor(first_name="One", last_name="A", email="one@example.org", years=1)
    )
    many = m.Doctor.objects.insert(
        [
            m.Doctor(first_name="Two", last_name="B", email="two@example.org", years=2),
            m.Doctor(first_name="Three", last_name="C", email="three@example.org", years=3),
        ]
    )
    ids = m.Doctor.objects.insert(
        [m.Doctor(first_name="Four", last_name="D", email="four@example.org")], load_bulk=False
    )
    single_id = m.Doctor.objects.insert(
        m.Doctor(first_name="Five", last_name="E", email="five@example.org"), load_bulk=False
    )
    return {
        "one": doc(one),
        "one_created": one._created,
        "many": docs(many),
        "ids": ids,
        "single_id": single_id,
        "all": docs(m.Doctor.objects.order_by("years", "first_name")),
        "count": m.Doctor.objects.count(),
    }


@scenario(clinic)
def test_insert_refuses_saved_documents(me: ModuleType, m: Clinic) -> dict[str, Any]:
    saved = m.Doctor(first_name="Saved", last_name="A", email="saved@example.org").save()
    return {
        "insert_saved": raised(lambda: m.Doctor.objects.insert(saved)),
        "insert_not_a_document": raised(lambda: m.Doctor.objects.insert([saved, 3])),
        "count": m.Doctor.objects.count(),
        "names": names(m.Doctor.objects),
    }


@scenario(clinic)
def test_create_get_first_and_lookup_errors(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    created = m.Doctor.objects.create(
        first_name="Created", last_name="Z", email="created@example.org", years=4
    )
    return {
        "created": doc(created),
        "get_by_pii": doc(m.Patient.objects.get(email="grace@example.com"), "first_name"),
        "get_by_clinical": doc(m.Patient.objects.get(weight_kg=61), "first_name"),
        "get_by_mix": doc(
            m.Patient.objects.get(blood_type="A+", last_name="Hopper"), "first_name", "address"
        ),
        "first": doc(m.Patient.objects.order_by("last_name").first(), "last_name"),
        "first_of_nothing": m.Patient.objects(first_name="Nobody").first(),
        "does_not_exist": raised(lambda: m.Patient.objects.get(last_name="Nobody")),
        "does_not_exist_is_model_specific": _caught_by(
            lambda: m.Patient.objects.get(email="no@example.org"), m.Patient.DoesNotExist
        ),
        "multiple": raised(lambda: m.Patient.objects.get(blood_type="A+")),
        "multiple_on_pii": raised(
            lambda: m.Patient.objects.get(last_name__in=["Turing", "Hopper"])
        ),
        "multiple_is_model_specific": _caught_by(
            lambda: m.Patient.objects.get(weight_kg=70), m.Patient.MultipleObjectsReturned
        ),
        "get_or_nothing": raised(lambda: m.Doctor.objects.get(me.Q(years__gt=100))),
    }


def _caught_by(action: Any, exc_type: type[BaseException]) -> bool:
    try:
        action()
    except exc_type:
        return True
    return False


@scenario(clinic)
def test_reload_all_and_some_fields(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    ada = m.Patient.objects.get(first_name="Ada")
    m.Patient.objects(pk=ada.pk).update(set__last_name="Byron", set__weight_kg=64)
    stale = {"last_name": ada.last_name, "weight_kg": ada.weight_kg}
    ada.reload("last_name")
    partial = {"last_name": ada.last_name, "weight_kg": ada.weight_kg}
    ada.reload()
    full = doc(ada)
    m.Patient.objects(pk=ada.pk).delete()
    return {
        "stale": stale,
        "partial": partial,
        "full": full,
        "reload_deleted": raised(ada.reload),
    }


@scenario(clinic)
def test_delete_document_and_queryset(me: ModuleType, m: Clinic) -> dict[str, Any]:
    patients = seed_clinic(m)
    patients[0].delete()
    after_one = names(m.Patient.objects.order_by("first_name"))
    deleted_by_pii = m.Patient.objects(last_name__in=["Turing", "Hopper"]).delete()
    deleted_by_clinical = m.Patient.objects(weight_kg__gte=70).delete()
    deleted_nothing = m.Patient.objects(first_name="Nobody").delete()
    return {
        "after_one": after_one,
        "deleted_by_pii": deleted_by_pii,
        "deleted_by_clinical": deleted_by_clinical,
        "deleted_nothing": deleted_nothing,
        "left": docs(m.Patient.objects, "first_name", "email", "address"),
        "raw_count": m.Patient._get_collection().count_documents({}),
        "delete_unsaved": raised(m.Patient(first_name="X", last_name="Y").delete),
    }


@scenario(clinic)
def test_as_pymongo_to_json_and_to_mongo(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    query = m.Patient.objects(blood_type="A+").order_by("-date_of_birth")
    grace = query.first()
    return {
        "as_pymongo": [stored(raw) for raw in query.as_pymongo()],
        "queryset_to_json": json_util.loads(query.to_json(json_options=JSON)),
        "queryset_to_json_keys": [list(d) for d in json.loads(query.to_json(json_options=JSON))],
        "document_to_json": json_util.loads(grace.to_json(json_options=JSON)),
        "to_mongo": grace.to_mongo().to_dict(),
        "to_mongo_keys": list(grace.to_mongo()),
        "from_json": docs(m.Patient.objects.from_json(query.to_json(json_options=JSON))),
    }


@scenario(clinic)
def test_raw_collection_api_through_the_model(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    collection = m.Patient._get_collection()
    found = collection.find_one({"email": "alan@example.org"})
    return {
        "name": collection.name,
        "count_all": collection.count_documents({}),
        "count_pii_filter": collection.count_documents({"first_name": {"$in": ["Ada", "alan"]}}),
        "count_clinical_filter": collection.count_documents({"weight_kg": 70}),
        "estimated": collection.estimated_document_count(),
        "find_one": stored(found),
        "find_sorted": [
            d["last_name"] for d in collection.find({}, {"last_name": 1}).sort("last_name", -1)
        ],
        "distinct_pii": sorted(collection.distinct("address.city")),
        "distinct_clinical": sorted(collection.distinct("blood_type")),
    }


@scenario(clinic)
def test_datetime_precision_and_time_zones_round_trip(me: ModuleType, m: Clinic) -> dict[str, Any]:
    """BSON dates hold milliseconds in UTC; what comes back is what the server kept."""
    precise = datetime.datetime(1990, 5, 17, 13, 45, 30, 123456)
    aware = datetime.datetime(
        1990, 5, 17, 13, 45, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    patient = m.Patient(
        first_name="Tim",
        last_name="Stamp",
        date_of_birth=precise,
        admitted_at=aware,
    ).save()
    loaded = m.Patient.objects.get(pk=patient.pk)
    return {
        "in_memory_after_save": (patient.date_of_birth, patient.admitted_at),
        "loaded": (loaded.date_of_birth, loaded.admitted_at),
        "query_by_precise_value": m.Patient.objects(date_of_birth=precise).count(),
        "query_by_truncated_value": m.Patient.objects(
            date_of_birth=precise.replace(microsecond=123000)
        ).count(),
        "range_on_aware_value": m.Patient.objects(admitted_at__gte=aware).count(),
    }
