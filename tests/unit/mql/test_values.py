from __future__ import annotations

import copy
import datetime
import functools
import itertools
import pickle
import re
import uuid
from typing import Any

import mongomock
import pytest
from bson.binary import Binary
from bson.code import Code
from bson.datetime_ms import DatetimeMS
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from privata_mongo.core.failures import OperationFailed
from privata_mongo.core.mql.values import (
    MISSING,
    UnsupportedOperator,
    compare,
    equal,
    lookup,
    sort_documents,
    sort_key,
    type_rank,
)

NAN = float("nan")
EPOCH = datetime.datetime(1970, 1, 1)

# One value of each BSON type, in MongoDB's comparison/sort order (lowest first).
TYPE_ORDER: list[Any] = [
    MinKey(),
    None,
    5,
    "text",
    {"a": 1},
    [1],
    b"\x00",
    ObjectId("000000000000000000000001"),
    False,
    EPOCH,
    Timestamp(1, 1),
    re.compile("a"),
    Code("x"),
    Code("x", {"s": 1}),
    MaxKey(),
]


def ordered(values: list[Any]) -> list[Any]:
    return sorted(values, key=functools.cmp_to_key(compare))


def test_type_ranks_follow_the_server_order() -> None:
    ranks = [type_rank(value) for value in TYPE_ORDER]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)


def test_compare_orders_values_of_every_type() -> None:
    assert ordered(list(reversed(TYPE_ORDER))) == TYPE_ORDER
    for low, high in itertools.pairwise(TYPE_ORDER):
        assert compare(low, high) == -1
        assert compare(high, low) == 1


@pytest.mark.parametrize("value", [1, 1.0, Int64(1), Decimal128("1"), Decimal128("1.000")])
def test_numbers_of_every_type_are_equal(value: Any) -> None:
    assert type_rank(value) == type_rank(1)
    assert equal(value, 1)
    assert compare(value, 2.5) == -1
    assert compare(Decimal128("0.5"), value) == -1


def test_numbers_compare_exactly_across_types() -> None:
    assert compare(2**53 + 1, float(2**53)) == 1  # a double cannot hold 2**53 + 1
    assert compare(Int64(2**62), float(2**62)) == 0
    assert compare(Decimal128("0.1"), 0.1) == -1  # the double 0.1 is 0.1000000000000000055…
    assert equal(-0.0, 0)
    assert compare(Decimal128("-Infinity"), -1e308) == -1
    assert compare(float("inf"), Decimal128("1E+6000")) == 1


def test_nan_equals_nan_and_sorts_below_every_number() -> None:
    assert equal(NAN, NAN)
    assert equal(NAN, Decimal128("NaN"))
    assert compare(NAN, float("-inf")) == -1
    assert compare(Decimal128("NaN"), -(2**63)) == -1
    assert compare(NAN, None) == 1  # still a number: above null
    assert ordered([3, -1.5, NAN, float("-inf")])[0] is NAN


def test_strings_compare_by_utf8_bytes_without_collation() -> None:
    assert ordered(["é", "a", "Z", "😀", "中", "ab", ""]) == ["", "Z", "a", "ab", "é", "中", "😀"]
    assert not equal("a", "A")


def test_booleans_are_not_numbers() -> None:
    assert not equal(True, 1)
    assert not equal(False, 0)
    assert compare(1, True) == -1
    assert compare(False, True) == -1


def test_embedded_documents_compare_in_field_order() -> None:
    assert equal({"a": 1, "b": 2.0}, {"a": 1.0, "b": Int64(2)})
    assert not equal({"a": 1, "b": 2}, {"b": 2, "a": 1})
    assert compare({"a": 1}, {"a": 1, "b": 0}) == -1
    assert compare({}, {"a": MinKey()}) == -1
    # The element's type is compared before the field name: a number before a string …
    assert compare({"b": 1}, {"a": "x"}) == -1
    # … then the field name, then the value.
    assert compare({"a": 9}, {"b": 1}) == -1
    assert compare({"a": {"x": 1}}, {"a": {"x": 2}}) == -1


