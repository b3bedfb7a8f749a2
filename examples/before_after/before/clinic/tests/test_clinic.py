"""The clinic's own tests: what the front desk expects, whatever stores the data."""

from __future__ import annotations

import datetime

import pytest
from mongoengine import NotUniqueError, ValidationError

from clinic import service
from clinic.models import Appointment, Patient

NOW = datetime.datetime(2026, 5, 1, 9, 0)


@pytest.fixture
def patients() -> list[Patient]:
    return [
        service.register(
            "Ada",
            "Lovelace",
            "ada@example.org",
            date_of_birth=datetime.datetime(1815, 12, 10),
            blood_type="A+",
            allergies=["penicillin"],
        ),
        service.register(
            "Alan",
            "Turing",
            "alan@example.org",
            date_of_birth=datetime.datetime(1912, 6, 23),
            blood_type="O-",
        ),
        service.register(
            "Grace",
            "Hopper",
            "grace@example.org",
            date_of_birth=datetime.datetime(1906, 12, 9),
            allergies=["penicillin", "latex"],
        ),
    ]


def test_a_patient_is_found_by_email(patients: list[Patient]) -> None:
    ada = service.by_email("ada@example.org")
    assert (ada.first_name, ada.last_name, ada.blood_type) == ("Ada", "Lovelace", "A+")
    assert ada.id == patients[0].id


def test_an_email_is_stored_lowercase(patients: list[Patient]) -> None:
    service.register("Edsger", "Dijkstra", "EWD@Example.org")
    assert service.by_email("ewd@example.org").last_name == "Dijkstra"


def test_an_unknown_email_is_refused(patients: list[Patient]) -> None:
    with pytest.raises(service.UnknownPatient):
        service.by_email("nobody@example.org")


def test_an_email_is_unique(patients: list[Patient]) -> None:
    with pytest.raises(NotUniqueError):
        service.register("Other", "Ada", "ada@example.org")


def test_invalid_details_are_refused() -> None:
    with pytest.raises(ValidationError):
        service.register("Bad", "Email", "not-an-email")
    with pytest.raises(ValidationError):
        service.register("Bad", "Blood", "b@example.org", blood_type="C")
    assert Patient.objects.count() == 0


def test_search_matches_first_and_last_names_in_name_order(patients: list[Patient]) -> None:
    assert service.search("a") == ["Grace Hopper", "Ada Lovelace", "Alan Turing"]
    assert service.search("TUR") == ["Alan Turing"]


def test_birth_dates_are_compared(patients: list[Patient]) -> None:
    assert service.born_before(datetime.datetime(1910, 1, 1)) == ["Lovelace", "Hopper"]


def test_allergies_are_counted(patients: list[Patient]) -> None:
    assert service.with_allergy("penicillin") == 2
    assert service.with_allergy("latex") == 1


def test_appointments_are_booked_listed_and_completed(patients: list[Patient]) -> None:
    first = service.book("alan@example.org", NOW + datetime.timedelta(days=2), "check-up")
    service.book("alan@example.org", NOW + datetime.timedelta(days=1), "blood test")
    service.book("alan@example.org", NOW - datetime.timedelta(days=1), "old visit")
    assert service.upcoming("alan@example.org", NOW) == ["blood test", "check-up"]
    service.complete(first)
    assert service.upcoming("alan@example.org", NOW) == ["blood test"]
    assert Appointment.objects(patient=patients[1]).first().patient.last_name == "Turing"


def test_contact_details_change(patients: list[Patient]) -> None:
    service.move("grace@example.org", "grace.hopper@example.org", phone="+1 555 0100")
    grace = service.by_email("grace.hopper@example.org")
    assert (grace.first_name, grace.phone) == ("Grace", "+1 555 0100")
    with pytest.raises(service.UnknownPatient):
        service.by_email("grace@example.org")


def test_the_list_is_paginated(patients: list[Patient]) -> None:
    assert service.page(1) == ["Grace Hopper", "Ada Lovelace"]
    assert service.page(2) == ["Alan Turing"]


def test_forgetting_a_patient_deletes_their_appointments(patients: list[Patient]) -> None:
    service.book("ada@example.org", NOW, "consultation")
    service.book("alan@example.org", NOW, "consultation")
    service.forget("ada@example.org")
    assert Patient.objects.count() == 2
    assert [a.patient.first_name for a in Appointment.objects] == ["Alan"]
