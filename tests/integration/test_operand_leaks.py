"""No operand of an identity-field operator reaches the server (or pymongo's command log)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mongoengine as me
import pytest
from bson import json_util
from pymongo import monitoring

import privata_mongo.mongoengine as pm
from testkit.backends import Backend

EMAIL = "ada@example.org"


class _Commands(monitoring.CommandListener):
    """Every command sent, as extended JSON."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append(json_util.dumps(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to record."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to record."""


@pytest.fixture
def patients(backend: Backend) -> Iterator[tuple[Any, _Commands]]:
    """A model with two patients, one without an e-mail; yields ``(model, command log)``."""
    commands = _Commands()
    extra = {"event_listeners": [commands]} if backend.uri is not None else {}
    pm.connect(db=backend.db_name, **backend.mongoengine_settings(), **extra)

    class LeakPatient(me.Document):
        first_name = me.StringField()
        email = me.StringField()
        tags = me.ListField(me.StringField())
        meta = {"collection": "leak_patient"}

    try:
        LeakPatient(first_name="Ada", email=EMAIL, tags=["a"]).save()
        LeakPatient(first_name="Grace", tags=["a", "b"]).save()
        commands.sent.clear()
        yield LeakPatient, commands
    finally:
        me.disconnect()


@pytest.mark.parametrize(
    ("operand", "expected"),
    [(EMAIL, ["Ada"]), ("", ["Ada"]), (0, ["Grace"]), (None, ["Grace"]), (False, ["Grace"])],
)
def test_exists_is_sent_as_a_boolean_with_native_meaning(
    patients: tuple[Any, _Commands], operand: Any, expected: list[str]
) -> None:
    Patient, commands = patients
    found = Patient.objects(__raw__={"email": {"$exists": operand}})
    assert sorted(p.first_name for p in found) == expected
    assert not [c for c in commands.sent if EMAIL in c]


@pytest.mark.parametrize(
    "condition",
    [
        {"$type": "string"},
        {"$size": 1},
        {"$not": {"$exists": EMAIL}},
        {"$in": [EMAIL]},
        {"$nin": [EMAIL]},
        {"$ne": EMAIL},
        {"$all": [EMAIL]},
        {"$regex": "^ada@"},
    ],
)
def test_other_identity_operators_send_no_value(
    patients: tuple[Any, _Commands], condition: dict[str, Any]
) -> None:
    Patient, commands = patients
    list(Patient.objects(__raw__={"email": condition}))
    list(Patient.objects(__raw__={"$nor": [{"email": condition}]}))
    assert not [c for c in commands.sent if EMAIL in c or "ada@" in c]
