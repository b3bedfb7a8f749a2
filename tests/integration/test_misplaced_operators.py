"""``$where``/``$expr`` inside ``$elemMatch`` fail before anything is sent, as the server fails.

A clinical field's ``$elemMatch`` used to go to the server verbatim; the server refuses a
``$where`` or ``$expr`` there (``BadValue``), but only once the command, with an operand that
may hold an identity value, has reached it and pymongo's command log. The planner raises the
same ``OperationFailure`` first. Every command sent is captured on a server (command
monitoring), and on every backend the proxy's own calls are (``testing.faults``): the failing
operation makes none.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import mongoengine as me
import pymongo
import pytest
from bson import json_util
from pymongo import monitoring
from pymongo.errors import OperationFailure

import privata_mongo.mongoengine as pm
from privata_mongo.testing.faults import FaultPlan, faulty_client_class
from testkit.backends import Backend

EMAIL = "ada@example.org"
EXPR = {"$expr": {"$eq": ["$email", EMAIL]}}
WHERE = {"$where": f"this.email == '{EMAIL}'"}
TOP = "can only be applied to the top-level document"


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
def observed(backend: Backend) -> Iterator[tuple[Any, FaultPlan, _Commands]]:
    """A model with one patient; yields ``(model, the proxy's calls, the commands sent)``."""
    commands = _Commands()
    settings = backend.mongoengine_settings()
    inner = settings.pop("mongo_client_class", None)
    if inner is None:
        inner = functools.partial(pymongo.MongoClient, event_listeners=[commands])
    plan = FaultPlan()
    pm.connect(db=backend.db_name, mongo_client_class=faulty_client_class(inner, plan), **settings)

    class ElemPatient(me.Document):
        first_name = me.StringField()
        email = me.StringField()
        visits = me.ListField(me.DictField())
        meta = {"collection": "elem_patient"}

    try:
        ElemPatient(first_name="Ada", email=EMAIL, visits=[{"ward": "A"}]).save()
        commands.sent.clear()
        plan.arm()  # count the calls from here on
        yield ElemPatient, plan, commands
    finally:
        plan.disarm()
        me.disconnect()


def _elem(body: Any) -> dict[str, Any]:
    return {"visits": {"$elemMatch": body}}


FILTERS = [
    (_elem(EXPR), f"$expr {TOP}"),
    (_elem(WHERE), f"$where {TOP}"),
    (_elem({"ward": "A", "$or": [{"ward": "B"}, EXPR]}), f"$expr {TOP}"),
    (_elem({"notes": {"$elemMatch": {"$nor": [WHERE]}}}), f"$where {TOP}"),
    ({"$and": [{"first_name": "Ada"}, _elem(EXPR)]}, f"$expr {TOP}"),
    ({"visits": {"$not": {"$elemMatch": EXPR}}}, f"$expr {TOP}"),
]

OPERATIONS: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "find": lambda collection, f: list(collection.find(f)),
    "count_documents": lambda collection, f: collection.count_documents(f),
    "update_many": lambda collection, f: collection.update_many(f, {"$set": {"visits": []}}),
    "delete_many": lambda collection, f: collection.delete_many(f),
    "aggregate": lambda collection, f: list(collection.aggregate([{"$match": f}])),
}


@pytest.mark.parametrize(("filter", "message"), FILTERS)
def test_a_misplaced_operator_fails_with_the_servers_error_and_sends_nothing(
    observed: tuple[Any, FaultPlan, _Commands], filter: dict[str, Any], message: str
) -> None:
    Patient, plan, commands = observed
    with pytest.raises(OperationFailure) as raised:
        list(Patient.objects(__raw__=filter))
    assert raised.value.details == {"ok": 0.0, "errmsg": message, "code": 2}
    assert [c for c in plan.calls if c.collection.startswith("elem_patient")] == []
    assert not [c for c in commands.sent if EMAIL in c]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_refuses_it_before_sending(
    observed: tuple[Any, FaultPlan, _Commands], operation: str
) -> None:
    Patient, plan, commands = observed
    with pytest.raises(OperationFailure) as raised:
        OPERATIONS[operation](Patient._get_collection(), _elem(EXPR))
    assert (raised.value.details or {}).get("errmsg") == f"$expr {TOP}"
    assert raised.value.code == 2
    assert [c for c in plan.calls if c.collection.startswith("elem_patient")] == []
    assert not [c for c in commands.sent if EMAIL in c]
    assert Patient.objects.count() == 1
