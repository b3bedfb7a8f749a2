"""Model factories: each defines its Beanie document classes anew with the module it is given.

Beanie keeps per-class state that ``init_beanie`` sets (settings, collection, link fields,
actions), so every run defines fresh classes; the harness isolates the global registries
(``DocsRegistry`` resolves forward references by class name). The native and the wrapped runs
get classes of the same names (so collection names and ``_class_id`` values are equal) that
are nonetheless distinct objects. A class that refers to one defined after it names it as a
string and is rebuilt inside the factory (``model_rebuild`` reads the factory's locals).

The models mix identity data (``first_name``, ``last_name``, ``email`` -- unique through
``Indexed`` --, ``phone``, ``date_of_birth``, ``address`` as an embedded pydantic model,
``ssn``, ``insurance_number`` marked ``Annotated[..., PII()]`` and ``aliases`` marked
``Field(json_schema_extra={"pii": True})``) with clinical data (numbers, lists, dicts,
datetimes, embedded lists, ``Link`` and ``BackLink``). ``PII`` comes from the wrapper and is
inert metadata in plain Beanie, as it is in an application that switches back.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, Field

from compat_suite.people import ALIASES, PEOPLE, dt
from privata_mongo.beanie import PII

__all__ = [
    "Care",
    "Clinic",
    "Hierarchy",
    "Tracking",
    "care",
    "dt",
    "hierarchy",
    "link_doctors",
    "seed_care",
    "seed_clinic",
    "seed_hierarchy",
    "tracking",
]


@dataclass(frozen=True)
class Clinic:
    """Patients with identity and clinical data, their doctors, visits and wards."""

    Address: Any
    Medication: Any
    Doctor: Any
    Patient: Any
    Visit: Any
    Ward: Any
    Summary: Any  # a projection model: identity and clinical fields


def clinic(odm: ModuleType) -> Clinic:
    class Address(BaseModel):
        street: str | None = None
        city: str | None = None
        postcode: str | None = None

    class Medication(BaseModel):
        name: str
        dose_mg: int | None = None

    class Doctor(odm.Document):
        first_name: str
        last_name: str
        email: Annotated[str, odm.Indexed(unique=True)]
        speciality: str | None = None
        years: int = 0
        patients: list[odm.BackLink[Patient]] = Field(  # type: ignore[name-defined]
            default_factory=list, json_schema_extra={"original_field": "doctor"}
        )

        class Settings:
            name = "doctors"

    class Patient(odm.Document):
        first_name: str = Field(max_length=40)
        last_name: str
        email: Annotated[str, odm.Indexed(unique=True)]
        phone: str | None = None
        date_of_birth: datetime.datetime | None = None
        address: Address | None = None
        insurance_number: Annotated[str | None, PII()] = None
        aliases: list[str] = Field(default_factory=list, json_schema_extra={"pii": True})
        blood_type: str | None = None
        weight_kg: int | None = None
        tags: list[str] = Field(default_factory=list)
        scores: list[int] = Field(default_factory=list)
        vitals: dict[str, int] = Field(default_factory=dict)
        admitted_at: datetime.datetime | None = None
        medications: list[Medication] = Field(default_factory=list)
        doctor: odm.Link[Doctor] | None = None

        class Settings:
            name = "patients"

    class Visit(odm.Document):
        patient: odm.Link[Patient]
        doctor: odm.Link[Doctor] | None = None
        at: datetime.datetime
        reason: str | None = None
        cost: int = 0

        class Settings:
            name = "visits"

    class Ward(odm.Document):
        name: str
        patients: list[odm.Link[Patient]] = Field(default_factory=list)

        class Settings:
            name = "wards"

    class Summary(BaseModel):
        first_name: str
        email: str
        weight_kg: int | None = None
        address: Address | None = None

    Doctor.model_rebuild()
    return Clinic(Address, Medication, Doctor, Patient, Visit, Ward, Summary)


async def seed_clinic(m: Clinic) -> list[Any]:
    """Two doctors and five patients with distinct, known values (ties in weight and blood).

    No links are stored here (a link is a DBRef, which FerretDB refuses): link scenarios set
    them (``link_doctors``) or use ``care``.
    """
    await m.Doctor(
        first_name="Gregory", last_name="House", email="house@example.org", speciality="dx"
    ).insert()
    await m.Doctor(
        first_name="Michaela",
        last_name="Quinn",
        email="quinn@example.org",
        speciality="gp",
        years=12,
    ).insert()
    patients = []
    for i, (first, last, email, phone, born, city, ins, blood, kg, tags, scores) in enumerate(
        PEOPLE
    ):
        patient = m.Patient(
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
        )
        patients.append(await patient.insert())
    return patients


async def link_doctors(m: Clinic, patients: list[Any]) -> None:
    """House treats the first three patients, Quinn the last two."""
    house = await m.Doctor.find_one(m.Doctor.last_name == "House")
    quinn = await m.Doctor.find_one(m.Doctor.last_name == "Quinn")
    for i, patient in enumerate(patients):
        patient.doctor = house if i < 3 else quinn
        await patient.save()


@dataclass(frozen=True)
class Hierarchy:
    """A Beanie inheritance tree (``is_root``) with identity data in the base and subclasses."""

    Person: Any
    Employee: Any
    Nurse: Any
    Resident: Any


def hierarchy(odm: ModuleType) -> Hierarchy:
    class Person(odm.Document):
        first_name: str
        last_name: str | None = None
        email: str | None = None
        height_cm: int | None = None

        class Settings:
            name = "people"
            is_root = True

    class Employee(Person):
        ssn: str | None = None
        salary: int | None = None

    class Nurse(Employee):
        ward: str | None = None
        shifts: list[int] = Field(default_factory=list)

    class Resident(Person):
        date_of_birth: datetime.datetime | None = None
        room: int | None = None

    return Hierarchy(Person, Employee, Nurse, Resident)


async def seed_hierarchy(m: Hierarchy) -> None:
    """One person of each class, identity data in each level."""
    await m.Person(first_name="Paul", last_name="Plain", email="paul@example.org").insert()
    await m.Employee(
        first_name="Erin", last_name="Worker", email="erin@example.org", ssn="111-11", salary=50
    ).insert()
    await m.Nurse(
        first_name="Nina", last_name="Care", ssn="222-22", salary=40, ward="B", shifts=[1, 2]
    ).insert()
    await m.Nurse(
        first_name="Ned", last_name="Care", email="ned@example.org", ssn="333-33", salary=45,
        ward="A", shifts=[3],
    ).insert()  # fmt: skip
    await m.Resident(
        first_name="Rita", last_name="Old", date_of_birth=dt(1931, 3, 4), room=12, height_cm=160
    ).insert()


@dataclass(frozen=True)
class Tracking:
    """Models with Beanie's optional machinery: revisions, state management, soft delete,
    validation on save, and event actions that record what they saw."""

    Address: Any
    Revised: Any
    Tracked: Any
    Archived: Any
    Audited: Any


def tracking(odm: ModuleType) -> Tracking:
    class Address(BaseModel):
        city: str | None = None
        postcode: str | None = None

    class Revised(odm.Document):
        first_name: str
        email: Annotated[str, odm.Indexed(unique=True)]
        weight_kg: int = 0
        tags: list[str] = Field(default_factory=list)

        class Settings:
            name = "revised"
            use_revision = True

    class Tracked(odm.Document):
        first_name: str
        last_name: str | None = None
        email: str | None = None
        address: Address | None = None
        weight_kg: int = 0
        tags: list[str] = Field(default_factory=list)
        vitals: dict[str, int] = Field(default_factory=dict)

        class Settings:
            name = "tracked"
            use_state_management = True
            state_management_save_previous = True
            validate_on_save = True

    class Archived(odm.DocumentWithSoftDelete):
        first_name: str
        email: str | None = None
        severity: int = 0

        class Settings:
            name = "archived"

    class Audited(odm.Document):
        """Every action appends (event, direction, the values it saw) to ``log``."""

        first_name: str
        email: str | None = None
        weight_kg: int = 0
        log: ClassVar[list[Any]] = []

        class Settings:
            name = "audited"
            use_state_management = True

        def _saw(self, what: str) -> None:
            type(self).log.append(
                (what, self.first_name, self.email, self.weight_kg, self.id is not None)
            )

        @odm.before_event(odm.Insert)
        def before_insert(self) -> None:
            self._saw("before insert")
            self.email = (self.email or "").lower() or None

        @odm.after_event(odm.Insert)
        def after_insert(self) -> None:
            self._saw("after insert")

        @odm.before_event(odm.Replace)
        def before_replace(self) -> None:
            self._saw("before replace")

        @odm.after_event(odm.Replace)
        def after_replace(self) -> None:
            self._saw("after replace")

        @odm.before_event(odm.Save)
        def before_save(self) -> None:
            self._saw("before save")

        @odm.after_event(odm.Save)
        def after_save(self) -> None:
            self._saw("after save")

        @odm.before_event(odm.SaveChanges)
        def before_save_changes(self) -> None:
            self._saw("before save_changes")
            self.weight_kg += 1000

        @odm.after_event(odm.SaveChanges)
        def after_save_changes(self) -> None:
            self._saw("after save_changes")

        @odm.before_event(odm.Update)
        async def before_update(self) -> None:
            self._saw("before update")

        @odm.after_event(odm.Update)
        def after_update(self) -> None:
            self._saw("after update")

        @odm.before_event(odm.Delete)
        def before_delete(self) -> None:
            self._saw("before delete")

        @odm.after_event(odm.Delete)
        def after_delete(self) -> None:
            self._saw("after delete")

    Audited.log = []
    return Tracking(Address, Revised, Tracked, Archived, Audited)


@dataclass(frozen=True)
class Care:
    """Links one level deep (``max_nesting_depth = 1``): Beanie resolves them with plain
    ``$lookup`` stages (``localField``/``foreignField``), no sub-pipelines."""

    Address: Any
    Clinician: Any
    Member: Any
    Appointment: Any
    Room: Any


def care(odm: ModuleType) -> Care:
    class Address(BaseModel):
        city: str | None = None
        postcode: str | None = None

    class Clinician(odm.Document):
        first_name: str
        last_name: str
        email: Annotated[str, odm.Indexed(unique=True)]
        speciality: str | None = None
        members: list[odm.BackLink[Member]] = Field(  # type: ignore[name-defined]
            default_factory=list, json_schema_extra={"original_field": "clinician"}
        )

        class Settings:
            name = "clinicians"
            max_nesting_depth = 1

    class Member(odm.Document):
        first_name: str
        email: Annotated[str, odm.Indexed(unique=True)]
        date_of_birth: datetime.datetime | None = None
        address: Address | None = None
        weight_kg: int | None = None
        tags: list[str] = Field(default_factory=list)
        clinician: odm.Link[Clinician] | None = None

        class Settings:
            name = "members"
            max_nesting_depth = 1

    class Appointment(odm.Document):
        member: odm.Link[Member]
        clinician: odm.Link[Clinician] | None = None
        at: datetime.datetime
        reason: str | None = None
        cost: int = 0

        class Settings:
            name = "appointments"
            max_nesting_depth = 1

    class Room(odm.Document):
        name: str
        members: list[odm.Link[Member]] = Field(default_factory=list)

        class Settings:
            name = "rooms"
            max_nesting_depth = 1

    Clinician.model_rebuild()
    return Care(Address, Clinician, Member, Appointment, Room)


async def seed_care(m: Care) -> list[Any]:
    """Two clinicians, five members (four linked), four appointments, two rooms."""
    house = await m.Clinician(
        first_name="Gregory", last_name="House", email="house@example.org", speciality="dx"
    ).insert()
    quinn = await m.Clinician(
        first_name="Michaela", last_name="Quinn", email="quinn@example.org", speciality="gp"
    ).insert()
    members = []
    for i, (first, _last, email, _phone, born, city, *_rest) in enumerate(PEOPLE):
        member = m.Member(
            first_name=first,
            email=email,
            date_of_birth=born,
            address=m.Address(city=city, postcode=f"P{i}"),
            weight_kg=55 + 3 * i,
            tags=["vip"] if i % 2 else [],
            clinician=[house, quinn, house, None, quinn][i],
        )
        members.append(await member.insert())
    for i, member in enumerate(members[:4]):
        await m.Appointment(
            member=member,
            clinician=house if i % 2 == 0 else None,
            at=dt(2024, 2, 1 + i),
            reason=f"check {i}",
            cost=10 * (i + 1),
        ).insert()
    await m.Room(name="North", members=members[:2]).insert()
    await m.Room(name="South", members=[members[4], members[2]]).insert()
    return members
