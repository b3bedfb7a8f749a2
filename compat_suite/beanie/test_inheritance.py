"""Inheritance (``is_root``): one collection for the tree, ``_class_id`` on the clinical side,
identity fields declared at every level."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from beanie.operators import In, Inc, Set

from compat_suite.beanie.harness import scenario
from compat_suite.beanie.models import Hierarchy, dt, hierarchy, seed_hierarchy
from compat_suite.beanie.observe import doc, docs, names, stored


def _classes(documents: list[Any]) -> list[tuple[str, str]]:
    return [(type(d).__name__, d.first_name) for d in documents]


@scenario(hierarchy)
async def test_queries_through_the_hierarchy(odm: ModuleType, m: Hierarchy) -> dict[str, Any]:
    await seed_hierarchy(m)
    collection = m.Person.get_pymongo_collection()
    return {
        "all_from_base": _classes(
            await m.Person.find_all(with_children=True).sort("+first_name").to_list()
        ),
        "base_only": _classes(await m.Person.find_all().to_list()),
        "employees": _classes(
            await m.Employee.find_all(with_children=True).sort("-salary").to_list()
        ),
        "nurses": _classes(await m.Nurse.find_all().sort("+first_name").to_list()),
        "residents": _classes(await m.Resident.find_all().to_list()),
        "counts": [
            await m.Person.find_all(with_children=True).count(),
            await m.Employee.find_all(with_children=True).count(),
            await m.Nurse.count(),
            await m.Resident.count(),
        ],
        "base_filter_on_base_identity": _classes(
            await m.Person.find(m.Person.last_name == "Care", with_children=True).to_list()
        ),
        "subclass_filter_on_subclass_identity": _classes(
            await m.Employee.find(
                In(m.Employee.ssn, ["222-22", "999-99"]), with_children=True
            ).to_list()
        ),
        "subclass_filter_on_base_identity": _classes(
            await m.Nurse.find(m.Nurse.email != None).to_list()  # noqa: E711
        ),
        "dob_on_subclass": _classes(
            await m.Resident.find(m.Resident.date_of_birth < dt(1950, 1, 1)).to_list()
        ),
        "get_through_base": doc(
            await m.Person.find_one(m.Person.first_name == "Nina", with_children=True)
        ),
        "raw": [stored(r) for r in await collection.find({}).sort("first_name", 1).to_list()],
        "class_ids": sorted(await collection.distinct("_class_id")),
        "collections": sorted(
            {c.get_collection_name() for c in (m.Person, m.Employee, m.Nurse, m.Resident)}
        ),
    }


@scenario(hierarchy)
async def test_updating_and_deleting_through_subclasses(
    odm: ModuleType, m: Hierarchy
) -> dict[str, Any]:
    await seed_hierarchy(m)
    nina = await m.Nurse.find_one(m.Nurse.first_name == "Nina")
    nina.ssn = "999-99"
    nina.shifts.append(3)
    await nina.save()
    observed = {
        "raise_salaries": (
            await m.Employee.find_all(with_children=True).update(Inc({m.Employee.salary: 5}))
        ).modified_count,
        "set_identity_on_nurses": (
            await m.Nurse.find(m.Nurse.ward == "B").update(Set({m.Nurse.last_name: "Night"}))
        ).modified_count,
        "delete_residents": (await m.Resident.find_all().delete()).deleted_count,
    }
    observed["after"] = docs(
        await m.Person.find_all(with_children=True).sort("+first_name").to_list()
    )
    observed["names_left"] = names(await m.Person.find_all(with_children=True).to_list())
    return observed
