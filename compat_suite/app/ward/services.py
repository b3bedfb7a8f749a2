"""What the ward's API handlers call."""

from __future__ import annotations

import datetime
from typing import Any

from beanie.operators import In, Inc, Set

from ward.models import Address, Admission, Nurse, Patient


async def admit(first: str, last: str, email: str, born: datetime.date, city: str) -> Patient:
    patient = Patient(
        first_name=first,
        last_name=last,
        email=email,
        date_of_birth=datetime.datetime.combine(born, datetime.time()),
        address=Address(street="1 Ward Rd", city=city),
    )
    return await patient.insert()


async def by_email(email: str) -> Patient | None:
    return await Patient.find_one(Patient.email == email)


async def page(number: int, size: int = 3) -> list[str]:
    found = (
        await Patient.find_all()
        .sort(+Patient.last_name, +Patient.first_name)
        .skip((number - 1) * size)
        .limit(size)
        .to_list()
    )
    return [f"{p.last_name}, {p.first_name}" for p in found]


async def named(*last_names: str) -> list[str]:
    found = await Patient.find(In(Patient.last_name, list(last_names))).to_list()
    return sorted(p.email for p in found)


async def born_before(day: datetime.date) -> int:
    limit = datetime.datetime.combine(day, datetime.time())
    return await Patient.find(Patient.date_of_birth < limit).count()


async def assign(patient: Patient, nurse: Nurse, bed: int, days: int) -> Admission:
    assert patient.id is not None
    assert nurse.id is not None
    return await Admission(patient_id=patient.id, nurse_id=nurse.id, bed=bed, days=days).insert()


async def admissions_of(email: str) -> list[tuple[int, str, int]]:
    """The patient's admissions with their nurses' names: one read per collection."""
    patient = await Patient.find_one(Patient.email == email)
    assert patient is not None
    found = await Admission.find(Admission.patient_id == patient.id).sort(+Admission.bed).to_list()
    nurses = await Nurse.find(In(Nurse.id, [a.nurse_id for a in found])).to_list()
    names = {n.id: n.name for n in nurses}
    return [(a.bed, names[a.nurse_id], a.days) for a in found]


async def per_city() -> list[dict[str, Any]]:
    pipeline = [
        {"$group": {"_id": "$address.city", "n": {"$sum": 1}}},
        {"$sort": {"n": -1, "_id": 1}},
    ]
    return await Patient.aggregate(pipeline).to_list()


async def move(email: str, city: str) -> None:
    await Patient.find_one(Patient.email == email).update(Set({"address.city": city}))


async def reward(email: str) -> None:
    await Patient.find_one(Patient.email == email).update(Inc({Patient.score: 1}))


async def discharge(email: str) -> int:
    patient = await Patient.find_one(Patient.email == email)
    assert patient is not None
    await patient.delete()
    return await Patient.count()