def test_arrays_compare_element_wise_then_by_length() -> None:
    assert compare([1, 2], [1, 3]) == -1
    assert compare([1], [1, 0]) == -1
    assert compare([], [MinKey()]) == -1
    assert compare([2], [1, 5]) == 1
    assert equal([1, [2.0]], [1.0, [Int64(2)]])
    assert equal((1, 2), [1, 2])


def test_binary_data_compares_by_length_then_subtype_then_bytes() -> None:
    assert compare(b"\xff", b"\x00\x00") == -1
    assert compare(Binary(b"a", 0), Binary(b"a", 5)) == -1
    assert compare(b"a", b"b") == -1
    assert equal(b"a", Binary(b"a", 0))
    value = uuid.UUID(int=1)
    assert equal(value, Binary(value.bytes, 4))
    assert compare(Binary(value.bytes, 3), value) == -1


def test_object_ids_timestamps_and_dates_compare_by_value() -> None:
    assert compare(ObjectId("000000000000000000000002"), ObjectId("0000000000000000000000ff")) == -1
    assert compare(Timestamp(1, 9), Timestamp(2, 0)) == -1
    assert compare(Timestamp(1, 1), Timestamp(1, 2)) == -1
    assert compare(EPOCH, EPOCH + datetime.timedelta(milliseconds=1)) == -1
    assert compare(datetime.datetime(1969, 12, 31), EPOCH) == -1


def test_dates_compare_as_the_utc_milliseconds_the_driver_stores() -> None:
    plus_one = datetime.timezone(datetime.timedelta(hours=1))
    assert equal(datetime.datetime(2020, 1, 1, 1, tzinfo=plus_one), datetime.datetime(2020, 1, 1))
    assert equal(EPOCH.replace(microsecond=1500), EPOCH.replace(microsecond=1999))
    assert not equal(EPOCH.replace(microsecond=999), EPOCH.replace(microsecond=1000))
    assert equal(DatetimeMS(1), EPOCH.replace(microsecond=1000))


def test_regexes_compare_by_pattern_then_options() -> None:
    assert equal(re.compile("a"), Regex("a", "u"))  # the driver sends Python patterns with "u"
    assert compare(Regex("a", "i"), Regex("a", "m")) == -1
    assert compare(Regex("a", "m"), Regex("b", "i")) == -1
    assert not equal(re.compile("a", re.IGNORECASE), re.compile("a"))


def test_code_is_not_a_string() -> None:
    assert not equal(Code("x"), "x")
    assert compare(Code("a"), Code("b")) == -1
    assert compare(Code("a", {"x": 1}), Code("a", {"x": 2})) == -1


def test_dbref_compares_as_its_document() -> None:
    ref = DBRef("things", 1)
    assert equal(ref, {"$ref": "things", "$id": 1})
    assert type_rank(ref) == type_rank({})


def test_missing_ranks_as_null() -> None:
    assert type_rank(MISSING) == type_rank(None)
    assert equal(MISSING, None)


def test_missing_is_a_falsy_singleton() -> None:
    assert not MISSING
    assert MISSING is not None
    assert repr(MISSING) == "MISSING"
    assert copy.copy(MISSING) is MISSING
    assert copy.deepcopy({"x": MISSING})["x"] is MISSING
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING  # noqa: S301 - our own bytes


def test_unknown_python_types_have_no_order() -> None:
    with pytest.raises(TypeError, match="object"):
        type_rank(object())
    with pytest.raises(TypeError):
        compare(1, {1, 2})


