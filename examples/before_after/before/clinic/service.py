"""What the front desk does, written against the models as any mongoengine app would."""

from __future__ import annotations

import datetime

from mongoengine import Q
from mongoengine.errors import DoesNotExist

from clinic.models import Appointment, Patient


class UnknownPatient(LookupError):
    """No patient has that e-mail address."""


def register(first_name: str, last_name: str, email: str, **details: object) -> Patient:
    """A new patient (``NotUniqueError`` if the e-mail address is taken)."""
    return Patient(first_name=first_name, last_name=last_name, email=email, **details).save()


def by_email(email: str) -> Patient:
    """The patient with this e-mail address."""
    try:
        return Patient.objects.get(email=email)
    except DoesNotExist:
        raise UnknownPatient(email) from None


def search(text: str) -> list[str]:
    """Full names of the patients whose first or last name contains ``text``."""
    found = Patient.objects(Q(first_name__icontains=text) | Q(last_name__icontains=text))
    return [str(p) for p in found]


def born_before(when: datetime.datetime) -> list[str]:
    """Last names of the patients born before ``when``, oldest first."""
    return [p.last_name for p in Patient.objects(date_of_birth__lt=when).order_by("date_of_birth")]


def with_allergy(allergy: str) -> int:
    """How many patients have this allergy."""
    return Patient.objects(allergies=allergy).count()


def book(email: str, at: datetime.datetime, reason: str) -> Appointment:
    """Book an appointment for the patient with this e-mail address."""
    return Appointment(patient=by_email(email), at=at, reason=reason).save()


def upcoming(email: str, now: datetime.datetime) -> list[str]:
    """Reasons of the patient's appointments after ``now``, soonest first."""
    patient = by_email(email)
    return [a.reason for a in Appointment.objects(patient=patient, at__gt=now, done=False)]


def complete(appointment: Appointment) -> None:
    """Mark an appointment done."""
    appointment.update(set__done=True)


def move(email: str, new_email: str, phone: str | None = None) -> Patient:
    """Change a patient's contact details."""
    patient = by_email(email)
    patient.email = new_email
    if phone is not None:
        patient.phone = phone
    return patient.save()


def page(number: int, size: int = 2) -> list[str]:
    """One page of the patient list, in name order."""
    return [str(p) for p in Patient.objects.skip((number - 1) * size).limit(size)]


def forget(email: str) -> None:
    """Delete a patient (their appointments go with them)."""
    by_email(email).delete()
