"""Model factories: each defines its document classes anew with the module it is given.

mongoengine's document registry is global and keyed by class name, so classes are never
defined at import time: the harness calls a factory inside each run, with the registry
cleared, and the native and the wrapped runs get classes of the same names (so ``_cls`` values
and collection names are the same on both sides) that are nonetheless distinct objects.

The models mix identity data (``first_name``, ``last_name``, ``email``, ``phone``,
``date_of_birth``, ``address``, ``ssn``, and ``insurance_number`` and the list ``aliases``
marked ``pii=True``) with
clinical data (numbers, lists, dicts, dates, references, embedded lists).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from compat_suite.people import ALIASES, PEOPLE, dt

__all__ = [
    "Clinic",
    "Hierarchy",
    "Strictness",
    "clinic",
    "dt",
    "hierarchy",
    "seed_clinic",
    "strictness",
]


@dataclass(frozen=True)
class Clinic:
    """Patients with identity and clinical data, their doctors, visits, wards and lab results."""

    Address: Any
    Medication: Any
    Doctor: Any
    Patient: Any
    Visit: Any
    Ward: Any
    LabResult: Any
    Appointment: Any


def clinic(me: ModuleType) -> Clinic:
    class Address(me.EmbeddedDocument):
        street = me.StringField()
        city = me.StringField()
        postcode = me.StringField()

    class Medication(me.EmbeddedDocument):
        name = me.StringField(required=True)
        dose_mg = me.IntField()

    class Doctor(me.Document):
        first_name = me.StringField(required=True)
        last_name = me.StringField(required=True)
        email = me.EmailField(unique=True)
        speciality = me.StringField()
        years = me.IntField(default=0)

    class Patient(me.Document):
        first_name = me.StringField(required=True, max_length=40)
        last_name = me.StringField(required=True)
        email = me.EmailField(unique=True)
        phone = me.StringField()
        date_of_birth = me.DateTimeField()
        address = me.EmbeddedDocumentField(Address)
        insurance_number = me.StringField(pii=True)
        aliases = me.ListField(me.StringField(), pii=True)
        blood_type = me.StringField()
        weight_kg = me.IntField()
        tags = me.ListField(me.StringField())
        scores = me.ListField(me.IntField())
        vitals = me.DictField()
        admitted_at = me.DateTimeField()
        medications = me.EmbeddedDocumentListField(Medication)
        doctor = me.ReferenceField(Doctor, reverse_delete_rule=me.DENY)

        @me.queryset_manager
        def heavy(doc_cls: Any, queryset: Any) -> Any:
            return queryset.filter(weight_kg__gte=61).order_by("-weight_kg", "email")

    class Visit(me.Document):
        patient = me.ReferenceField(Patient, reverse_delete_rule=me.CASCADE)
        doctor = me.ReferenceField(Doctor, reverse_delete_rule=me.NULLIFY)
        at = me.DateTimeField(required=True)
        reason = me.StringField()
        cost = me.IntField(default=0)

    class Ward(me.Document):
        name = me.StringField(required=True)
        patients = me.ListField(me.ReferenceField(Patient, reverse_delete_rule=me.PULL))
        head = me.LazyReferenceField(Doctor)

    class LabResult(me.Document):
        subject = me.GenericReferenceField()
        test = me.StringField()
        value = me.FloatField()
        taken_at = me.DateTimeField()

    class Appointment(me.Document):
        # copies the patient's names into this (clinical) collection, as mongoengine does
        patient = me.CachedReferenceField(Patient, fields=["first_name", "last_name"])
        at = me.DateTimeField()

    return Clinic(Address, Medication, Doctor, Patient, Visit, Ward, LabResult, Appointment)


def seed_clinic(m: Clinic) -> list[Any]:
    """Two doctors and five patients with distinct, known values (ties in weight and blood)."""
    house = m.Doctor(
        first_name="Gregory", last_name="House", email="house@example.org", speciality="dx"
    ).save()
    quinn = m.Doctor(
        first_name="Michaela",
        last_name="Quinn",
        email="quinn@example.org",
        speciality="gp",
        years=12,
    ).save()
    patients = []
    for i, (first, last, email, phone, born, city, ins, blood, kg, tags, scores) in enumerate(
        PEOPLE
    ):
        patients.append(
            m.Patient(
                first_name=first,
                last_name=last,
                email=email,
                phone=phone,
                date_of_birth=born,
                address=m.Address(street=f"{i + 1} Main St", city=city, postcode=f"P{i}"),
                insurance_number=ins,
                aliases=ALIASES.get(first, []),
                blood_type=blood,
                weight_kg=kg,
                tags=tags,
                scores=scores,
                vitals={"bp": 120 + i, "hr": 60 + 2 * i},
                admitted_at=dt(2024, 1, 1 + i, 8),
                medications=[m.Medication(name="aspirin", dose_mg=100 * (i + 1))] if i % 2 else [],
                doctor=house if i < 3 else quinn,
            ).save()
        )
    return patients


@dataclass(frozen=True)
class Hierarchy:
    """An ``allow_inheritance`` tree with identity data in the base and in the subclasses."""

    Person: Any
    Employee: Any
    Nurse: Any
    Resident: Any


def hierarchy(me: ModuleType) -> Hierarchy:
    class Person(me.Document):
        first_name = me.StringField(required=True)
        last_name = me.StringField()
        email = me.EmailField()
        height_cm = me.IntField()
        meta = {"allow_inheritance": True}

    class Employee(Person):
        ssn = me.StringField()
        salary = me.IntField()

    class Nurse(Employee):
        ward = me.StringField()
        shifts = me.ListField(me.IntField())

    class Resident(Person):
        date_of_birth = me.DateTimeField()
        room = me.IntField()

    return Hierarchy(Person, Employee, Nurse, Resident)


@dataclass(frozen=True)
class Strictness:
    """A strict model, a lenient one and a dynamic one, all holding identity data."""

    Strict: Any
    Lenient: Any
    Dynamic: Any


def strictness(me: ModuleType) -> Strictness:
    class Strict(me.Document):
        first_name = me.StringField(required=True)
        email = me.EmailField()
        weight_kg = me.IntField()

    class Lenient(me.Document):
        first_name = me.StringField(required=True)
        weight_kg = me.IntField()
        meta = {"strict": False}

    class Dynamic(me.DynamicDocument):
        first_name = me.StringField()
        phone = me.StringField()

    return Strictness(Strict, Lenient, Dynamic)