# ---- lookup -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "path", "expected"),
    [
        ({"a": 1}, "a", [1]),
        ({"a": {"b": {"c": 3}}}, "a.b.c", [3]),
        ({}, "a", []),
        ({"a": None}, "a", [None]),
        ({"a": 5}, "a.b", []),
        ({"a": [1, 2]}, "a", [1, 2, [1, 2]]),
        ({"a": []}, "a", [[]]),
        ({"a": [{"b": 1}, {"b": [2, 3]}]}, "a.b", [1, 2, 3, [2, 3]]),
        ({"a": [{"b": 1}, {"c": 2}, 7, [{"b": 9}]]}, "a.b", [1]),
        ({"a": [5, 6]}, "a.1", [6]),
        ({"a": [5, 6]}, "a.2", []),
        ({"a": [{"b": 1}, {"b": 2}]}, "a.1.b", [2]),
        ({"a": [[1, 2], [3]]}, "a.0.1", [2]),
        ({"a": [{"0": "field"}, "x"]}, "a.0", ["field", {"0": "field"}]),
        ({"a": [5, 6]}, "a.01", []),
        ({"a": DBRef("c", 7)}, "a.$id", [7]),
    ],
)
def test_lookup_reaches_values_as_the_query_engine(
    document: dict[str, Any], path: str, expected: list[Any]
) -> None:
    assert lookup(document, path) == expected


# ---- sort -----------------------------------------------------------------------------------


def ids(documents: list[Any]) -> list[Any]:
    return [document["_id"] for document in documents]


def test_sort_treats_missing_as_null_and_keeps_ties_in_input_order() -> None:
    docs = [{"_id": 1, "k": None}, {"_id": 2}, {"_id": 3, "k": 0}, {"_id": 4, "k": None}]
    assert ids(sort_documents(docs, [("k", 1)])) == [1, 2, 4, 3]
    assert ids(sort_documents(docs, [("k", -1)])) == [3, 1, 2, 4]


def test_sort_orders_across_types() -> None:
    scalars = [value for value in TYPE_ORDER if not isinstance(value, list)]
    docs = [{"k": value} for value in reversed(scalars)]
    assert [doc["k"] for doc in sort_documents(docs, [("k", 1)])] == scalars


def test_sort_uses_the_smallest_element_ascending_and_the_largest_descending() -> None:
    # mongomock sorts an array by its first element (here: [5, 1] as 5); MongoDB by its
    # smallest element ascending (1) and its largest descending (5).
    docs = [{"_id": "array", "k": [5, 1]}, {"_id": "two", "k": 2}, {"_id": "four", "k": 4}]
    assert ids(sort_documents(docs, [("k", 1)])) == ["array", "two", "four"]
    assert ids(sort_documents(docs, [("k", -1)])) == ["array", "four", "two"]
    mock = mongomock.MongoClient().db.c
    mock.insert_many(docs)
    assert ids(list(mock.find(sort=[("k", 1)]))) == ["two", "four", "array"]  # not MongoDB's


def test_sort_puts_an_empty_array_below_null() -> None:
    docs = [{"_id": "null", "k": None}, {"_id": "empty", "k": []}, {"_id": "one", "k": 1}]
    assert ids(sort_documents(docs, [("k", 1)])) == ["empty", "null", "one"]
    assert ids(sort_documents(docs, [("k", -1)])) == ["one", "null", "empty"]


def test_sort_through_arrays_of_documents() -> None:
    docs = [
        {"_id": 1, "a": [{"x": 3}, {"x": 1}]},
        {"_id": 2, "a": [{"x": 2}]},
        {"_id": 3, "a": [{"y": 0}, {"x": 5}]},  # the element without x gives null
        {"_id": 4, "a": [7]},  # not a document: null
    ]
    assert ids(sort_documents(docs, [("a.x", 1)])) == [3, 4, 1, 2]
    assert ids(sort_documents(docs, [("a.x", -1)])) == [3, 1, 2, 4]


