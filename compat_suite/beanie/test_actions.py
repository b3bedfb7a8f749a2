"""Event actions: before/after Insert, Replace, Save, SaveChanges, Update and Delete see the same
field values, in the same order, and what a before-action changes is what gets stored."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from beanie.operators import Inc, Set

from compat_suite.beanie.harness import scenario
from compat_suite.beanie.models import Tracking, tracking
from compat_suite.beanie.observe import doc, stored


def _take(m: Tracking) -> list[Any]:
    entries = list(m.Audited.log)
    m.Audited.log.clear()
    return entries


@scenario(tracking)
async def test_actions_see_and_change_field_values(odm: ModuleType, m: Tracking) -> dict[str, Any]:
    a = m.Audited
    observed: dict[str, Any] = {}
    doc_ = a(first_name="Eve", email="EVE@Example.ORG", weight_kg=60)
    await doc_.insert()
    observed["insert"] = _take(m)
    observed["stored_after_insert"] = stored(
        await a.get_pymongo_collection().find_one({"_id": doc_.id})
    )
    doc_.email = "eve@example.net"
    await doc_.replace()
    observed["replace"] = _take(m)
    doc_.weight_kg = 61
    await doc_.save()
    observed["save"] = _take(m)
    doc_.first_name = "Evelyn"
    await doc_.save_changes()
    observed["save_changes"] = _take(m)
    observed["after_save_changes"] = doc(await a.get(doc_.id))
    await doc_.set({a.email: "evelyn@example.net"})
    observed["set"] = _take(m)
    await doc_.update(Inc({a.weight_kg: 1}))
    observed["update"] = _take(m)
    await a.find(a.first_name == "Evelyn").update(Set({a.weight_kg: 5}))
    observed["query_update_runs_no_action"] = _take(m)
    loaded = await a.find_one(a.email == "evelyn@example.net")
    observed["load_runs_no_action"] = _take(m)
    observed["loaded"] = doc(loaded)
    await loaded.delete()
    observed["delete"] = _take(m)
    await a(first_name="Skip", email="SKIP@X.ORG").insert(skip_actions=[odm.Before])
    observed["skip_before_actions"] = _take(m)
    observed["skipped_email_kept"] = (await a.find_one(a.first_name == "Skip")).email
    await a.find(a.first_name == "Skip").delete()
    observed["query_delete_runs_no_action"] = _take(m)
    observed["count"] = await a.count()
    return observed
