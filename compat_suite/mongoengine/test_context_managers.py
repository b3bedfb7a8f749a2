"""mongoengine's context managers, which apps import from ``mongoengine.context_managers``."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from mongoengine.context_managers import no_dereference, no_sub_classes, switch_collection

from compat_suite.harness import scenario
from compat_suite.mongoengine.models import Clinic, Hierarchy, clinic, hierarchy, seed_clinic
from compat_suite.mongoengine.observe import names, stored


@scenario(clinic)
def test_switch_collection(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    with switch_collection(m.Patient, "patient_archive") as Archived:
        Archived(first_name="Old", last_name="Record", email="old@example.org", weight_kg=1).save()
        archived = {
            "names": names(Archived.objects),
            "by_identity": names(Archived.objects(email="old@example.org")),
            "raw": [stored(r) for r in Archived.objects.as_pymongo()],
        }
    return {
        "archived": archived,
        "main_collection_untouched": sorted(names(m.Patient.objects)),
        "archive_unseen_by_main": m.Patient.objects(email="old@example.org").count(),
    }


@scenario(clinic)
def test_no_dereference_context(me: ModuleType, m: Clinic) -> dict[str, Any]:
    patients = seed_clinic(m)
    m.Ward(name="A", patients=patients[:2]).save()
    with no_dereference(m.Ward):
        inside = [type(p).__name__ for p in m.Ward.objects.first().patients]
    outside = [p.first_name for p in m.Ward.objects.first().patients]
    return {"inside": inside, "outside": outside}


@scenario(hierarchy)
def test_no_sub_classes_context(me: ModuleType, m: Hierarchy) -> dict[str, Any]:
    m.Person(first_name="Pat").save()
    m.Employee(first_name="Emma", ssn="1").save()
    m.Nurse(first_name="Nina", ssn="2").save()
    with no_sub_classes(m.Employee) as Employee:
        only_employees = names(Employee.objects)
    return {"only_employees": only_employees, "all_employees": sorted(names(m.Employee.objects))}
