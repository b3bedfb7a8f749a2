"""Beanie's optional document machinery: revisions, state management and soft delete."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from beanie.operators import Inc

from compat_suite.beanie.harness import raised, scenario
from compat_suite.beanie.models import Tracking, tracking
from compat_suite.beanie.observe import doc, docs, names, stored
from compat_suite.requirements import requires


@scenario(tracking)
async def test_revision_guards_concurrent_writes(odm: ModuleType, m: Tracking) -> dict[str, Any]:
    r = m.Revised
    first = await r(first_name="Rev", email="rev@example.org", weight_kg=1).insert()
    revision_after_insert = first.revision_id
    other = await r.get(first.id)
    other.email = "other@example.org"
    await other.replace()
    first.weight_kg = 2
    observed: dict[str, Any] = {
        "loaded_same_revision": other is not first and revision_after_insert is not None,
        "replace_stale": await raised(first.replace),
        "stored_after_conflicts": doc(await r.get(first.id), "first_name", "email", "weight_kg"),
    }
    await first.replace(ignore_revision=True)
    observed["replace_ignoring_revision"] = doc(await r.get(first.id), "email", "weight_kg")
    fresh = await r.get(first.id)
    before = fresh.revision_id
    fresh.tags.append("x")
    await fresh.save()
    observed["save_changes_revision"] = fresh.revision_id != before
    observed["stored"] = stored(await r.get_pymongo_collection().find_one({"_id": first.id}))
    observed["update_stale"] = await raised(lambda: other.update(Inc({r.weight_kg: 1})))
    observed["found_by_email"] = names(await r.find(r.email == "rev@example.org").to_list())
    return observed


@requires("duplicate_key_details")
@scenario(tracking)
async def test_save_with_a_stale_revision(odm: ModuleType, m: Tracking) -> dict[str, Any]:
    """``save`` upserts on ``_id`` and revision: a stale revision collides on ``_id``.

    Beanie tells a revision conflict from the ``keyPattern`` of the ``DuplicateKeyError``.
    """
    r = m.Revised
    first = await r(first_name="Rev", email="rev@example.org", weight_kg=1).insert()
    other = await r.get(first.id)
    other.email = "other@example.org"
    await other.replace()
    first.weight_kg = 2
    return {
        "save_stale": await raised(first.save),
        "stored": doc(await r.get(first.id), "first_name", "email", "weight_kg"),
    }


@scenario(tracking)
async def test_state_management(odm: ModuleType, m: Tracking) -> dict[str, Any]:
    t = m.Tracked
    new = t(first_name="Stan", email="stan@example.org", address=m.Address(city="Oslo"))
    observed: dict[str, Any] = {
        "saved_state_before_insert": new.get_saved_state(),
        "save_changes_unsaved": await raised(new.save_changes),
    }
    await new.insert()
    observed["after_insert"] = {"changed": new.is_changed, "changes": new.get_changes()}
    loaded = await t.get(new.id)
    observed["loaded_unchanged"] = {"changed": loaded.is_changed, "changes": loaded.get_changes()}
    loaded.email = "stanley@example.org"
    loaded.address.city = "Bergen"
    loaded.weight_kg = 80
    loaded.tags.append("new")
    loaded.vitals["hr"] = 70
    observed["changes"] = {"changed": loaded.is_changed, "changes": loaded.get_changes()}
    await loaded.save_changes()
    observed["after_save_changes"] = {
        "changed": loaded.is_changed,
        "previous_changes": loaded.get_previous_changes(),
        "has_changed": loaded.has_changed,
    }
    observed["stored"] = stored(await t.get_pymongo_collection().find_one({"_id": new.id}))
    observed["nothing_to_save"] = await loaded.save_changes()
    loaded.last_name = "Rollback"
    loaded.rollback()
    observed["rolled_back"] = {"last_name": loaded.last_name, "changed": loaded.is_changed}
    loaded.address = None
    await loaded.save_changes()
    observed["unset_embedded_identity"] = doc(await t.get(new.id))
    observed["invalid_then_save_changes"] = await raised(_invalid_save(loaded))
    return observed


def _invalid_save(document: Any) -> Any:
    async def run() -> Any:
        document.weight_kg = "heavy"  # validate_on_save: refused before anything is written
        return await document.save_changes()

    return run


@scenario(tracking)
async def test_soft_delete(odm: ModuleType, m: Tracking) -> dict[str, Any]:
    a = m.Archived
    for i, (first, email) in enumerate(
        [("Sam", "sam@example.org"), ("Sue", "sue@example.org"), ("Sid", None)]
    ):
        await a(first_name=first, email=email, severity=i).insert()
    sue = await a.find_one(a.email == "sue@example.org")
    await sue.delete()
    return {
        "is_deleted": sue.is_deleted(),
        "find": names(await a.find_all().sort("+first_name").to_list()),
        "find_by_email": names(await a.find(a.email == "sue@example.org").to_list()),
        "find_one_deleted": await a.find_one(a.email == "sue@example.org"),
        "find_in_all": docs(await a.find_many_in_all().sort("+first_name").to_list()),
        "count": await a.find_all().count(),
        "count_in_all": await a.find_many_in_all().count(),
        "get_deleted": doc(await a.get(sue.id), "first_name", "deleted_at"),
        "hard_delete": (await sue.hard_delete()).deleted_count,
        "after_hard_delete": names(await a.find_many_in_all().sort("+first_name").to_list()),
    }
