"""Merging partial groups: the merged values equal one group over all the documents."""

from __future__ import annotations

import datetime
from typing import Any

from bson.decimal128 import Decimal128
from bson.int64 import Int64

from privata_mongo.core.mql.group_merge import (
    GroupTable,
    average,
    first_or_last,
    min_or_max,
    pushed,
    total,
)
from privata_mongo.core.mql.pipeline import run_pipeline

NOW = datetime.datetime(2024, 5, 17, 12, 30, 45)


def merged(
    merge: Any, partials: list[dict[str, Any]], identity: dict[str, Any] | None = None
) -> Any:
    table = GroupTable(["v"], [merge])
    for partial in partials:
        table.add(None, partial, identity)
    return table.documents()[0]["v"]


def grouped(documents: list[dict[str, Any]], accumulator: dict[str, Any]) -> Any:
    (group,) = run_pipeline(documents, [{"$group": {"_id": None, "v": accumulator}}], now=NOW)
    return group["v"]


def test_partial_sums_keep_the_servers_number_types() -> None:
    assert merged(total("s"), [{"s": 2**31 - 1}, {"s": 1}]) == Int64(2**31)
    assert type(merged(total("s"), [{"s": 2**31 - 1}, {"s": 1}])) is Int64
    assert type(merged(total("s"), [{"s": 1}, {"s": 2}])) is int
    assert merged(total("s"), [{"s": Int64(2**63 - 1)}, {"s": 1}]) == float(2**63)
    assert merged(total("s"), [{"s": 0.1}, {"s": 0.2}]) == grouped(
        [{"x": 0.1}, {"x": 0.2}], {"$sum": "$x"}
    )
    assert merged(total("s"), [{"s": Decimal128("1.1")}, {"s": 1}]) == Decimal128("2.1")


def test_an_identity_value_counts_once_per_document_of_the_partial_group() -> None:
    identity = {"n": 2**30, "f": 0.1}
    assert merged(total(None, "n", "c"), [{"c": 2}], identity) == grouped(
        [{"x": 2**30}] * 2, {"$sum": "$x"}
    )
    assert merged(total(None, "f", "c"), [{"c": 3}], identity) == grouped(
        [{"x": 0.1}] * 3, {"$sum": "$x"}
    )
    assert merged(pushed(None, "n", "c", unique=False), [{"c": 2}], identity) == [2**30] * 2
    assert merged(pushed(None, "n", "c", unique=True), [{"c": 2}, {"c": 1}], identity) == [2**30]
    assert merged(total(None, "missing", "c"), [{"c": 2}], identity) == 0


def test_averages_divide_summed_totals_by_summed_counts_of_numbers() -> None:
    assert merged(average("s", "c"), [{"s": 3, "c": 2}, {"s": 4.5, "c": 1}]) == 2.5
    assert merged(average("s", "c"), [{"s": 0, "c": 0}]) is None
    assert merged(average(None, "c", "n"), [{"c": 4}], {"n": 3}) == 3.0
    assert merged(average(None, "c", "n"), [{"c": 4}], {"n": "three"}) is None


def test_minimum_and_maximum_ignore_null_and_compare_in_bson_order() -> None:
    partials = [{"m": None}, {"m": "b"}, {"m": 5}]
    assert merged(min_or_max("m", None, minimum=True), partials) == 5
    assert merged(min_or_max("m", None, minimum=False), partials) == "b"
    assert merged(min_or_max("m", None, minimum=True), [{"m": None}]) is None


def test_arrays_are_concatenated_or_united() -> None:
    partials = [{"a": [1, 2]}, {"a": [2, 1.0, None]}]
    assert merged(pushed("a", None, None, unique=False), partials) == [1, 2, 2, 1.0, None]
    assert merged(pushed("a", None, None, unique=True), partials) == [1, 2, None]


def test_first_and_last_follow_the_partial_groups_sort_keys() -> None:
    order = [("visits", -1), ("age", 1)]
    partials = [
        {"v": "b", "k1": 5, "k2": 1},
        {"v": "a", "k1": 9, "k2": 3},
        {"v": "c", "k1": 9, "k2": 2},
        {"v": "d", "k1": 1, "k2": 0},
    ]
    assert merged(first_or_last("v", None, ["k1", "k2"], order, "$first"), partials) == "c"
    assert merged(first_or_last("v", None, ["k1", "k2"], order, "$last"), partials) == "d"


def test_groups_are_found_by_mongodb_equality_in_order_of_first_appearance() -> None:
    table = GroupTable(["n"], [total("c")])
    for key in (1, "a", 1.0, {"x": 1}, {"x": 1.0}, "a"):
        table.add(key, {"c": 1}, None)
    assert table.documents() == [
        {"_id": 1, "n": 2},
        {"_id": "a", "n": 2},
        {"_id": {"x": 1}, "n": 2},
    ]
