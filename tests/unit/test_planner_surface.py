"""The split collections' methods are pymongo's own, planned once, and pass options as one rule."""

from __future__ import annotations

import inspect

import pymongo.collection
import pytest

from privata_mongo.proxy._collection_base import PlannedMethod, SplitCollectionBase
from privata_mongo.proxy._planner import Planner
from privata_mongo.proxy._planner._base import passed

PLANNED = sorted(
    name for name, value in vars(SplitCollectionBase).items() if isinstance(value, PlannedMethod)
)


def _parameters(function: object) -> list[tuple[str, object]]:
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return [(p.name, p.default) for p in signature.parameters.values() if p.name != "self"]


@pytest.mark.parametrize("name", PLANNED)
def test_each_planned_method_takes_pymongos_parameters(name: str) -> None:
    native = getattr(pymongo.collection.Collection, name)
    assert _parameters(getattr(Planner, name)) == _parameters(native)


def test_every_planned_method_is_listed_once_for_both_twins() -> None:
    assert len(PLANNED) == 20
    assert all(callable(getattr(Planner, name)) for name in PLANNED)


def test_options_are_every_argument_the_plan_does_not_take() -> None:
    named = {
        "self": object(),
        "filter": {"a": 1},
        "update": {"$set": {"b": 1}},
        "upsert": False,
        "bypass_document_validation": True,
        "hint": "a_1",
        "collation": None,
        "comment": "why",
        "kwargs": {"maxTimeMS": 5, "extra": None},
    }
    assert passed(named, "filter", "update", "upsert") == {
        "bypass_document_validation": True,
        "hint": "a_1",
        "comment": "why",
        "maxTimeMS": 5,
        "extra": None,
    }
