"""Validation errors of identity fields: native reasons, no identity value (see the
docs/differences.md row on validation errors).

pydantic quotes the input (``input_value='...'``; for a missing field, the whole input). Through
the facade the same ``ValidationError`` type is raised with the same locations, error types and
messages; only identity values are replaced by ``<redacted>``: at construction, in
``model_validate``, and when a stored document fails to parse.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from compat_suite.beanie.harness import BeanieCompat
from compat_suite.beanie.models import Clinic, clinic
from compat_suite.harness import assert_nontrivial, error_name

LONG_NAME = "Bartholomeus" * 4
BAD_DATE = "the thirtieth of Fructidor"
FIRST = "Philomena"
STORED_ALIAS = "Bartholomeus the Unreadable"
CLINICAL = "heavy-ish"  # a clinical value: quoted on both sides
VALUES = (LONG_NAME, BAD_DATE, FIRST, STORED_ALIAS)


def _observed(exc: Exception) -> dict[str, Any]:
    errors = getattr(exc, "errors", None)
    listed = errors(include_url=False) if callable(errors) else []
    return {
        "type": error_name(exc),
        "errors": [(list(e["loc"]), e["type"], e["msg"]) for e in listed],
        "raw": " | ".join([str(exc), repr(exc), repr(listed)]),
    }


def _caught(action: Callable[[], object]) -> dict[str, Any]:
    try:
        action()
    except Exception as exc:
        return _observed(exc)
    raise AssertionError("no validation error was raised")


async def _errors(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    patients = m.Patient.get_pymongo_collection()
    await patients.insert_one({"first_name": "Ada", "last_name": "L", "aliases": STORED_ALIAS})
    stored: dict[str, Any] = {}
    try:
        await m.Patient.find_one(m.Patient.last_name == "L")
    except Exception as exc:
        stored = _observed(exc)
    return {
        "construct": _caught(
            lambda: m.Patient(
                first_name=LONG_NAME,
                last_name="B",
                email="b@example.org",
                date_of_birth=BAD_DATE,
                weight_kg=CLINICAL,
            )
        ),
        "missing": _caught(lambda: m.Patient(first_name=FIRST)),
        "model_validate": _caught(
            lambda: m.Patient.model_validate({"first_name": FIRST, "date_of_birth": BAD_DATE})
        ),
        "stored": stored,
    }


async def test_validation_errors_keep_reasons_and_drop_identity_values(
    compat_beanie: BeanieCompat,
) -> None:
    native = (await compat_beanie.run(compat_beanie.native, clinic, _errors)).observation
    wrapped = (await compat_beanie.run(compat_beanie.wrapped, clinic, _errors)).observation
    assert_nontrivial(native)
    for case, seen in native.items():
        other = wrapped[case]
        assert (other["type"], other["errors"]) == (seen["type"], seen["errors"]), case
        assert any(value in seen["raw"] for value in VALUES), case
        assert not [value for value in VALUES if value in other["raw"]], case
        assert "<redacted>" in other["raw"], case
    assert CLINICAL in wrapped["construct"]["raw"]
