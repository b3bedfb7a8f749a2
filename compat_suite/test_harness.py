"""The harness itself: what it normalises, what it refuses, what it catches."""

from __future__ import annotations

import datetime
import importlib
import itertools
import pkgutil
from types import ModuleType
from typing import Any

import bson
import mongoengine
import pytest

import compat_suite.beanie as beanie_scenarios
import compat_suite.mongoengine as scenarios
from compat_suite.harness import (
    MongoengineCompat,
    OidRef,
    assert_nontrivial,
    error_name,
    informative_leaves,
    normalise,
    outcome,
    raised,
)
from compat_suite.requirements import FEATURES, GAPS, gaps_for, requires
from testkit.backends import MongomockBackend
from testkit.plugin import KNOWN_BACKENDS


def test_object_ids_become_ordinals_of_first_appearance() -> None:
    a, b = bson.ObjectId(), bson.ObjectId()
    observed = normalise({"first": [b, a, b], "ref": bson.DBRef("patient", a)})
    assert observed == {
        "first": [OidRef(0), OidRef(1), OidRef(0)],
        "ref": {"$ref": "patient", "$id": OidRef(1)},
    }


def test_ordinals_do_not_depend_on_key_order_but_key_order_is_kept() -> None:
    a, b = bson.ObjectId(), bson.ObjectId()
    one = normalise({"x": a, "y": b})
    other = normalise({"y": b, "x": a})
    assert one == other
    assert list(other) == ["y", "x"]


def test_values_are_kept_as_they_are() -> None:
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, 6000)
    observed = {"when": when, "tuple": (1, "a"), "none": None, "float": 1.5, "bytes": b"x"}
    assert normalise(observed) == observed
    assert isinstance(normalise(observed)["tuple"], tuple)


@pytest.mark.parametrize("value", [{1, 2}, object(), iter([1])])
def test_values_that_cannot_be_compared_by_value_are_refused(value: Any) -> None:
    with pytest.raises(TypeError, match="not plain data"):
        normalise({"x": value})


def test_documents_are_refused() -> None:
    class Refused(mongoengine.EmbeddedDocument):
        name = mongoengine.StringField()

    with pytest.raises(TypeError, match="Refused"):
        normalise({"doc": Refused(name="x")})


def test_trivial_observations_fail() -> None:
    assert informative_leaves({"a": [None, 0, "", False, [], {}]}) == 0
    assert informative_leaves({"a": [OidRef(0), "x"], "b": 0}) == 2
    for trivial in ({}, {"a": None, "b": 0}, {"a": "only one"}, ["not", "a", "mapping"]):
        with pytest.raises(AssertionError):
            assert_nontrivial(trivial)
    assert_nontrivial({"a": 1, "b": [True]})


def test_error_names_carry_the_type_and_its_bases() -> None:
    assert error_name(mongoengine.NotUniqueError()) == (
        "mongoengine.errors.NotUniqueError < mongoengine.errors.OperationError"
        " < mongoengine.errors.MongoEngineException"
    )
    assert raised(lambda: None) is None
    assert raised(lambda: {}["x"]) == "builtins.KeyError < builtins.LookupError"
    assert outcome(lambda: 3) == {"returned": 3}


def _counter_factory(me: ModuleType) -> itertools.count[int]:
    return _COUNTER


_COUNTER = itertools.count()


def _nondeterministic(me: ModuleType, counter: itertools.count[int]) -> dict[str, Any]:
    return {"run": next(counter) + 1, "constant": "x"}


def _trivial(me: ModuleType, models: Any) -> dict[str, Any]:
    return {"nothing": None}


def test_a_difference_between_runs_fails_the_check() -> None:
    compat = MongoengineCompat(MongomockBackend())
    with pytest.raises(AssertionError):
        compat.check(_counter_factory, _nondeterministic)


def test_a_scenario_that_observes_nothing_fails_the_check() -> None:
    compat = MongoengineCompat(MongomockBackend())
    with pytest.raises(AssertionError, match="observed only 0"):
        compat.check(lambda me: None, _trivial)


def test_runs_leave_no_connection_and_no_registered_class_behind() -> None:
    from mongoengine.base.common import _document_registry
    from mongoengine.connection import _connections

    def factory(me: ModuleType) -> Any:
        class Leftover(me.Document):
            first_name = me.StringField()

        return Leftover

    def play(me: ModuleType, model: Any) -> dict[str, Any]:
        model(first_name="x").save()
        return {"names": [d.first_name for d in model.objects], "count": model.objects.count()}

    registry_before = dict(_document_registry)
    compat = MongoengineCompat(MongomockBackend())
    assert compat.check(factory, play) == {"names": ["x"], "count": 1}
    assert dict(_document_registry) == registry_before
    assert "default" not in _connections
    assert len(compat.databases) == 2
    compat.drop_databases()


def test_requires_knows_its_features() -> None:
    with pytest.raises(pytest.UsageError, match="unknown feature"):
        requires("time_travel")
    assert requires("lookup").mark.args == ("lookup",)


def test_gaps_are_declared_for_every_known_backend_and_only_for_known_features() -> None:
    assert set(KNOWN_BACKENDS) <= set(GAPS)
    for backend, gaps in GAPS.items():
        assert set(gaps) <= set(FEATURES), backend
        assert all(reason.strip() for reason in gaps.values()), backend
    # A real MongoDB lacks nothing the suites use; only the outage tests need a server of ours.
    assert set(gaps_for("mongodb", FEATURES)) == {"server_process"}
    with pytest.raises(pytest.UsageError, match="declares no capabilities"):
        gaps_for("cassandra", ["lookup"])


def test_every_declared_feature_is_exercised_by_a_test() -> None:
    """No dead declarations: each feature is required by a scenario, a test or a port check."""
    import tests.integration as integration
    from privata_mongo.testing import contract

    required: set[str] = {feature for check in contract.CHECKS for feature in check.requires}
    for package in (scenarios, beanie_scenarios, integration):
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("test_"):
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for value in vars(module).values():
                for mark in getattr(value, "pytestmark", []):
                    if mark.name == "requires":
                        required.update(mark.args)
    assert required == set(FEATURES)
