"""Validation errors of linked and lazily parsed split models carry no identity values.

A ``Link`` validates its document with the linked class (a dict given at construction or to
``model_validate``, a list of them), so an identity value of the linked model that fails
validation is quoted by the error of the *linking* model, which need not be split itself. A
document read with ``lazy_parse=True`` validates each field when it is first read, with a
``TypeAdapter`` of the field's type rather than the model's validator. Through the facade the
same error is raised, with the same title, locations, types and messages, and without the
identity values (see the docs/differences.md row on validation errors).
"""

from __future__ import annotations

import datetime
from types import ModuleType
from typing import Any

from compat_suite.beanie.harness import BeanieCompat
from compat_suite.beanie.models import Clinic, clinic
from compat_suite.beanie.test_validation_redaction import _caught
from compat_suite.harness import assert_nontrivial

LONG_NAME = "Bartholomeus" * 4
BAD_DATE = "the thirtieth of Fructidor"
STORED_ALIAS = "Bartholomeus the Unreadable"
STORED_PHONE = 4155550123  # stored as a number: a phone is a string
CLINICAL = "heavy-ish"  # a clinical value of the linked model: quoted on both sides
VALUES = (LONG_NAME, BAD_DATE, STORED_ALIAS, str(STORED_PHONE))
AT = datetime.datetime(2024, 1, 2, 3, 4, 5)


async def _lazily(m: Clinic, field: str) -> dict[str, Any]:
    """The error of reading ``field`` of a document parsed lazily."""
    [patient] = await m.Patient.find(m.Patient.last_name == "L", lazy_parse=True).to_list()
    return _caught(lambda: getattr(patient, field))


async def _errors(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await m.Patient.get_pymongo_collection().insert_one(
        {
            "first_name": "Ada",
            "last_name": "L",
            "email": "a@example.org",
            "aliases": STORED_ALIAS,
            "phone": STORED_PHONE,
            "weight_kg": CLINICAL,
        }
    )
    linked = {
        "first_name": LONG_NAME,
        "last_name": "B",
        "email": "b@example.org",
        "date_of_birth": BAD_DATE,
        "weight_kg": CLINICAL,
    }
    return {
        "construct": _caught(lambda: m.Visit(patient=linked, at=AT)),
        "model_validate": _caught(lambda: m.Visit.model_validate({"patient": linked, "at": AT})),
        "in_a_list": _caught(lambda: m.Ward(name="W", patients=[linked])),
        "lazy_list": await _lazily(m, "aliases"),
        "lazy_scalar": await _lazily(m, "phone"),
        "lazy_clinical": await _lazily(m, "weight_kg"),
    }


async def test_linked_and_lazy_identity_values_are_redacted(compat_beanie: BeanieCompat) -> None:
    native = (await compat_beanie.run(compat_beanie.native, clinic, _errors)).observation
    wrapped = (await compat_beanie.run(compat_beanie.wrapped, clinic, _errors)).observation
    assert_nontrivial(native)
    for case, seen in native.items():
        other = wrapped[case]
        assert (other["type"], other["errors"]) == (seen["type"], seen["errors"]), case
        if case == "lazy_clinical":  # a clinical value is quoted, as natively
            assert other["raw"] == seen["raw"]
            continue
        assert any(value in seen["raw"] for value in VALUES), case
        assert not [value for value in VALUES if value in other["raw"]], (case, other["raw"])
        assert "<redacted>" in other["raw"], case
    assert CLINICAL in wrapped["construct"]["raw"]