def test_sort_keys_through_one_array_are_chosen_together() -> None:
    # A compound multikey key takes x and y from the same element: (1, 5) for the first
    # document, not (1, 0).
    docs = [
        {"_id": 1, "a": [{"x": 1, "y": 5}, {"x": 2, "y": 0}]},
        {"_id": 2, "a": [{"x": 1, "y": 3}]},
    ]
    assert ids(sort_documents(docs, [("a.x", 1), ("a.y", 1)])) == [2, 1]


def test_sort_through_parallel_arrays_fails_as_on_the_server() -> None:
    docs = [{"_id": 1, "a": [1, 2], "b": [3, 4]}]
    with pytest.raises(OperationFailed, match="parallel arrays") as failure:
        sort_documents(docs, [("a", 1), ("b", 1)])
    assert failure.value.code == 2
    assert ids(sort_documents([{"_id": 1, "a": [1, 2], "b": 3}], [("a", 1), ("b", 1)])) == [1]


def test_sort_by_several_keys_and_by_position() -> None:
    docs = [{"_id": 1, "a": 1, "b": 1}, {"_id": 2, "a": 0, "b": 2}, {"_id": 3, "a": 1, "b": 2}]
    assert ids(sort_documents(docs, [("a", -1), ("b", -1)])) == [3, 1, 2]
    assert ids(sort_documents(docs, [("$natural", -1)])) == [3, 2, 1]
    assert ids(sort_documents(docs, [("a", 1), ("$natural", -1)])) == [2, 3, 1]
    assert ids(sort_documents(docs, [])) == [1, 2, 3]


def test_sort_key_works_with_sorted() -> None:
    docs = [{"n": 2.5}, {"n": Decimal128("1")}, {"n": NAN}, {}]
    spec = [("n", 1)]
    assert [doc.get("n") for doc in sorted(docs, key=lambda d: sort_key(d, spec))][1:] == [
        NAN,
        Decimal128("1"),
        2.5,
    ]
    assert sort_key({"n": 1}, spec) == sort_key({"n": 1.0}, spec)


@pytest.mark.parametrize("direction", [0, 2, "asc", True, -1.5])
def test_sort_rejects_a_bad_direction(direction: Any) -> None:
    with pytest.raises(OperationFailed) as failure:
        sort_documents([{"a": 1}], [("a", direction)])
    assert failure.value.code == 15975


def test_sort_by_metadata_cannot_run_in_the_process() -> None:
    with pytest.raises(UnsupportedOperator) as failure:
        sort_key({}, [("score", {"$meta": "textScore"})])  # type: ignore[list-item]
    assert failure.value.operator == "$meta"


# ---- properties ---------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-3, 3).map(Int64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(min_value=-(10**20), max_value=10**20, allow_nan=False, places=3).map(
        lambda d: Decimal128(str(d))  # Decimal128 holds 34 digits: bounded so every draw fits
    ),
    st.just(Decimal128("NaN")),
    st.text(max_size=3),
    st.binary(max_size=2),
    st.integers(0, 3).map(lambda n: ObjectId(f"{n:024x}")),
    st.integers(-3, 3).map(lambda ms: EPOCH + datetime.timedelta(milliseconds=ms)),
    st.sampled_from([MinKey(), MaxKey(), Timestamp(1, 2), Regex("a", "i"), Code("c")]),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.sampled_from("ab"), children, max_size=2)
    ),
    max_leaves=6,
)


@given(VALUES, VALUES, VALUES)
def test_compare_is_a_total_order(a: Any, b: Any, c: Any) -> None:
    assert compare(a, a) == 0
    assert compare(a, b) == -compare(b, a)
    assert equal(a, b) is (compare(a, b) == 0)
    if compare(a, b) <= 0 and compare(b, c) <= 0:
        assert compare(a, c) <= 0
    if type_rank(a) != type_rank(b):
        assert compare(a, b) == (-1 if type_rank(a) < type_rank(b) else 1)
