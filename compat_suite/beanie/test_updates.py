"""Query-level updates and deletes, upserts, update_all/delete_all, and BulkWriter."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from beanie import Document as ModelDocument
from beanie.operators import (
    AddToSet,
    CurrentDate,
    In,
    Inc,
    Max,
    Min,
    Mul,
    Pop,
    Pull,
    Push,
    Set,
    SetOnInsert,
    Unset,
)
from pymongo import DeleteOne, InsertOne, UpdateOne

from compat_suite.beanie.harness import outcome, scenario
from compat_suite.beanie.models import Clinic, clinic, dt, seed_clinic
from compat_suite.beanie.observe import doc, docs, names
from compat_suite.requirements import requires


def _result(result: Any) -> dict[str, Any] | None:
    """What an update result says (``None`` stays ``None``; an upsert that inserted returns the
    inserted document)."""
    if result is None or isinstance(result, ModelDocument):
        return doc(result)
    return {
        "matched": result.matched_count,
        "modified": result.modified_count,
        "upserted_id": result.upserted_id,
    }


async def _all(m: Clinic, *fields: str) -> list[Any]:
    return docs(await m.Patient.find_all().sort("+admitted_at").to_list(), *fields)


@scenario(clinic)
async def test_find_update_with_operators(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    observed: dict[str, Any] = {
        "set_identity_by_identity": _result(
            await p.find(p.first_name == "Ada").update(Set({p.last_name: "King"}))
        ),
        "set_identity_and_clinical_by_clinical": _result(
            await p.find(p.blood_type == "A+").update(
                Set({p.phone: "+0 0", p.weight_kg: 60, "address.city": "Paris"})
            )
        ),
        "inc_by_identity_in": _result(
            await p.find(In(p.email, ["alan@example.org", "edsger@example.nl"])).update(
                Inc({p.weight_kg: 1, "vitals.hr": 10})
            )
        ),
        "max_min": _result(
            await p.find(p.last_name == "Liskov").update(
                Max({"vitals.bp": 200}), Min({"vitals.hr": 1})
            )
        ),
        "push_pull_add_to_set": _result(
            await p.find(p.tags == "cardio").update(
                Push({p.tags: "followup"}),
                AddToSet({p.scores: 7}),
                Pull({p.aliases: "Amazing Grace"}),
            )
        ),
        "pop_identity_list": _result(
            await p.find(p.first_name == "Grace").update(Pop({p.aliases: 1}))
        ),
        "unset_identity": _result(
            await p.find(p.first_name == "Barbara").update(
                Unset({p.phone: 1, p.insurance_number: 1})
            )
        ),
        "raw_dict_update": _result(
            await p.find({"address.city": "Rotterdam"}).update(
                {"$set": {"email": "ewd@example.nl", "blood_type": "O+"}}
            )
        ),
        "update_nothing": _result(
            await p.find(p.first_name == "Nobody").update(Set({p.weight_kg: 1}))
        ),
        "find_one_update": _result(
            await p.find_one(p.blood_type == "A+").update(Set({p.tags: ["first"]}))
        ),
    }
    observed["after"] = await _all(m)
    observed["by_new_identity"] = names(await p.find(p.email == "ewd@example.nl").to_list())
    return observed


@requires("mul_update")
@scenario(clinic)
async def test_mul_update(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    return {
        "mul_by_identity": _result(
            await p.find(p.last_name == "Liskov").update(Mul({p.weight_kg: 2, "vitals.hr": 3}))
        ),
        "after": await _all(m, "first_name", "weight_kg", "vitals"),
    }


@scenario(clinic)
async def test_find_one_update_returning_documents(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    new = odm.UpdateResponse.NEW_DOCUMENT
    old = odm.UpdateResponse.OLD_DOCUMENT
    return {
        "new_document": doc(
            await p.find_one(p.email == "grace@example.com").update(
                Set({p.email: "hopper@example.com", p.weight_kg: 59}), response_type=new
            )
        ),
        "old_document": doc(
            await p.find_one(p.weight_kg == 61).update(
                Set({p.first_name: "Augusta"}), response_type=old
            )
        ),
        "new_document_none": await p.find_one(p.first_name == "Nobody").update(
            Set({p.weight_kg: 1}), response_type=new
        ),
        "update_one_sorted_by": doc(
            await p.find_one(p.weight_kg == 70).update(Inc({p.weight_kg: 1}), response_type=new),
            "first_name",
            "weight_kg",
        ),
        "after": names(await p.find_all().sort("+admitted_at").to_list()),
    }


@scenario(clinic)
async def test_upserts(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient

    def newcomer(first: str, email: str) -> Any:
        return m.Patient(first_name=first, last_name="New", email=email, weight_kg=80)

    observed = {
        "upsert_existing": _result(
            await p.find_one(p.email == "ada@example.org").upsert(
                Inc({p.weight_kg: 1}), on_insert=newcomer("Never", "never@example.org")
            )
        ),
        "upsert_missing": _result(
            await p.find_one(p.email == "newbie@example.org").upsert(
                Inc({p.weight_kg: 1}), on_insert=newcomer("Newbie", "newbie@example.org")
            )
        ),
        "upsert_missing_new_document": doc(
            await p.find_one(p.email == "fresh@example.org").upsert(
                Set({p.blood_type: "O+"}),
                on_insert=newcomer("Fresh", "fresh@example.org"),
                response_type=odm.UpdateResponse.NEW_DOCUMENT,
            ),
            "first_name",
            "email",
            "blood_type",
            "weight_kg",
        ),
        "set_on_insert_with_raw_upsert": _result(
            await p.find(p.email == "raw@example.org").update(
                Set({p.weight_kg: 5}),
                SetOnInsert({p.first_name: "Raw", p.last_name: "Upsert"}),
                upsert=True,
            )
        ),
        "current_date": _result(
            await p.find(p.email == "raw@example.org").update(CurrentDate({p.admitted_at: True}))
        ),
    }
    observed["after"] = docs(
        await p.find(In(p.last_name, ["New", "Upsert"])).sort("+first_name").to_list(),
        "first_name",
        "last_name",
        "email",
        "weight_kg",
        "blood_type",
    )
    observed["ada_weight"] = (await p.find_one(p.email == "ada@example.org")).weight_kg
    observed["count"] = await p.count()
    return observed


@scenario(clinic)
async def test_update_all_and_delete_all(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    observed = {
        "update_all_clinical": _result(await p.update_all(Inc({p.weight_kg: 1}))),
        "update_all_identity": _result(await p.update_all(Set({p.phone: "+9"}))),
        "find_all_update": _result(await p.find_all().update(Push({p.tags: "audited"}))),
    }
    observed["after_updates"] = await _all(m, "first_name", "phone", "weight_kg", "tags")
    observed["delete_by_identity"] = (
        await p.find(In(p.first_name, ["Ada", "Grace"])).delete()
    ).deleted_count
    observed["delete_one_by_identity"] = (
        await p.find_one(p.last_name == "Turing").delete()
    ).deleted_count
    observed["left"] = names(await p.find_all().sort("+first_name").to_list())
    observed["delete_all"] = (await p.delete_all()).deleted_count
    observed["doctors_left"] = await m.Doctor.count()
    observed["count"] = await p.count()
    return observed


@scenario(clinic)
async def test_bulk_writer(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    """Inserts, updates and replaces queued by Beanie, one ``bulk_write`` on commit."""
    await seed_clinic(m)
    p = m.Patient
    async with odm.BulkWriter(ordered=True) as writer:
        await p.insert_one(
            m.Patient(first_name="Bulk", last_name="One", email="bulk1@example.org", weight_kg=1),
            bulk_writer=writer,
        )
        await p.find_one(p.email == "ada@example.org").update(
            Set({p.last_name: "Bulked", p.weight_kg: 99}), bulk_writer=writer
        )
        await p.find(p.blood_type == "A+").update(Inc({"vitals.bp": 1}), bulk_writer=writer)
    ada = await p.find_one(p.email == "ada@example.org")
    ada.phone = "+7"
    grace = await p.find_one(p.first_name == "Grace")
    grace.email = "g.hopper@example.com"
    replaced = await outcome(lambda: p.replace_many([ada, grace]))
    writer = p.bulk_writer(ordered=False)
    writer.add_operation(
        p, InsertOne({"first_name": "Raw", "last_name": "Op", "email": "rawop@example.org"})
    )
    writer.add_operation(p, UpdateOne({"email": "barbara@example.com"}, {"$set": {"weight_kg": 1}}))
    result = await writer.commit()
    return {
        "after_context": names(await p.find_all().sort("+email").to_list()),
        "replace_many": replaced,
        "raw_ops_result": {
            "inserted": result.inserted_count,
            "matched": result.matched_count,
            "modified": result.modified_count,
        },
        "after": await _all(m, "first_name", "last_name", "email", "phone", "weight_kg", "vitals"),
        "empty_commit": await odm.BulkWriter().commit(),
    }


@requires("bulk_delete_options")
@scenario(clinic)
async def test_bulk_writer_deletes(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    async with p.bulk_writer() as writer:
        await p.find_one(p.first_name == "alan").delete(bulk_writer=writer)
        await p.find(p.weight_kg < 60).delete(bulk_writer=writer)
        await p.find_one(p.email == "ada@example.org").update(
            Inc({p.weight_kg: 1}), bulk_writer=writer
        )
    writer = p.bulk_writer(ordered=False)
    writer.add_operation(p, DeleteOne({"last_name": "Dijkstra"}))
    result = await writer.commit()
    return {
        "raw_delete": result.deleted_count,
        "after": await _all(m, "first_name", "email", "weight_kg"),
        "old_dates_left": await p.find(p.date_of_birth < dt(1900, 1, 1)).count(),
    }
