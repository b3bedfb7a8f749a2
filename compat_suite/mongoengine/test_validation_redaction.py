"""Validation errors of identity fields: native reasons, no identity value (see the
docs/differences.md row on validation errors).

mongoengine quotes the offending value in a field's message (``Invalid email address: ...``).
Through the facade the same exception is raised, for the same fields, with the same reasons;
only the identity values are replaced by ``<redacted>``. Each run observes its messages with
the scenario's own identity values replaced, which must be equal on both sides, and the raw
messages, which must quote the values natively and never wrapped.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from compat_suite.harness import MongoengineCompat, assert_nontrivial, error_name
from compat_suite.mongoengine.models import Clinic, clinic

BAD_EMAIL = "bartholomeus.bad@@example.org"
BAD_DATE = "the thirtieth of Fructidor"
BAD_ALIAS = "Bartholomeus the Unreadable"
CLINICAL = "heavy-ish"  # a clinical value: quoted on both sides
VALUES = (BAD_EMAIL, BAD_DATE, BAD_ALIAS)


def _caught(action: Callable[[], object]) -> dict[str, Any]:
    try:
        action()
    except Exception as exc:
        text = " | ".join(
            [str(exc), repr(exc), repr(getattr(exc, "to_dict", dict)()), *map(str, exc.args)]
        )
        reasons = text
        for value in VALUES:
            reasons = reasons.replace(value, "<redacted>")
        return {
            "type": error_name(exc),
            "fields": sorted(getattr(exc, "errors", {}) or {}),
            "reasons": reasons,
            "raw": text,
        }
    raise AssertionError("no validation error was raised")


def _errors(me: ModuleType, m: Clinic) -> dict[str, Any]:
    def patient(**fields: Any) -> Any:
        return m.Patient(first_name="Ada", last_name="Byron", **fields)

    return {
        "email": _caught(patient(email=BAD_EMAIL).save),
        "date": _caught(patient(date_of_birth=BAD_DATE).validate),
        "embedded_and_clinical": _caught(
            patient(email=BAD_EMAIL, weight_kg=CLINICAL, aliases=[BAD_ALIAS, 7]).save
        ),
        "create": _caught(lambda: m.Patient.objects.create(first_name="A", email=BAD_EMAIL)),
        "stored": m.Patient.objects.count(),
    }


def test_validation_errors_keep_reasons_and_drop_identity_values(
    compat_mongoengine: MongoengineCompat,
) -> None:
    native = compat_mongoengine.run(compat_mongoengine.native, clinic, _errors).observation
    wrapped = compat_mongoengine.run(compat_mongoengine.wrapped, clinic, _errors).observation
    assert_nontrivial(native)
    assert wrapped["stored"] == native["stored"] == 0
    for case, seen in native.items():
        if case == "stored":
            continue
        other = wrapped[case]
        assert (other["type"], other["fields"], other["reasons"]) == (
            seen["type"],
            seen["fields"],
            seen["reasons"],
        ), case
        assert any(value in seen["raw"] for value in VALUES), case
        assert not [value for value in VALUES if value in other["raw"]], case
    assert CLINICAL in wrapped["embedded_and_clinical"]["raw"]
