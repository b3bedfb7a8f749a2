"""The in-process pipeline's edges: malformed stages and expressions, and exact arithmetic.

Codes and values are MongoDB's (the server's error codes for each malformed shape, from
src/mongo/db/pipeline and the operator pages of the manual); every failure is checked to
carry no document value, like the rest of the engine's errors.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from bson.decimal128 import Decimal128
from bson.int64 import Int64

from privata_mongo.core.failures import OperationFailed
from privata_mongo.core.mql.pipeline import run_pipeline
from privata_mongo.core.mql.values import UnsupportedOperator

NOW = datetime.datetime(2024, 5, 17, 12, 30, 45, 123000)
PRIVATE_VALUE = "s3cr3t-value"


def run(docs: list[dict[str, Any]], pipeline: Any) -> list[dict[str, Any]]:
    return run_pipeline(docs, pipeline, now=NOW)


def value(expression: Any, doc: dict[str, Any] | None = None) -> Any:
    out = run([{"_id": 0, **(doc or {})}], [{"$project": {"_id": 0, "v": expression}}])
    return out[0].get("v", "<missing>")


def code_of(pipeline: Any, docs: list[dict[str, Any]] | None = None) -> int:
    with pytest.raises(OperationFailed) as caught:
        run(docs if docs is not None else [{"_id": 0, "secret": PRIVATE_VALUE}], pipeline)
    assert PRIVATE_VALUE not in str(caught.value)
    return caught.value.code


@pytest.mark.parametrize(
    ("pipeline", "code"),
    [
        ({"$match": {}}, 14),  # the pipeline is not an array
        ([5], 14),  # a stage is not an object
        ([{"$sort": 1}], 15973),
        ([{"$project": 1}], 15969),
        ([{"$replaceRoot": {"newRoot": "$secret", "extra": 1}}], 40415),
        ([{"$group": {"_id": None, "n": 1}}], 40234),
        ([{"$count": ""}], 40156),
        ([{"$group": {"_id": {"a": 1}}}], 17390),  # inclusion-style: a value, not an expression
        ([{"$unwind": {"path": 5}}], 28808),
        ([{"$unwind": {"path": "$a", "includeArrayIndex": ""}}], 28810),
        ([{"$unwind": {"path": "$a", "preserveNullAndEmptyArrays": 1}}], 28809),
        ([{"$replaceRoot": 5}], 40229),
        ([{"$sortByCount": {"a": 1}}], 40147),
        ([{"$sortByCount": 5}], 40149),
        ([{"$project": {"a": {"$elemMatch": {"b": 1}}}}], 168),
        ([{"$addFields": 5}], 40272),
        ([{"$unset": []}], 31119),
        ([{"$count": "a\x00b"}], 40159),
        ([{"$count": "a.b"}], 40160),
        ([{"$project": {"v": {"$cond": {"if": True, "then": 1, "else": 2, "bogus": 3}}}}], 17083),
        ([{"$project": {"v": {"$switch": 5}}}], 40060),
        ([{"$project": {"v": {"$switch": {"branches": 5}}}}], 40061),
        ([{"$project": {"v": {"$switch": {"branches": [], "bogus": 1}}}}], 40067),
        ([{"$project": {"v": {"$switch": {"branches": [5]}}}}], 40062),
        ([{"$project": {"v": {"$switch": {"branches": [{"case": 1, "then": 1, "x": 1}]}}}}], 40063),
        ([{"$project": {"v": {"$switch": {"branches": [{"then": 1}]}}}}], 40064),
        ([{"$project": {"v": {"$switch": {"branches": [{"case": 1}]}}}}], 40065),
        ([{"$project": {"v": "$a..b"}}], 15998),
        ([{"$project": {"v": "$a.$b"}}], 16410),
        ([{"$project": {"v": "$$"}}], 16869),
        ([{"$project": {"v": "$$Upper"}}], 17276),  # a reference to an undefined variable
        ([{"$project": {"v": "$$1a"}}], 16870),
        ([{"$project": {"v": "$$a-b"}}], 16871),
    ],
)
def test_a_malformed_pipeline_fails_with_the_servers_code(pipeline: Any, code: int) -> None:
    assert code_of(pipeline) == code


def test_switch_takes_the_first_true_branch_then_the_default() -> None:
    branches = [{"case": {"$gt": ["$n", 5]}, "then": "big"}, {"case": True, "then": "small"}]
    assert value({"$switch": {"branches": branches}}, {"n": 9}) == "big"
    assert value({"$switch": {"branches": branches}}, {"n": 1}) == "small"
    assert value({"$switch": {"branches": branches[:1], "default": "none"}}, {"n": 1}) == "none"


def test_constant_sums_widen_int_to_long_to_double() -> None:
    docs = [{"_id": i} for i in range(3)]
    (ints,) = run(docs, [{"$group": {"_id": None, "n": {"$sum": 2**30}}}])
    assert ints["n"] == Int64(3 * 2**30)
    assert type(ints["n"]) is Int64
    (longs,) = run(docs, [{"$group": {"_id": None, "n": {"$sum": Int64(2**62)}}}])
    assert longs["n"] == float(3 * 2**62)
    assert type(longs["n"]) is float


def test_sums_and_means_of_decimals_and_special_doubles() -> None:
    docs = [{"_id": 0, "v": Decimal128("0.1")}, {"_id": 1, "v": 2}, {"_id": 2, "v": 0.5}]
    (out,) = run(docs, [{"$group": {"_id": None, "s": {"$sum": "$v"}, "a": {"$avg": "$v"}}}])
    assert out["s"] == Decimal128("2.6")
    assert out["a"].to_decimal() == Decimal128("0.8666666666666666666666666666666667").to_decimal()
    inf = [{"_id": 0, "v": float("inf")}, {"_id": 1, "v": 1}]
    (out,) = run(inf, [{"$group": {"_id": None, "s": {"$sum": "$v"}}}])
    assert out["s"] == float("inf")
    nan = [*inf, {"_id": 2, "v": float("nan")}]
    (out,) = run(nan, [{"$group": {"_id": None, "s": {"$sum": "$v"}}}])
    assert out["s"] != out["s"]


def test_truthiness_of_decimal_zero_and_conversions() -> None:
    assert value({"$cond": [Decimal128("0"), "t", "f"]}) == "f"
    assert value({"$cond": [Decimal128("0.5"), "t", "f"]}) == "t"
    assert value({"$eq": [Decimal128("1"), 1.0]}) is True
    assert value({"$cmp": ["$missing", None]}) == -1
    assert value({"$cmp": ["$missing", "$missing"]}) == 0


def test_add_to_set_keeps_one_of_equal_values() -> None:
    docs = [{"_id": i, "v": v} for i, v in enumerate([1, 1.0, Int64(1), 2, "1"])]
    (out,) = run(docs, [{"$group": {"_id": None, "s": {"$addToSet": "$v"}}}])
    assert sorted(map(str, out["s"])) == ["1", "1", "2"]
    assert len(out["s"]) == 3


@pytest.mark.parametrize(
    "pipeline",
    [[{"$sort": {"a": {"$meta": "textScore"}}}], [{"$project": {"a": {"$meta": "textScore"}}}]],
)
def test_text_scores_are_not_evaluated_in_the_process(pipeline: Any) -> None:
    with pytest.raises(UnsupportedOperator, match=r"\$meta"):
        run([{"_id": 0}], pipeline)


def test_an_exclusion_that_names_id_true_keeps_it_and_drops_the_rest() -> None:
    docs = [{"_id": 1, "a": 1, "b": {"c": 2, "d": 3}}]
    assert run(docs, [{"$project": {"_id": True, "a": 0}}]) == [{"_id": 1, "b": {"c": 2, "d": 3}}]
    assert run(docs, [{"$project": {"b.c": 0}}]) == [{"_id": 1, "a": 1, "b": {"d": 3}}]


def test_an_unsupported_operator_is_named() -> None:
    with pytest.raises(UnsupportedOperator) as caught:
        run(
            [{"_id": 0}],
            [{"$project": {"v": {"$function": {"body": "", "args": [], "lang": "js"}}}}],
        )
    assert "$function" in str(caught.value)
