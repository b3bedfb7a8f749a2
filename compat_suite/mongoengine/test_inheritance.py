"""``allow_inheritance``: identity data in the base class and in subclasses, one collection."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from compat_suite.harness import outcome, scenario
from compat_suite.mongoengine.models import Hierarchy, dt, hierarchy
from compat_suite.mongoengine.observe import doc, names, stored


def _seed(m: Hierarchy) -> None:
    m.Person(first_name="Pat", last_name="Plain", email="pat@example.org", height_cm=170).save()
    m.Employee(first_name="Emma", last_name="Worker", ssn="111-11", salary=50, height_cm=160).save()
    m.Nurse(
        first_name="Nina", last_name="Care", ssn="222-22", salary=40, ward="A", shifts=[1, 2]
    ).save()
    m.Resident(first_name="Rita", last_name="Home", date_of_birth=dt(1940, 1, 1), room=7).save()
    m.Nurse(first_name="Ned", email="ned@example.org", ssn="333-33", salary=45, ward="B").save()


def _classes(documents: Any) -> list[tuple[str, str]]:
    return [(type(d).__name__, d.first_name) for d in documents]


@scenario(hierarchy)
def test_querying_base_and_subclasses(me: ModuleType, m: Hierarchy) -> dict[str, Any]:
    _seed(m)
    return {
        "collection": m.Nurse._get_collection_name(),
        "all_from_base": _classes(m.Person.objects.order_by("first_name")),
        "employees": _classes(m.Employee.objects.order_by("-salary")),
        "nurses": _classes(m.Nurse.objects.order_by("first_name")),
        "residents": _classes(m.Resident.objects),
        "base_only": _classes(m.Person.objects.no_sub_classes()),
        "employee_only": _classes(m.Employee.objects.no_sub_classes()),
        "counts": [cls.objects.count() for cls in (m.Person, m.Employee, m.Nurse, m.Resident)],
        "base_filter_on_base_identity": _classes(m.Person.objects(last_name="Worker")),
        "subclass_filter_on_subclass_identity": _classes(
            m.Employee.objects(ssn__in=["222-22", "999-99"])
        ),
        "subclass_filter_on_base_identity": _classes(m.Nurse.objects(email__exists=True)),
        # mongoengine looks a field up in the subclasses too: no InvalidQueryError here
        "base_filter_on_subclass_field": outcome(lambda: _classes(m.Person.objects(ssn="111-11"))),
        "raw_filter_on_subclass_identity": _classes(m.Person.objects(__raw__={"ssn": "333-33"})),
        "date_of_birth_on_subclass": _classes(m.Resident.objects(date_of_birth__lt=dt(1950, 1, 1))),
        "raw": [stored(r) for r in m.Person.objects.order_by("first_name").as_pymongo()],
        "cls_values": sorted(m.Person.objects.distinct("_cls")),
        "get_through_base": doc(m.Person.objects.get(first_name="Nina")),
    }


@scenario(hierarchy)
def test_updating_and_deleting_through_subclasses(me: ModuleType, m: Hierarchy) -> dict[str, Any]:
    _seed(m)
    return {
        "raise_salaries": m.Employee.objects.update(inc__salary=5),
        "set_identity_on_nurses": m.Nurse.objects(ward="B").update(set__last_name="Night"),
        "set_base_identity_from_base": m.Person.objects(first_name="Rita").update(
            set__email="rita@example.org"
        ),
        "modify_subclass": doc(
            m.Nurse.objects(first_name="Nina").modify(new=True, push__shifts=3, set__ssn="999-99")
        ),
        "delete_residents": m.Resident.objects.delete(),
        "after": [doc(p) for p in m.Person.objects.order_by("first_name")],
        "names_left": names(m.Person.objects.order_by("first_name")),
    }
