"""Errors: the same exception types (messages are not observed: the wrapper redacts identity
values from them, docs/differences.md row 1), the same failing fields, the same data left."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from beanie.operators import Set
from pydantic import ValidationError

from compat_suite.beanie.harness import raised, scenario
from compat_suite.beanie.models import Clinic, Tracking, clinic, seed_clinic, tracking
from compat_suite.beanie.observe import doc, names, validation


async def _caught(action: Any) -> dict[str, Any] | None:
    try:
        await action()
    except Exception as exc:
        return validation(exc)
    return None


def _constructed(factory: Any) -> dict[str, Any] | None:
    try:
        factory()
    except ValidationError as exc:
        return validation(exc)
    return None


@scenario(clinic)
async def test_duplicate_key_on_unique_identity_field(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient

    def twin(email: str, first: str = "Twin") -> Any:
        return p(first_name=first, last_name="Dup", email=email)

    grace = await p.find_one(p.first_name == "Grace")
    grace.email = "ada@example.org"
    observed = {
        "insert": await raised(twin("ada@example.org").insert),
        "other_case_is_unique": (await twin("ADA@example.org", "Upper").insert()).email,
        "insert_one": await raised(lambda: p.insert_one(twin("grace@example.com"))),
        "insert_many": await raised(
            lambda: p.insert_many(
                [
                    twin("bulk1@example.org", "B1"),
                    twin("alan@example.org", "B2"),
                    twin("bulk3@example.org", "B3"),
                ]
            )
        ),
        "replace_to_duplicate": await raised(grace.replace),
        "save_new_duplicate": await raised(twin("edsger@example.nl").save),
        "doctor_unique_too": await raised(
            m.Doctor(first_name="G", last_name="H", email="house@example.org").insert
        ),
    }
    observed["left_behind"] = sorted(names(await p.find_all().to_list()))
    observed["emails"] = sorted(await p.distinct("email"))
    return observed


@scenario(clinic)
async def test_duplicate_key_on_update(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    alan = await p.find_one(p.first_name == "alan")
    return {
        "query_update": await raised(
            lambda: p.find(p.first_name == "alan").update(Set({p.email: "ada@example.org"}))
        ),
        "document_set": await raised(lambda: alan.set({p.email: "grace@example.com"})),
        "save_existing": await raised(_set_and_save(alan, "barbara@example.com")),
        "emails": sorted(await p.distinct("email")),
    }


def _set_and_save(document: Any, email: str) -> Any:
    async def run() -> Any:
        document.email = email
        return await document.save()

    return run


@scenario(clinic)
async def test_validation_errors(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    """pydantic validates in the process: the same failing fields and error types."""
    await seed_clinic(m)
    p = m.Patient
    ada = await p.find_one(p.first_name == "Ada")
    ada.weight_kg = "heavy"  # assignment is not validated; saving is (validate_on_save off)
    return {
        "missing_required_identity": _constructed(lambda: p(last_name="X", email="x@y.org")),
        "too_long_identity": _constructed(
            lambda: p(first_name="x" * 41, last_name="B", email="b@y.org")
        ),
        "wrong_type_clinical": _constructed(
            lambda: p(first_name="A", last_name="B", email="c@y.org", weight_kg="heavy")
        ),
        "bad_embedded": _constructed(
            lambda: p(first_name="A", last_name="B", email="d@y.org", medications=[{"dose_mg": 1}])
        ),
        "bad_date_of_birth": _constructed(
            lambda: p(first_name="A", last_name="B", email="e@y.org", date_of_birth="not a date")
        ),
        "model_validate_raw": _constructed(
            lambda: p.model_validate({"_id": "nope", "first_name": "A", "last_name": "B"})
        ),
        "save_unvalidated_assignment": await _caught(ada.save),
        "load_after_bad_save": await _caught(lambda: p.find_one(p.first_name == "Ada")),
        "raw_after_bad_save": (
            await p.get_pymongo_collection().find_one({"email": "ada@example.org"})
        )["weight_kg"],
        "count": await p.count(),
    }


@scenario(tracking)
async def test_document_not_found_and_revision_errors(
    odm: ModuleType, m: Tracking
) -> dict[str, Any]:
    t = m.Tracked
    r = m.Revised
    gone = await t(first_name="Gone", email="gone@example.org").insert()
    await t.find_one(t.id == gone.id).delete()
    stale = await r(first_name="Rev", email="rev@example.org").insert()
    other = await r.get(stale.id)
    other.weight_kg = 5
    await other.replace()
    stale.weight_kg = 6
    tracked = await t(first_name="Val", email="val@example.org").insert()
    tracked.weight_kg = "heavy"
    return {
        "replace_deleted": await raised(gone.replace),
        "update_deleted_returns": await _caught(lambda: gone.update(Set({t.weight_kg: 1}))),
        "replace_stale_revision": await raised(stale.replace),
        "validate_on_save": await _caught(tracked.save),
        "validate_on_replace": await _caught(tracked.replace),
        "left": sorted(names(await t.find_all().to_list())),
        "revised": doc(await r.get(stale.id), "first_name", "email", "weight_kg"),
    }
