"""The in-process aggregation pipeline, stage by stage and operator by operator.

Expected values are MongoDB's, taken from the server source (src/mongo/db/exec/expression/
evaluate_*.cpp, src/mongo/db/pipeline/accumulator_*.cpp, projection_parser.cpp,
projection_node.cpp, document_source_unwind.cpp) and the manual's operator pages. The process
evaluates what push-down leaves (``core.pushdown``): the stages below, field paths, literals,
conditionals and comparisons; every other stage or operator is unsupported. Tests named
``test_mongomock_deviation_*`` pin MongoDB's behaviour where mongomock differs (the
differential test excludes those shapes).
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from bson.decimal128 import Decimal128
from bson.int64 import Int64

from privata_mongo.core.failures import OperationFailed
from privata_mongo.core.mql.pipeline import pipeline_supported, run_pipeline
from privata_mongo.core.mql.values import UnsupportedOperator

NOW = datetime.datetime(2024, 5, 17, 12, 30, 45, 123000)
DATE = datetime.datetime(2021, 3, 7, 22, 5, 9, 45000)  # a Sunday


def run(docs: list[dict[str, Any]], pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return run_pipeline(docs, pipeline, now=NOW)


def value(expression: Any, doc: dict[str, Any] | None = None) -> Any:
    """The value of one expression over one document (absent when it is missing)."""
    out = run([{"_id": 0, **(doc or {})}], [{"$project": {"_id": 0, "v": expression}}])
    return out[0].get("v", "<missing>")


def fails(pipeline: list[dict[str, Any]], docs: list[dict[str, Any]] | None = None) -> int:
    with pytest.raises(OperationFailed) as caught:
        run(docs if docs is not None else [{"_id": 0, "secret": "s3cr3t-value"}], pipeline)
    assert "s3cr3t-value" not in str(caught.value)
    return caught.value.code


# ---- field paths and variables ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "doc", "expected"),
    [
        ("$a", {"a": 1}, 1),
        ("$a", {}, "<missing>"),
        ("$a.b", {"a": {"b": 2}}, 2),
        ("$a.b", {"a": [{"b": 1}, 5, {"c": 1}, {"b": [2]}, [{"b": 9}]]}, [1, [2]]),
        ("$a.b", {"a": 5}, "<missing>"),
        ("$a.0", {"a": [7, 8]}, []),  # numeric components do not index arrays
        ("$$ROOT.a", {"a": 3}, 3),
        ("$$CURRENT.a", {"a": 3}, 3),
        ("$$NOW", {}, NOW),
        ("$$REMOVE", {}, "<missing>"),
    ],
)
def test_field_paths_read_like_expression_field_path(
    path: str, doc: dict[str, Any], expected: Any
) -> None:
    assert value(path, doc) == expected


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ("$$nope", 17276),
        ("$", 16872),
        ("$a..b", 15998),
        ({"$and": [{"$and": [1], "$or": 1}]}, 15983),
        ({"a": 1, "$b": 2}, 16410),
        ({"$not": [1, 2]}, 16020),
    ],
)
def test_malformed_expressions_fail_with_server_codes(expression: Any, code: int) -> None:
    assert fails([{"$addFields": {"v": expression}}]) == code


def test_operators_and_variables_the_process_lacks_are_unsupported() -> None:
    for expression in ({"$rand": {}}, {"$add": [1, 2]}, {"$toUpper": "a"}, {"$nope": 1}):
        with pytest.raises(UnsupportedOperator):
            run([{"_id": 0}], [{"$project": {"v": expression}}])
    with pytest.raises(UnsupportedOperator):
        run([{"_id": 0}], [{"$project": {"v": {"$unknownOp": 1}}}])
    with pytest.raises(UnsupportedOperator):
        run([{"_id": 0}], [{"$project": {"v": "$$CLUSTER_TIME"}}])


def test_array_and_object_literals_handle_missing() -> None:
    assert value(["$a", "$b"], {"a": 1}) == [1, None]
    assert value({"x": "$a", "y": "$b"}, {"a": 1}) == {"x": 1}
    assert value({"$literal": {"$add": 1}}) == {"$add": 1}


# ---- comparison, boolean, conditional ------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"$eq": [1, 1.0]}, True),
        ({"$eq": ["$missing", None]}, False),  # missing is not null in expressions
        ({"$lt": ["$missing", None]}, True),  # it ranks below null
        ({"$cmp": ["a", "b"]}, -1),
        ({"$gt": ["a", 5]}, True),  # strings above numbers
        ({"$and": [1, "x", []]}, True),
        ({"$and": []}, True),
        ({"$or": [0, None, "$missing"]}, False),
        ({"$not": [0]}, True),
        ({"$cond": [float("nan"), "y", "n"]}, "y"),  # NaN is true
        ({"$cond": {"if": None, "then": "y", "else": "n"}}, "n"),
        ({"$ifNull": ["$missing", None, 3]}, 3),
        ({"$ifNull": ["$missing", "$missing2"]}, "<missing>"),
        ({"$switch": {"branches": [{"case": False, "then": 1}], "default": 2}}, 2),
        ({"$cond": [True, 1, {"$switch": {"branches": [{"case": 0, "then": 1}]}}]}, 1),
    ],
)
def test_logic(expression: Any, expected: Any) -> None:
    assert value(expression) == expected


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ({"$switch": {"branches": [{"case": False, "then": 1}]}}, 40066),
        ({"$switch": {"branches": []}}, 40068),
        ({"$cond": {"if": 1, "then": 2}}, 17082),
        ({"$ifNull": [1]}, 1257300),
        ({"$eq": [1]}, 16020),
    ],
)
def test_logic_failures(expression: Any, code: int) -> None:
    assert fails([{"$project": {"v": expression}}]) == code


# ---- $project, $addFields, $unset ---------------------------------------------------------

DOC = {"_id": 1, "a": [1, {"b": 2, "c": 3}, [{"b": 4}]], "x": {"y": 1, "z": 2}, "s": "v"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"s": 1}, {"_id": 1, "s": "v"}),
        ({"s": 1, "_id": 0}, {"s": "v"}),
        ({"a.b": 1}, {"_id": 1, "a": [{"b": 2}, [{"b": 4}]]}),  # scalars in arrays dropped
        ({"a.b": 0}, {"_id": 1, "a": [1, {"c": 3}, [{}]], "x": {"y": 1, "z": 2}, "s": "v"}),
        ({"x": {"y": 1}}, {"_id": 1, "x": {"y": 1}}),
        ({"n": "$x.y", "s": 1}, {"_id": 1, "s": "v", "n": 1}),  # computed after projected
        ({"n": "$missing"}, {"_id": 1}),
        ({"s.t": {"$literal": 5}}, {"_id": 1, "s": {"t": 5}}),  # replaces a scalar
        ({"_id": 0}, {"a": DOC["a"], "x": DOC["x"], "s": "v"}),
        ({"_id": "$s", "s": 1}, {"s": "v", "_id": "v"}),
        ({"n": "literal"}, {"_id": 1, "n": "literal"}),
        ({"s": 5}, {"_id": 1, "s": "v"}),  # any non-zero number includes
    ],
)
def test_project(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    out = run([DOC], [{"$project": spec}])
    assert out == [expected]
    assert list(out[0]) == list(expected)


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ({}, 51272),
        ({"a": 1, "b": 0}, 31254),
        ({"a": 0, "b": 1}, 31253),
        ({"a": 0, "b": "$x"}, 31310),
        ({"a": 0, "b": {"$literal": 1}}, 31252),
        ({"a": 1, "a.b": 1}, 31249),
        ({"a.b": 1, "a": 1}, 31250),
        ({"a": {}}, 51270),
        ({"a.$": 1}, 31324),
        ({"$a": 1}, 16410),
    ],
)
def test_project_failures(spec: dict[str, Any], code: int) -> None:
    assert fails([{"$project": spec}]) == code


def test_project_computed_fields_through_arrays_reach_every_element() -> None:
    out = run([{"_id": 1, "a": [1, {"b": 2}]}], [{"$project": {"a.c": {"$literal": 0}}}])
    assert out == [{"_id": 1, "a": [{"c": 0}, {"c": 0}]}]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"n": 1}, {"_id": 1, "s": "v", "x": {"y": 1}, "n": 1}),
        ({"x.w": "$s"}, {"_id": 1, "s": "v", "x": {"y": 1, "w": "v"}}),
        ({"x": {"w": 2}}, {"_id": 1, "s": "v", "x": {"y": 1, "w": 2}}),  # merges
        ({"s": "$$REMOVE"}, {"_id": 1, "x": {"y": 1}}),
        ({"s": "$missing"}, {"_id": 1, "x": {"y": 1}}),
        ({"s": {"$ifNull": ["$nope", "!"]}}, {"_id": 1, "s": "!", "x": {"y": 1}}),
    ],
)
def test_add_fields(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    doc = {"_id": 1, "s": "v", "x": {"y": 1}}
    for stage in ("$addFields", "$set"):
        out = run([doc], [{stage: spec}])
        assert out == [expected]
        assert list(out[0]) == list(expected)


@pytest.mark.parametrize(
    ("spec", "code"),
    [({}, 40177), ({"a": {}}, 40180), ({"a": 1, "a.b": 2}, 40176), ({"a": {"b.c": 1}}, 40183)],
)
def test_add_fields_failures(spec: dict[str, Any], code: int) -> None:
    assert fails([{"$addFields": spec}]) == code


def test_unset() -> None:
    doc = {"_id": 1, "a": 1, "b": {"c": 1, "d": 2}}
    assert run([doc], [{"$unset": ["a", "b.c"]}]) == [{"_id": 1, "b": {"d": 2}}]
    assert run([doc], [{"$unset": "_id"}]) == [{"a": 1, "b": {"c": 1, "d": 2}}]
    assert fails([{"$unset": 1}]) == 31002
    assert fails([{"$unset": ["a", 1]}]) == 31120


def test_inputs_are_not_modified() -> None:
    doc = {"_id": 1, "a": {"b": [1, 2]}}
    run([doc], [{"$addFields": {"a.c": 1}}, {"$unwind": "$a.b"}, {"$unset": "a"}])
    assert doc == {"_id": 1, "a": {"b": [1, 2]}}


# ---- document stages ----------------------------------------------------------------------

DOCS = [
    {"_id": 1, "k": "x", "n": 5, "t": [1, 2]},
    {"_id": 2, "k": "y", "n": 1.5, "t": []},
    {"_id": 3, "k": "x", "t": None},
    {"_id": 4, "k": "y", "n": None, "t": 7},
]


def test_match_sort_skip_limit() -> None:
    out = run(DOCS, [{"$match": {"k": "x"}}, {"$sort": {"n": -1}}])
    assert [doc["_id"] for doc in out] == [1, 3]
    out = run(DOCS, [{"$sort": {"n": 1, "_id": -1}}, {"$skip": 1}, {"$limit": 2}])
    assert [doc["_id"] for doc in out] == [3, 2]
    out = run(DOCS, [{"$match": {"$expr": {"$gt": ["$n", 2]}}}])
    assert [doc["_id"] for doc in out] == [1]


def test_unwind_options() -> None:
    out = run(
        DOCS,
        [{"$unwind": {"path": "$t", "includeArrayIndex": "i", "preserveNullAndEmptyArrays": True}}],
    )
    assert [(doc["_id"], doc.get("t", "<missing>"), doc["i"]) for doc in out] == [
        (1, 1, Int64(0)),
        (1, 2, Int64(1)),
        (2, "<missing>", None),
        (3, None, None),
        (4, 7, None),
    ]
    assert [doc["_id"] for doc in run(DOCS, [{"$unwind": "$t"}])] == [1, 1, 4]
    nested = run([{"_id": 1, "a": {"b": [1, 2]}}], [{"$unwind": "$a.b"}])
    assert nested == [{"_id": 1, "a": {"b": 1}}, {"_id": 1, "a": {"b": 2}}]


def test_replace_root_and_with() -> None:
    assert run([{"_id": 1, "x": {"y": 1}}], [{"$replaceRoot": {"newRoot": "$x"}}]) == [{"y": 1}]
    assert run([{"_id": 1, "x": {"y": 1}}], [{"$replaceWith": {"z": "$x.y"}}]) == [{"z": 1}]
    assert fails([{"$replaceRoot": {"newRoot": "$secret"}}]) == 40228
    assert fails([{"$replaceRoot": {}}]) == 40414


# ---- $group and accumulators --------------------------------------------------------------


def test_group_accumulators() -> None:
    out = run(
        DOCS,
        [
            {
                "$group": {
                    "_id": "$k",
                    "sum": {"$sum": "$n"},
                    "avg": {"$avg": "$n"},
                    "min": {"$min": "$n"},
                    "max": {"$max": "$n"},
                    "first": {"$first": "$n"},
                    "last": {"$last": "$n"},
                    "push": {"$push": "$n"},
                    "set": {"$addToSet": "$k"},
                    "count": {"$count": {}},
                }
            }
        ],
    )
    assert out == [
        {
            "_id": "x",
            "sum": 5,
            "avg": 5.0,
            "min": 5,
            "max": 5,
            "first": 5,
            "last": None,
            "push": [5],
            "set": ["x"],
            "count": 2,
        },
        {
            "_id": "y",
            "sum": 1.5,
            "avg": 1.5,
            "min": 1.5,
            "max": 1.5,
            "first": 1.5,
            "last": None,
            "push": [1.5, None],
            "set": ["y"],
            "count": 2,
        },
    ]


def test_group_keys_use_mongodb_equality_and_first_value() -> None:
    docs = [{"_id": 1, "k": 1}, {"_id": 2, "k": 1.0}, {"_id": 3}, {"_id": 4, "k": None}]
    out = run(docs, [{"$group": {"_id": "$k", "c": {"$sum": 1}}}])
    assert out == [{"_id": 1, "c": 2}, {"_id": None, "c": 2}]
    assert type(out[0]["_id"]) is int
    out = run(docs, [{"$group": {"_id": {"a": "$k"}, "c": {"$sum": 1}}}])
    assert out == [{"_id": {"a": 1}, "c": 2}, {"_id": {}, "c": 1}, {"_id": {"a": None}, "c": 1}]


def test_sum_and_avg_types() -> None:
    docs = [{"_id": i, "n": v} for i, v in enumerate([2**31 - 1, 1, "x", Decimal128("0.5")])]
    out = run(docs[:2], [{"$group": {"_id": None, "s": {"$sum": "$n"}}}])
    assert out[0]["s"] == Int64(2**31)
    assert type(out[0]["s"]) is Int64
    out = run(docs, [{"$group": {"_id": None, "s": {"$sum": "$n"}, "a": {"$avg": "$n"}}}])
    assert out[0]["s"] == Decimal128("2147483648.5")
    assert run(docs[2:3], [{"$group": {"_id": None, "a": {"$avg": "$n"}}}])[0]["a"] is None


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ({"c": {"$sum": 1}}, 15955),
        ({"_id": None, "c": 1}, 40234),
        ({"_id": None, "c.d": {"$sum": 1}}, 40235),
        ({"_id": None, "c": {"$sum": 1, "$max": 1}}, 40238),
        ({"_id": None, "c": {"$sum": [1, 2]}}, 40237),
        ({"_id": None, "c": {"$count": 1}}, 14),
    ],
)
def test_group_failures(spec: dict[str, Any], code: int) -> None:
    assert fails([{"$group": spec}]) == code


def test_count_and_sort_by_count() -> None:
    assert run(DOCS, [{"$count": "n"}]) == [{"n": 4}]
    assert run([], [{"$count": "n"}]) == []
    assert run([*DOCS, {"_id": 5, "k": "x"}], [{"$sortByCount": "$k"}]) == [
        {"_id": "x", "count": 3},
        {"_id": "y", "count": 2},
    ]


# ---- pipeline level -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pipeline", "code"),
    [
        ([{"$match": {}, "$sort": {"a": 1}}], 40323),
        ([{"$limit": 0}], 15958),
        ([{"$limit": -1}], 5107201),
        ([{"$skip": "x"}], 5107200),
        ([{"$sort": {"a": 2}}], 15975),
        ([{"$sort": {"a": "x"}}], 15974),
        ([{"$sort": {}}], 15976),
        ([{"$unwind": "t"}], 28818),
        ([{"$unwind": {"path": "$t", "bad": 1}}], 28811),
        ([{"$count": "$x"}], 40158),
        ([{"$match": 1}], 15959),
    ],
)
def test_pipeline_failures(pipeline: list[dict[str, Any]], code: int) -> None:
    assert fails(pipeline) == code


@pytest.mark.parametrize(
    ("pipeline", "name"),
    [
        ([{"$match": {}}, {"$lookup": {"from": "x"}}], "$lookup"),
        ([{"$sample": {"size": 1}}], "$sample"),
        ([{"$out": "x"}], "$out"),
        ([{"$project": {"v": {"$dateAdd": {}}}}], "$dateAdd"),
        ([{"$match": {"$where": "1"}}], "$where"),
        ([{"$facet": {"a": [{"$limit": 1}]}}], "$facet"),
        ([{"$bucket": {"groupBy": "$n", "boundaries": [0, 2]}}], "$bucket"),
        ([{"$group": {"_id": None, "s": {"$stdDevPop": "$n"}}}], "$stdDevPop"),
    ],
)
def test_stages_the_process_lacks_are_unsupported(
    pipeline: list[dict[str, Any]], name: str
) -> None:
    assert pipeline_supported(pipeline) == name
    with pytest.raises(UnsupportedOperator) as caught:
        run([{"_id": 0}], pipeline)
    assert caught.value.operator == name


def test_pipeline_supported_accepts_what_runs() -> None:
    assert pipeline_supported([{"$match": {"a": 1}}, {"$group": {"_id": "$a"}}]) is None
    assert pipeline_supported([{"$limit": "x"}]) is None  # malformed: run_pipeline fails natively
    assert pipeline_supported([{"$nope": 1}]) == "$nope"


# ---- mongomock deviations, pinned to MongoDB ----------------------------------------------


def test_mongomock_deviation_count_of_nothing_is_no_document() -> None:
    # MongoDB manual, $count (aggregation): "$count is equivalent to {$group: {_id: null,
    # count: {$sum: 1}}}, {$project: {_id: 0}}"; $group emits no group for no input.
    assert run([], [{"$count": "n"}]) == []
    assert run([], [{"$group": {"_id": None, "c": {"$sum": 1}}}]) == []


def test_mongomock_deviation_missing_is_not_null_in_expressions() -> None:
    # canonicalizeBSONType (bsontypes.h): EOO/missing ranks 0, null 5; ExpressionCompare
    # uses the ValueComparator, so {$eq: ["$missing", null]} is false.
    assert value({"$eq": ["$missing", None]}) is False


def test_mongomock_deviation_sum_of_doubles_is_correctly_rounded() -> None:
    # accumulator_sum.cpp sums doubles in a DoubleDoubleSummation; naive addition gives
    # 0.6000000000000001 here.
    docs = [{"_id": i, "n": 0.1} for i in range(3)] + [{"_id": 3, "n": 0.3}]
    assert run(docs, [{"$group": {"_id": None, "s": {"$sum": "$n"}}}])[0]["s"] == 0.6


def test_mongomock_deviation_falsy_group_key_is_a_key() -> None:
    # document_source_group.cpp groups by the value of _id; 0 is a value like any other.
    assert run([{"_id": 1}], [{"$group": {"_id": 0, "c": {"$sum": 1}}}]) == [{"_id": 0, "c": 1}]


def test_mongomock_deviation_first_takes_a_missing_value() -> None:
    # accumulator_first.cpp: "can't use pValue.missing() since we want the first value even if
    # missing"; DocumentSourceGroup::makeDocument then outputs null.
    docs = [{"_id": 0}, {"_id": 1, "n": 0}]
    assert run(docs, [{"$group": {"_id": None, "f": {"$first": "$n"}}}])[0]["f"] is None


def test_mongomock_deviation_project_numbers_and_literals() -> None:
    # projection_parser.cpp, isInclusionOrExclusionType: any number or bool is an inclusion
    # (trueValue) or exclusion; other literals are expressions, which make an inclusion
    # projection that keeps _id.
    assert run([{"_id": 0}], [{"$project": {"c": -1}}]) == [{"_id": 0}]
    assert run([{"_id": 0}], [{"$project": {"c": ""}}]) == [{"_id": 0, "c": ""}]


def test_mongomock_deviation_add_fields_of_missing_removes_the_field() -> None:
    # projection_node.cpp, applyExpressions: outputDoc->setField(field, expr->evaluate(...));
    # a missing Value is not serialized, so the existing field disappears (as with $$REMOVE).
    assert run([{"_id": 0, "c": 1}], [{"$addFields": {"c": "$nope"}}]) == [{"_id": 0}]


def test_mongomock_deviation_single_argument_in_array() -> None:
    # ExpressionNary::parseArguments: a single argument may be wrapped in an array, so
    # {$not: [x]} is {$not: x}.
    assert value({"$not": [False]}) is True


def test_now_is_the_given_instant_for_every_document() -> None:
    out = run([{"_id": 1}, {"_id": 2}], [{"$addFields": {"t": "$$NOW"}}])
    assert [doc["t"] for doc in out] == [NOW, NOW]


@pytest.mark.parametrize(
    ("pipeline", "code"),
    [
        ([{"$unwind": 5}], 15981),
        ([{"$unwind": {"includeArrayIndex": "i"}}], 28812),
        ([{"$unwind": {"path": "$t", "includeArrayIndex": "$i"}}], 28822),
        ([{"$sortByCount": "k"}], 40148),
        ([{"$group": 1}], 15947),
        ([{"$replaceWith": "$secret"}], 40228),
    ],
)
def test_more_stage_and_operator_failures(pipeline: list[dict[str, Any]], code: int) -> None:
    assert fails(pipeline) == code


def test_group_output_is_in_order_of_first_appearance() -> None:
    docs = [{"_id": i, "k": k} for i, k in enumerate(["b", "a", "b", "c"])]
    out = run(docs, [{"$group": {"_id": "$k"}}])
    assert [doc["_id"] for doc in out] == ["b", "a", "c"]
