"""The clinic's own tests: what its views rely on."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from mongoengine import NotUniqueError, ValidationError
from mongoengine.errors import DoesNotExist

from clinic import services
from clinic.models import SAVED, Doctor, Patient, Visit

PEOPLE = [
    ("Ada", "Lovelace", "ada@example.org", datetime.date(1815, 12, 10), "London"),
    ("Marie", "Curie", "marie@example.org", datetime.date(1867, 11, 7), "Paris"),
    ("Pierre", "Curie", "pierre@example.org", datetime.date(1859, 5, 15), "Paris"),
    ("Alan", "Turing", "alan@example.org", datetime.date(1912, 6, 23), "London"),
    ("Grace", "Hopper", "grace@example.org", datetime.date(1906, 12, 9), "New York"),
    ("Emmy", "Noether", "emmy@example.org", datetime.date(1882, 3, 23), "Erlangen"),
    ("Rosalind", "Franklin", "rosalind@example.org", datetime.date(1920, 7, 25), "London"),
]


@pytest.fixture
def patients() -> list[Patient]:
    return [services.register(*person) for person in PEOPLE]


@pytest.fixture
def visits(patients: list[Patient]) -> list[Visit]:
    house = Doctor(name="Dr House", speciality="diagnostics").save()
    who = Doctor(name="Dr Who", speciality="time").save()
    booked = []
    for i, patient in enumerate(patients):
        doctor = house if i % 2 else who
        day = datetime.date(2024, 3, 1 + i)
        booked.append(services.book(patient, doctor, day, 10 + 5 * i))
    booked.append(services.book(patients[0], house, datetime.date(2024, 4, 1), 45))
    return booked


def test_register_and_find_by_email(patients: list[Patient], observe: Any) -> None:
    found = services.find_by_email("marie@example.org")
    assert found is not None
    assert (found.first_name, found.address.city) == ("Marie", "Paris")
    assert found.id == patients[1].id
    assert services.find_by_email("nobody@example.org") is None
    observe("found", found.to_mongo().to_dict())


def test_email_is_unique(patients: list[Patient], observe: Any) -> None:
    with pytest.raises(NotUniqueError) as caught:
        services.register("Ada", "Again", "ada@example.org", datetime.date(2000, 1, 1), "Bath")
    assert Patient.objects.count() == len(PEOPLE)
    observe("error type", type(caught.value).__name__)


def test_invalid_email_is_refused_before_saving(observe: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        services.register("Bad", "Mail", "not-an-email", datetime.date(2000, 1, 1), "Bath")
    assert Patient.objects.count() == 0
    assert "email" in str(caught.value.errors)
    observe("error fields", sorted(caught.value.errors))


def test_pages_follow_the_default_ordering(patients: list[Patient], observe: Any) -> None:
    pages = [services.page(n) for n in (1, 2, 3, 4)]
    assert pages[0] == ["Curie, Marie", "Curie, Pierre", "Franklin, Rosalind"]
    assert pages[2] == ["Turing, Alan"]
    assert pages[3] == []
    observe("pages", pages)


def test_search_by_name(patients: list[Patient], observe: Any) -> None:
    assert services.search("Curie") == ["marie@example.org", "pierre@example.org"]
    assert services.search("Alan") == ["alan@example.org"]
    assert services.search("curie") == []
    observe("search", services.search("Grace"))


def test_date_range(patients: list[Patient], observe: Any) -> None:
    assert services.born_before(datetime.date(1900, 1, 1)) == 4
    observe("born before 1910", services.born_before(datetime.date(1910, 1, 1)))


def test_visits_with_their_doctors(visits: list[Visit], observe: Any) -> None:
    ada = services.visits_of("ada@example.org")
    assert ada == [("2024-03-01", "Dr Who", 10), ("2024-04-01", "Dr House", 45)]
    observe("ada", ada)


def test_minutes_per_city_through_references(visits: list[Visit], observe: Any) -> None:
    totals = services.minutes_per_city()
    assert totals[0] == {"city": "London", "minutes": 10 + 25 + 40 + 45}
    observe("totals", totals)


def test_patients_per_city_aggregation(patients: list[Patient], observe: Any) -> None:
    groups = services.patients_per_city()
    assert groups[0] == {"_id": "London", "n": 3}
    assert [g["_id"] for g in groups] == ["London", "Paris", "Erlangen", "New York"]
    observe("groups", groups)


def test_moving_updates_the_embedded_address(patients: list[Patient], observe: Any) -> None:
    services.move("grace@example.org", "Arlington")
    grace = Patient.objects.get(email="grace@example.org")
    assert grace.address.city == "Arlington"
    assert grace.address.street == "1 Main St"
    observe("grace", grace.address.to_mongo().to_dict())


def test_deleting_a_patient_cascades_to_visits(visits: list[Visit], observe: Any) -> None:
    remaining = services.forget("ada@example.org")
    assert remaining == len(visits) - 2
    with pytest.raises(DoesNotExist):
        Patient.objects.get(email="ada@example.org")
    observe("remaining", remaining)


def test_signals_see_every_save(observe: Any) -> None:
    SAVED.clear()
    patient = services.register(*PEOPLE[0])
    patient.blood_type = "B-"
    patient.save()
    assert SAVED == ["Patient:created", "Patient:updated"]
    observe("saved", list(SAVED))
