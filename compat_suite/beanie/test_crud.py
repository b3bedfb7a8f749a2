"""Create, read, replace, save, delete: the life of one Beanie document."""

from __future__ import annotations

import datetime
from types import ModuleType
from typing import Any

from beanie.operators import In

from compat_suite.beanie.harness import outcome, raised, scenario
from compat_suite.beanie.models import Clinic, clinic, dt, seed_clinic
from compat_suite.beanie.observe import doc, docs, names, stored
from compat_suite.requirements import requires


def _mary(m: Clinic) -> Any:
    return m.Patient(
        first_name="Mary",
        last_name="Shelley",
        email="mary@example.org",
        phone="+44 9",
        date_of_birth=dt(1797, 8, 30),
        address=m.Address(street="Skinner St", city="London", postcode="N1"),
        insurance_number="INS-777",
        aliases=["M. W. Godwin"],
        weight_kg=52,
        tags=["writer"],
        vitals={"bp": 110},
        medications=[m.Medication(name="laudanum", dose_mg=5)],
    )


@scenario(clinic)
async def test_insert_then_read_back(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    patient = _mary(m)
    before = patient.id
    returned = await patient.insert()
    by_get = await m.Patient.get(patient.id)
    by_email = await m.Patient.find_one(m.Patient.email == "mary@example.org")
    raw = await m.Patient.get_pymongo_collection().find_one({"_id": patient.id})
    return {
        "id_before": before,
        "insert_returns_self": returned is patient,
        "id_after": patient.id,
        "by_get": doc(by_get),
        "by_email": doc(by_email),
        "raw": stored(raw),
        "count": await m.Patient.count(),
        "create_alias": doc(
            await m.Doctor(first_name="Cre", last_name="Ate", email="c@example.org").create()
        ),
    }


@scenario(clinic)
async def test_save_new_then_existing(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    patient = _mary(m)
    await patient.save()  # no id yet: inserted
    patient.last_name = "Wollstonecraft"
    patient.email = "mws@example.org"
    patient.address.city = "Bath"  # type: ignore[union-attr]
    patient.weight_kg = 53
    patient.tags.append("novelist")
    patient.vitals["hr"] = 80
    patient.insurance_number = None
    await patient.save()  # has an id: replaced (upsert)
    reloaded = await m.Patient.get(patient.id)
    stale = await m.Patient.find_one(m.Patient.first_name == "Ada")
    await m.Patient.find_one(m.Patient.first_name == "Ada").update(
        {"$set": {"last_name": "Byron", "weight_kg": 64}}
    )
    before_sync = doc(stale, "last_name", "weight_kg")
    await stale.sync()
    return {
        "reloaded": doc(reloaded),
        # The key order of an upserted document is observed in test_upsert_key_order.
        "raw": stored(
            await m.Patient.get_pymongo_collection().find_one({"_id": patient.id}),
            key_order=False,
        ),
        "by_new_email": names(await m.Patient.find(m.Patient.email == "mws@example.org").to_list()),
        "by_old_email": await m.Patient.find(m.Patient.email == "mary@example.org").count(),
        "before_sync": before_sync,
        "after_sync": doc(stale, "last_name", "weight_kg", "email"),
        "count": await m.Patient.count(),
    }


@requires("update_field_order")
@scenario(clinic)
async def test_upsert_key_order(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    """The key order of a document ``save`` inserts through an upsert (``$set``)."""
    patient = _mary(m)
    await patient.save()
    raw = await m.Patient.get_pymongo_collection().find_one({"_id": patient.id})
    return {"raw": stored(raw)}


@scenario(clinic)
async def test_save_with_a_chosen_id(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    """``save`` of a document whose id is not stored yet upserts it with that id."""
    first = await m.Doctor(first_name="Gregory", last_name="House", email="h@example.org").insert()
    clone = m.Doctor(id=first.id, first_name="Other", last_name="House", email="o@example.org")
    saved = await clone.save()
    fresh = m.Doctor(id=odm.PydanticObjectId(), first_name="New", last_name="Id", email="n@x.org")
    await fresh.save()
    return {
        "save_same_id_overwrites": doc(saved),
        "insert_same_id": await raised(
            lambda: m.Doctor(id=first.id, first_name="T", last_name="w", email="t@x.org").insert()
        ),
        "all": docs(await m.Doctor.find_all().sort("+first_name").to_list()),
        "count": await m.Doctor.count(),
    }


@scenario(clinic)
async def test_replace(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    patients = await seed_clinic(m)
    grace = await m.Patient.find_one(m.Patient.first_name == "Grace")
    grace.email = "rear.admiral@example.com"
    grace.aliases = []
    grace.address = m.Address(city="Arlington")
    grace.weight_kg = 59
    await grace.replace()
    gone = patients[0]
    await m.Patient.find_one(m.Patient.id == gone.id).delete()
    return {
        "replaced": doc(await m.Patient.get(grace.id)),
        "raw": stored(await m.Patient.get_pymongo_collection().find_one({"_id": grace.id})),
        "replace_deleted": await raised(gone.replace),
        "replace_without_id": await raised(_mary(m).replace),
        "replace_many": await outcome(lambda: m.Patient.replace_many([grace])),
        "emails": sorted(await m.Patient.distinct("email")),
    }


@scenario(clinic)
async def test_document_set_inc_and_current_date(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    alan = await m.Patient.find_one(m.Patient.first_name == "alan")
    await alan.set({m.Patient.email: "turing@example.org", m.Patient.weight_kg: 71})
    in_memory_after_set = doc(alan, "email", "weight_kg")
    await alan.inc({m.Patient.weight_kg: 2, m.Patient.vitals["hr"]: 5})
    in_memory_after_inc = doc(alan, "weight_kg", "vitals")
    await alan.set({"address.city": "Manchester", "phone": None})
    await alan.current_date({m.Patient.admitted_at: True})
    loaded = await m.Patient.get(alan.id)
    return {
        "after_set": in_memory_after_set,
        "after_inc": in_memory_after_inc,
        "loaded": doc(loaded, "email", "weight_kg", "vitals", "address", "phone"),
        "current_date_is_recent": loaded.admitted_at > datetime.datetime(2025, 1, 1),
        "found_by_new_email": await m.Patient.find(m.Patient.email == "turing@example.org").count(),
    }


@scenario(clinic)
async def test_delete_document_and_queries(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    patients = await seed_clinic(m)
    first = await patients[0].delete()
    after_one = names(await m.Patient.find_all().sort("first_name").to_list())
    by_pii = await m.Patient.find(In(m.Patient.last_name, ["Turing", "Hopper"])).delete()
    by_clinical = await m.Patient.find(m.Patient.weight_kg >= 70).delete()
    nothing = await m.Patient.find(m.Patient.first_name == "Nobody").delete()
    left = await m.Patient.find_all().to_list()
    unsaved = await raised(_mary(m).delete)
    return {
        "delete_document": first.deleted_count if first else first,
        "after_one": after_one,
        "deleted_by_pii": by_pii.deleted_count,
        "deleted_by_clinical": by_clinical.deleted_count,
        "deleted_nothing": nothing.deleted_count,
        "left": docs(left, "first_name", "email", "address"),
        "raw_count": await m.Patient.get_pymongo_collection().count_documents({}),
        "delete_unsaved": unsaved,
        "delete_all": (await m.Patient.delete_all()).deleted_count,
        "count_after_delete_all": await m.Patient.count(),
    }


@scenario(clinic)
async def test_insert_many_and_insert_one(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    doctors = [
        m.Doctor(first_name=f"D{i}", last_name="Oc", email=f"d{i}@example.org", years=i)
        for i in range(4)
    ]
    result = await m.Doctor.insert_many(doctors)
    one = await m.Doctor.insert_one(
        m.Doctor(first_name="Single", last_name="One", email="single@example.org")
    )
    wrong_class = await raised(
        lambda: m.Doctor.insert_one(m.Patient(first_name="x", last_name="y", email="x@y.org"))
    )
    return {
        "inserted_ids": result.inserted_ids,
        "acknowledged": result.acknowledged,
        "ids_not_set_on_documents": [d.id for d in doctors],
        "one": doc(one),
        "wrong_class": wrong_class,
        "all": docs(await m.Doctor.find_all().sort(-m.Doctor.years).to_list()),
        "count": await m.Doctor.count(),
    }


@scenario(clinic)
async def test_get_find_one_and_missing(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    patients = await seed_clinic(m)
    ids = [p.id for p in patients]
    return {
        "get": doc(await m.Patient.get(ids[2]), "first_name", "address"),
        "get_missing": await m.Patient.get(odm.PydanticObjectId()),
        "get_by_string_id": doc(await m.Patient.get(str(ids[1])), "first_name"),
        "find_one_pii": doc(
            await m.Patient.find_one(m.Patient.email == "grace@example.com"), "first_name"
        ),
        "find_one_clinical": doc(await m.Patient.find_one(m.Patient.weight_kg == 61), "email"),
        "find_one_mixed": doc(
            await m.Patient.find_one(m.Patient.blood_type == "A+", m.Patient.last_name == "Hopper"),
            "first_name",
            "address",
        ),
        "find_one_dict_filter": doc(
            await m.Patient.find_one({"address.city": "Rotterdam"}), "first_name"
        ),
        "find_one_nothing": await m.Patient.find_one(m.Patient.first_name == "Nobody"),
        "find_one_sorted": doc(
            await m.Patient.find_one(m.Patient.blood_type == "A+", sort=[("last_name", -1)]),
            "first_name",
        ),
        "first_or_none": doc(
            await m.Patient.find(m.Patient.weight_kg == 70).sort("-first_name").first_or_none(),
            "first_name",
        ),
    }


@scenario(clinic)
async def test_raw_collection_api_through_the_model(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    collection = m.Patient.get_pymongo_collection()
    found = await collection.find_one({"email": "alan@example.org"})
    return {
        "name": collection.name,
        "count_all": await collection.count_documents({}),
        "count_pii": await collection.count_documents({"first_name": {"$in": ["Ada", "alan"]}}),
        "count_clinical": await collection.count_documents({"weight_kg": 70}),
        "estimated": await collection.estimated_document_count(),
        "find_one": stored(found),
        "find_sorted": [
            d["last_name"]
            for d in await collection.find({}, {"last_name": 1}).sort("last_name", -1).to_list()
        ],
        "distinct_pii": sorted(await collection.distinct("address.city")),
        "distinct_clinical": sorted(await collection.distinct("blood_type")),
        "collection_names": sorted(
            await m.Patient.get_pymongo_collection().database.list_collection_names()
        ),
    }


@scenario(clinic)
async def test_datetime_precision_round_trip(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    """BSON dates hold milliseconds; what comes back is what the server kept."""
    precise = datetime.datetime(1990, 5, 17, 13, 45, 30, 123456)
    # admitted_at (clinical) differs from date_of_birth (identity): the raw-storage scan after
    # the run reports any identity value that also stands in clinical data.
    admitted = precise + datetime.timedelta(days=1)
    patient = await m.Patient(
        first_name="Tim", last_name="Stamp", email="tim@example.org", date_of_birth=precise,
        admitted_at=admitted,
    ).insert()  # fmt: skip
    loaded = await m.Patient.get(patient.id)
    return {
        "in_memory_after_insert": (patient.date_of_birth, patient.admitted_at),
        "loaded": (loaded.date_of_birth, loaded.admitted_at),
        "query_by_precise_value": await m.Patient.find(m.Patient.date_of_birth == precise).count(),
        "query_by_truncated_value": await m.Patient.find(
            m.Patient.date_of_birth == precise.replace(microsecond=123000)
        ).count(),
    }
