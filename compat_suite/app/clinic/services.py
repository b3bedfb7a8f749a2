"""What the clinic's views call."""

from __future__ import annotations

import datetime
from typing import Any

from mongoengine.queryset.visitor import Q

from clinic.models import Address, Doctor, Patient, Visit


def register(first: str, last: str, email: str, born: datetime.date, city: str) -> Patient:
    patient = Patient(
        first_name=first,
        last_name=last,
        email=email,
        date_of_birth=born,
        address=Address(street="1 Main St", city=city, postcode="10001"),
        blood_type="A+",
    )
    return patient.save()


def find_by_email(email: str) -> Patient | None:
    return Patient.objects(email=email).first()


def page(number: int, size: int = 3) -> list[str]:
    start = (number - 1) * size
    return [f"{p.last_name}, {p.first_name}" for p in Patient.objects[start : start + size]]


def search(name: str) -> list[str]:
    """E-mails of the patients with this first or last name (exact: FerretDB v1.24 refuses the
    ``u`` flag every Python regex carries, so ``icontains`` fails there natively)."""
    query = Q(last_name=name) | Q(first_name=name)
    return sorted(p.email for p in Patient.objects(query))


def born_before(day: datetime.date) -> int:
    return Patient.objects(date_of_birth__lt=day).count()


def book(patient: Patient, doctor: Doctor, day: datetime.date, minutes: int) -> Visit:
    return Visit(patient=patient, doctor=doctor, day=day, minutes=minutes).save()


def visits_of(email: str) -> list[tuple[str, str, int]]:
    patient = Patient.objects.get(email=email)
    return [
        (v.day.isoformat(), v.doctor.name, v.minutes)
        for v in Visit.objects(patient=patient).select_related()
    ]


def minutes_per_city() -> list[dict[str, Any]]:
    """Total visit minutes per patient city, busiest first (an aggregation over a join)."""
    totals: dict[str, int] = {}
    for visit in Visit.objects.select_related():
        city = visit.patient.address.city
        totals[city] = totals.get(city, 0) + visit.minutes
    busiest = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [{"city": city, "minutes": minutes} for city, minutes in busiest]


def patients_per_city() -> list[dict[str, Any]]:
    pipeline = [
        {"$group": {"_id": "$address.city", "n": {"$sum": 1}}},
        {"$sort": {"n": -1, "_id": 1}},
    ]
    return list(Patient.objects.aggregate(pipeline))


def move(email: str, city: str) -> None:
    Patient.objects(email=email).update_one(set__address__city=city)


def forget(email: str) -> int:
    patient = Patient.objects.get(email=email)
    patient.delete()
    return Visit.objects.count()
