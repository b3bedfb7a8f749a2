"""The ward's own tests: what its handlers rely on."""

from __future__ import annotations

import datetime
from typing import Any

import pydantic
import pytest
from pymongo.errors import DuplicateKeyError

from ward import services
from ward.models import EVENTS, Nurse, Patient

pytestmark = pytest.mark.asyncio(loop_scope="function")

PEOPLE = [
    ("Ada", "Lovelace", "ada@example.org", datetime.date(1815, 12, 10), "London"),
    ("Marie", "Curie", "marie@example.org", datetime.date(1867, 11, 7), "Paris"),
    ("Pierre", "Curie", "pierre@example.org", datetime.date(1859, 5, 15), "Paris"),
    ("Alan", "Turing", "alan@example.org", datetime.date(1912, 6, 23), "London"),
    ("Grace", "Hopper", "grace@example.org", datetime.date(1906, 12, 9), "New York"),
    ("Rosalind", "Franklin", "rosalind@example.org", datetime.date(1920, 7, 25), "London"),
    ("Emmy", "Noether", "emmy@example.org", datetime.date(1882, 3, 23), "Erlangen"),
]


async def _admit_all() -> list[Patient]:
    return [await services.admit(*person) for person in PEOPLE]


async def test_admit_and_find_by_email(observe: Any) -> None:
    patients = await _admit_all()
    found = await services.by_email("marie@example.org")
    assert found is not None
    assert found.id == patients[1].id
    assert (found.first_name, found.address.city) == ("Marie", "Paris")
    assert await services.by_email("nobody@example.org") is None
    observe("found", found.model_dump(exclude={"id", "revision_id"}))


async def test_email_is_unique(observe: Any) -> None:
    await _admit_all()
    with pytest.raises(DuplicateKeyError):
        await services.admit("Ada", "Again", "ada@example.org", datetime.date(2000, 1, 1), "Bath")
    assert await Patient.count() == len(PEOPLE)
    observe("count", await Patient.count())


async def test_invalid_email_is_refused(observe: Any) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        await services.admit("Bad", "Mail", "not-an-email", datetime.date(2000, 1, 1), "Bath")
    assert [e["loc"] for e in caught.value.errors()] == [("email",)]
    assert await Patient.count() == 0
    observe("error", [e["type"] for e in caught.value.errors()])


async def test_pages_sorted_by_name(observe: Any) -> None:
    await _admit_all()
    pages = [await services.page(n) for n in (1, 2, 3, 4)]
    assert pages[0] == ["Curie, Marie", "Curie, Pierre", "Franklin, Rosalind"]
    assert pages[2] == ["Turing, Alan"]
    assert pages[3] == []
    observe("pages", pages)


async def test_find_by_last_names(observe: Any) -> None:
    await _admit_all()
    assert await services.named("Curie", "Turing") == [
        "alan@example.org",
        "marie@example.org",
        "pierre@example.org",
    ]
    observe("named", await services.named("Hopper"))


async def test_date_range(observe: Any) -> None:
    await _admit_all()
    assert await services.born_before(datetime.date(1900, 1, 1)) == 4
    observe("born", await services.born_before(datetime.date(1910, 1, 1)))


async def test_admissions_with_their_nurses(observe: Any) -> None:
    patients = await _admit_all()
    day = await Nurse(name="Nightingale", shift="day").insert()
    night = await Nurse(name="Seacole", shift="night").insert()
    for bed, patient in enumerate(patients, 1):
        await services.assign(patient, night if bed % 2 else day, bed, bed * 2)
    await services.assign(patients[0], day, 20, 1)
    ada = await services.admissions_of("ada@example.org")
    assert ada == [(1, "Seacole", 2), (20, "Nightingale", 1)]
    observe("ada", ada)


async def test_patients_per_city(observe: Any) -> None:
    await _admit_all()
    groups = await services.per_city()
    assert groups[0] == {"_id": "London", "n": 3}
    assert [g["_id"] for g in groups] == ["London", "Paris", "Erlangen", "New York"]
    observe("groups", groups)


async def test_move_and_reward(observe: Any) -> None:
    await _admit_all()
    await services.move("grace@example.org", "Arlington")
    await services.reward("grace@example.org")
    await services.reward("grace@example.org")
    grace = await services.by_email("grace@example.org")
    assert grace is not None
    assert (grace.address.city, grace.address.street, grace.score) == ("Arlington", "1 Ward Rd", 2)
    observe("grace", grace.model_dump(exclude={"id", "revision_id"}))


async def test_discharge(observe: Any) -> None:
    await _admit_all()
    assert await services.discharge("ada@example.org") == len(PEOPLE) - 1
    assert await services.by_email("ada@example.org") is None
    observe("left", await services.page(1))


async def test_events_fire_on_insert(observe: Any) -> None:
    await services.admit(*PEOPLE[0])
    assert EVENTS == ["admitted Lovelace"]
    observe("events", list(EVENTS))
