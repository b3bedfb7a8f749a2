"""Validation errors about referenced documents of a split model carry no identity values.

mongoengine never renders a referenced document into its own messages, but an application's
validation of a reference (``ReferenceField(Person, validation=...)``) does: its message
(``Philomena Quillfeather is not on duty``) becomes the field's error, of a referencing model
that need not be split itself, and the referenced document may have been dereferenced from the
database. Through the facade the same exception is raised, for the same fields, with the same
reasons; the identity values of every referenced or embedded document of a split model are
replaced by ``<redacted>`` (see the docs/differences.md row on validation errors). Each run
observes its messages with the scenario's identity values replaced, equal on both sides, and
the raw messages, which quote the values natively and never wrapped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from compat_suite.harness import MongoengineCompat, assert_nontrivial, error_name

FIRST, LAST = "Bartholomeus", "Unreadable"
STORED_FIRST, STORED_LAST = "Philomena", "Quillfeather"
CLINICAL = "night-shift"  # a clinical value of the referencing model: quoted on both sides
VALUES = (FIRST, LAST, STORED_FIRST, STORED_LAST, "x@@example.org")
_OBJECT_ID = re.compile(r"\b[0-9a-f]{24}\b")


@dataclass
class Teams:
    Person: Any
    Team: Any
    Roster: Any


def teams(me: ModuleType) -> Teams:
    class Person(me.Document):
        first_name = me.StringField(required=True)
        last_name = me.StringField()
        email = me.EmailField()
        role = me.StringField()
        meta = {"collection": "people"}

        def __str__(self) -> str:
            return f"{self.first_name} {self.last_name}"

    def on_duty(person: Any) -> None:
        if person.role != "lead":
            raise me.ValidationError(f"{person} is not on duty")

    class Team(me.Document):  # no identity field of its own: not split
        shift = me.StringField()
        lead = me.ReferenceField(Person, validation=on_duty)
        members = me.ListField(me.ReferenceField(Person, validation=on_duty))
        by_role = me.DictField(me.ReferenceField(Person, validation=on_duty))
        meta = {"collection": "teams"}

    class Roster(me.Document):  # split: its own identity field is redacted as before
        email = me.EmailField()
        ward = me.IntField()
        people = me.ListField(me.ReferenceField(Person, validation=on_duty))
        meta = {"collection": "rosters"}

    return Teams(Person, Team, Roster)


def _caught(action: Callable[[], object]) -> dict[str, Any]:
    """The error ``action`` raises: its reasons with this scenario's values (and ids) replaced."""
    try:
        action()
    except Exception as exc:
        text = " | ".join(
            [str(exc), repr(exc), repr(getattr(exc, "to_dict", dict)()), *map(str, exc.args)]
        )
        text = _OBJECT_ID.sub("<id>", text)
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


def _errors(me: ModuleType, m: Teams) -> dict[str, Any]:
    stored = m.Person(first_name=STORED_FIRST, last_name=STORED_LAST, role="lead").save()
    nurse = m.Person(first_name=FIRST, last_name=LAST, email="b@example.org", role="nurse").save()
    m.Team(shift="day", lead=stored, members=[stored]).save()
    m.Person.objects(id=stored.id).update(set__role="nurse")  # the lead is no longer one
    loaded = m.Team.objects.get()
    assert (loaded.lead.role, loaded.members[0].role) == ("nurse", "nurse")  # dereferenced
    return {
        "dereferenced": _caught(loaded.save),
        "list": _caught(m.Team(shift="day", members=[nurse]).validate),
        "dict": _caught(m.Team(shift="day", by_role={"night": nurse}).validate),
        "split_referencing": _caught(
            m.Roster(email="x@@example.org", ward=CLINICAL, people=[nurse]).save
        ),
        "stored": (m.Team.objects.count(), m.Roster.objects.count()),
    }


def test_referenced_identity_values_are_redacted(compat_mongoengine: MongoengineCompat) -> None:
    native = compat_mongoengine.run(compat_mongoengine.native, teams, _errors).observation
    wrapped = compat_mongoengine.run(compat_mongoengine.wrapped, teams, _errors).observation
    assert_nontrivial(native)
    assert wrapped["stored"] == native["stored"] == (1, 0)
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
        assert not [value for value in VALUES if value in other["raw"]], (case, other["raw"])
    assert CLINICAL in wrapped["split_referencing"]["raw"]
