from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from bson.binary import Binary
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from hypothesis import given
from hypothesis import strategies as st

from privata_mongo.core.failures import OperationFailed
from privata_mongo.core.mql._bson_types import is_nan
from privata_mongo.core.mql.match import Matcher, UnsupportedOperator, compile_filter, matches
from privata_mongo.core.mql.values import compare, equal, type_rank

NAN = float("nan")


def selected(filter: dict[str, Any], *documents: dict[str, Any]) -> list[int]:
    """The positions of the documents the filter selects."""
    matcher = compile_filter(filter)
    return [i for i, document in enumerate(documents) if matcher(document)]


def failure(filter: Any) -> OperationFailed:
    with pytest.raises(OperationFailed) as raised:
        compile_filter(filter)
    return raised.value


# ---- implicit equality ----------------------------------------------------------------------


def test_equality_across_numeric_types() -> None:
    docs = [{"a": 1}, {"a": 1.0}, {"a": Int64(1)}, {"a": Decimal128("1.0")}, {"a": True}]
    assert selected({"a": 1}, *docs) == [0, 1, 2, 3]
    assert selected({"a": Decimal128("1")}, *docs) == [0, 1, 2, 3]
    # mongomock uses Python's ==, where True == 1; MongoDB never equates a bool and a number.
    assert selected({"a": True}, *docs) == [4]


def test_equality_with_an_embedded_document_is_order_sensitive() -> None:
    docs = [
        {"a": {"x": 1, "y": 2}},
        {"a": {"y": 2, "x": 1}},
        {"a": {"x": 1}},
        {"a": [{"x": 1, "y": 2}]},
    ]
    # mongomock compares dicts ignoring key order; MongoDB compares fields in order.
    assert selected({"a": {"x": 1, "y": 2}}, *docs) == [0, 3]
    assert selected({"a": {"x": 1.0, "y": Int64(2)}}, *docs) == [0, 3]


def test_empty_document_equality_does_not_match_a_missing_field() -> None:
    # mongomock's {a: {}} matches documents without a; MongoDB's does not.
    assert selected({"a": {}}, {}, {"a": {}}, {"a": [{}]}, {"a": None}) == [1, 2]


def test_equality_with_an_array_matches_the_whole_array_or_an_element() -> None:
    docs = [{"a": [1, 2]}, {"a": [[1, 2], 3]}, {"a": [2, 1]}, {"a": [1, 2, 3]}, {"a": 1}]
    assert selected({"a": [1, 2]}, *docs) == [0, 1]
    assert selected({"a": 1}, *docs) == [0, 2, 3, 4]
    assert selected({"a": []}, {"a": []}, {"a": [[]]}, {"a": [1]}, {}) == [0, 1]


def test_null_matches_missing_null_and_arrays_holding_null() -> None:
    docs = [{}, {"a": None}, {"a": [1, None]}, {"a": []}, {"a": [1]}, {"a": 0}, {"a": False}]
    assert selected({"a": None}, *docs) == [0, 1, 2]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"a": {"b": None}}, True),
        ({"a": {"c": 1}}, True),
        ({"a": [{"c": 1}]}, True),  # an embedded document without b
        ({"a": [{"b": 1}, {"b": None}]}, True),
        ({"a": [{"b": 1}]}, False),
        ({"a": [1, 2]}, False),  # no embedded document: nothing to look at
        ({"a": []}, False),
        # mongomock finds no candidate under a scalar and does not match; MongoDB reads the
        # path as missing ({a: 5} has no a.b), so null matches.
        ({"a": 5}, True),
        ({}, True),
    ],
)
def test_null_through_a_dotted_path(document: dict[str, Any], expected: bool) -> None:
    assert matches(document, {"a.b": None}) is expected
    assert matches(document, {"a.b": {"$ne": None}}) is not expected


def test_regex_values_match_strings_and_string_elements() -> None:
    docs = [{"a": "Hello"}, {"a": "hello"}, {"a": ["x", "Hello"]}, {"a": 5}, {}, {"a": None}]
    assert selected({"a": re.compile("^H")}, *docs) == [0, 2]
    assert selected({"a": re.compile("^h", re.IGNORECASE)}, *docs) == [0, 1, 2]
    assert selected({"a": Regex("^h", "i")}, *docs) == [0, 1, 2]


def test_regex_values_also_match_stored_regexes_of_the_same_source() -> None:
    docs = [{"a": Regex("^h", "i")}, {"a": Regex("^h")}, {"a": "h"}]
    assert selected({"a": Regex("^h", "i")}, *docs) == [0, 2]
    # $eq with a regex is equality of regex values, not a pattern match.
    assert selected({"a": {"$eq": Regex("^h", "i")}}, *docs) == [0]
    assert selected({"a": {"$eq": re.compile("h")}}, {"a": "h"}, {"a": re.compile("h")}) == [1]


def test_equality_of_other_types() -> None:
    oid = ObjectId("000000000000000000000001")
    when = datetime.datetime(2021, 5, 6, 7, 8, 9, 123000)
    docs = [{"a": oid}, {"a": str(oid)}, {"a": when}, {"a": b"xy"}, {"a": Binary(b"xy", 5)}]
    assert selected({"a": oid}, *docs) == [0]
    assert selected({"a": when.replace(microsecond=123456)}, *docs) == [2]  # milliseconds
    assert selected({"a": b"xy"}, *docs) == [3]
    assert selected({"a": DBRef("c", 1)}, {"a": DBRef("c", 1)}, {"a": {"$ref": "c", "$id": 1}}) == [
        0,
        1,
    ]


# ---- comparisons ----------------------------------------------------------------------------


def test_comparisons_only_match_within_a_type() -> None:
    docs = [{"a": 5}, {"a": "6"}, {"a": None}, {}, {"a": [1, 7]}, {"a": True}, {"a": 5.5}]
    assert selected({"a": {"$gt": 4}}, *docs) == [0, 4, 6]
    assert selected({"a": {"$lt": 6}}, *docs) == [0, 4, 6]
    assert selected({"a": {"$gte": "5"}}, *docs) == [1]
    assert selected({"a": {"$lte": False}}, *docs) == []


def test_each_comparison_may_be_satisfied_by_a_different_element() -> None:
    assert matches({"a": [1, 10]}, {"a": {"$gt": 4, "$lt": 6}})
    assert not matches({"a": [1, 10]}, {"a": {"$elemMatch": {"$gt": 4, "$lt": 6}}})
    # Through embedded documents too (mongomock needs one candidate to satisfy both).
    assert matches({"a": [{"b": 1}, {"b": 10}]}, {"a.b": {"$gt": 4, "$lt": 6}})


def test_comparison_with_an_array_compares_whole_arrays_and_nested_arrays() -> None:
    docs = [{"a": [2]}, {"a": [[2], 0]}, {"a": [0, 9]}, {"a": 5}]
    assert selected({"a": {"$gt": [1]}}, *docs) == [0, 1]
    assert selected({"a": {"$lt": [1]}}, *docs) == [2]


def test_null_bounds_match_missing_fields() -> None:
    docs = [{}, {"a": None}, {"a": 0}, {"a": [None]}]
    # mongomock never lets a missing field satisfy a comparison; MongoDB treats it as null.
    assert selected({"a": {"$gte": None}}, *docs) == [0, 1, 3]
    assert selected({"a": {"$lte": None}}, *docs) == [0, 1, 3]
    assert selected({"a": {"$gt": None}}, *docs) == []
    assert selected({"a": {"$lt": None}}, *docs) == []


def test_min_and_max_key_bounds_cross_types() -> None:
    docs = [{}, {"a": None}, {"a": "x"}, {"a": MaxKey()}, {"a": MinKey()}]
    assert selected({"a": {"$gt": MinKey()}}, *docs) == [0, 1, 2, 3]
    assert selected({"a": {"$lt": MaxKey()}}, *docs) == [0, 1, 2, 4]
    assert selected({"a": {"$gte": MaxKey()}}, *docs) == [3]
    assert selected({"a": MinKey()}, *docs) == [4]


def test_nan_only_matches_nan_and_inclusive_bounds() -> None:
    docs = [{"a": NAN}, {"a": Decimal128("NaN")}, {"a": float("-inf")}, {"a": 0}]
    assert selected({"a": NAN}, *docs) == [0, 1]
    assert selected({"a": {"$gte": NAN}}, *docs) == [0, 1]
    assert selected({"a": {"$lte": Decimal128("NaN")}}, *docs) == [0, 1]
    assert selected({"a": {"$gt": NAN}}, *docs) == []
    assert selected({"a": {"$lt": 1}}, *docs) == [2, 3]  # NaN is below every number, yet
    assert selected({"a": {"$gt": float("-inf")}}, *docs) == [3]


def test_comparisons_of_decimals_dates_strings_and_object_ids() -> None:
    assert matches({"a": Decimal128("0.3")}, {"a": {"$gt": 0.29999, "$lt": Int64(1)}})
    early, late = datetime.datetime(2020, 1, 1), datetime.datetime(2021, 1, 1)
    assert selected({"a": {"$gt": early}}, {"a": early}, {"a": late}, {"a": 2**40}) == [1]
    assert selected({"a": {"$lt": "b"}}, {"a": "B"}, {"a": "a"}, {"a": "é"}, {"a": "ba"}) == [0, 1]
    low, high = ObjectId("000000000000000000000001"), ObjectId("000000000000000000000002")
    assert selected({"a": {"$lte": low}}, {"a": low}, {"a": high}) == [0]


def test_ne_excludes_documents_with_any_equal_element() -> None:
    docs = [{"a": 1}, {"a": [1, 2]}, {"a": [2]}, {}, {"a": None}]
    assert selected({"a": {"$ne": 1}}, *docs) == [2, 3, 4]
    assert selected({"a": {"$ne": None}}, *docs) == [0, 1, 2]
    assert selected({"a": {"$ne": [1, 2]}}, *docs) == [0, 2, 3, 4]


# ---- $in / $nin -----------------------------------------------------------------------------


def test_in_and_nin() -> None:
    docs = [{"a": 1}, {"a": [3, 4]}, {"a": "x"}, {}, {"a": None}, {"a": [1, 2]}, {"a": 2.0}]
    assert selected({"a": {"$in": [1, 2]}}, *docs) == [0, 5, 6]
    assert selected({"a": {"$in": [None]}}, *docs) == [3, 4]
    assert selected({"a": {"$in": []}}, *docs) == []
    assert selected({"a": {"$nin": [1, 2]}}, *docs) == [1, 2, 3, 4]
    assert selected({"a": {"$nin": [None, "x"]}}, *docs) == [0, 1, 5, 6]
    # A whole array is a candidate too (mongomock only tries its elements).
    assert selected({"a": {"$in": [[1, 2]]}}, *docs) == [5]


def test_in_with_regexes_and_complex_values() -> None:
    docs = [{"a": "apple"}, {"a": ["x", "Berry"]}, {"a": {"k": 1}}, {"a": Regex("^a")}, {"a": 1}]
    # A stored regex equals /^a/ but not /^a/u (what the driver sends for re.compile("^a")).
    assert selected({"a": {"$in": [Regex("^a"), re.compile("^b", re.I)]}}, *docs) == [0, 1, 3]
    assert selected({"a": {"$in": [re.compile("^a")]}}, *docs) == [0]
    assert selected({"a": {"$in": [{"k": 1.0}, "nothing"]}}, *docs) == [2]
    assert selected({"a": {"$nin": [re.compile("^a")]}}, *docs) == [1, 2, 3, 4]
    assert selected({"a": {"$in": [NAN]}}, {"a": NAN}, {"a": 1}) == [0]


def test_in_validation() -> None:
    assert failure({"a": {"$in": 1}}).message == "$in needs an array"
    assert failure({"a": {"$nin": {"x": 1}}}).message == "$nin needs an array"
    error = failure({"a": {"$in": [{"$gt": 1}]}})
    assert (error.code, error.message) == (2, "cannot nest $ under $in")
    assert matches({"a": {"$ref": "c", "$id": 2}}, {"a": {"$in": [{"$ref": "c", "$id": 2}]}})


# ---- $exists / $type / $size / $mod / bits ---------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "present"),
    [(True, True), (1, True), ("", True), ({}, True), (NAN, True),
     (False, False), (0, False), (0.0, False), (None, False), (Decimal128("0"), False)],
)  # fmt: skip
def test_exists_reads_its_argument_as_bson_truthiness(argument: Any, present: bool) -> None:
    docs = [{"a": None}, {}, {"a": [{"b": 1}]}, {"a": []}]
    assert selected({"a": {"$exists": argument}}, *docs) == ([0, 2, 3] if present else [1])


def test_exists_on_dotted_paths() -> None:
    docs = [{"a": [{"b": 1}]}, {"a": [{"c": 1}]}, {"a": [1]}, {"a": []}, {"a": {"b": None}}]
    assert selected({"a.b": {"$exists": True}}, *docs) == [0, 4]
    assert selected({"a.b": {"$exists": False}}, *docs) == [1, 2, 3]


def test_type_codes_aliases_and_number() -> None:
    docs = [
        {"a": 1.5},
        {"a": "s"},
        {"a": {"x": 1}},
        {"a": [1]},
        {"a": b"x"},
        {"a": ObjectId()},
        {"a": True},
        {"a": datetime.datetime(2020, 1, 1)},
        {"a": None},
        {"a": Regex("x")},
        {"a": 7},
        {"a": 2**31},
        {"a": Int64(7)},
        {"a": Decimal128("1")},
        {},
    ]
    assert selected({"a": {"$type": "double"}}, *docs) == [0]
    assert selected({"a": {"$type": 2}}, *docs) == [1]
    assert selected({"a": {"$type": "object"}}, *docs) == [2]
    assert selected({"a": {"$type": "array"}}, *docs) == [3]
    assert selected({"a": {"$type": "binData"}}, *docs) == [4]
    assert selected({"a": {"$type": "objectId"}}, *docs) == [5]
    assert selected({"a": {"$type": "bool"}}, *docs) == [6]
    assert selected({"a": {"$type": 9}}, *docs) == [7]
    assert selected({"a": {"$type": "null"}}, *docs) == [8]
    assert selected({"a": {"$type": "regex"}}, *docs) == [9]
    assert selected({"a": {"$type": "int"}}, *docs) == [3, 10]  # [1] holds an int
    assert selected({"a": {"$type": "long"}}, *docs) == [11, 12]
    assert selected({"a": {"$type": 19.0}}, *docs) == [13]
    assert selected({"a": {"$type": "number"}}, *docs) == [0, 3, 10, 11, 12, 13]
    assert selected({"a": {"$type": ["string", 8]}}, *docs) == [1, 6]
    assert selected({"a": {"$type": "array"}}, {"a": [[1]]}, {"a": []}) == [0, 1]


@pytest.mark.parametrize(
    ("argument", "code", "message"),
    [
        ("str", 2, "Unknown type name alias"),
        ("missing", 2, "'missing' is not a legal type name. To query for non-existence of a "
                       "field, use {$exists:false}."),
        (0, 2, "Invalid numerical type code: 0. Instead use {$exists:false}."),
        (20, 2, "Invalid numerical type code"),
        (1.5, 2, "Invalid numerical type code"),
        ({"x": 1}, 14, "type must be represented as a number or a string"),
        ([], 9, "a must match at least one type"),
    ],
)  # fmt: skip
def test_type_validation(argument: Any, code: int, message: str) -> None:
    error = failure({"a": {"$type": argument}})
    assert (error.code, error.message) == (code, message)


def test_size_counts_array_elements_only() -> None:
    docs = [{"a": [1, 2]}, {"a": [[1, 2]]}, {"a": {"x": 1, "y": 2}}, {"a": 2}, {"a": "ab"}, {}]
    # mongomock also counts the keys of a document, and matches truthy scalars for $size 1.
    assert selected({"a": {"$size": 2}}, *docs) == [0]
    assert selected({"a": {"$size": 1}}, *docs) == [1]
    assert selected({"a": {"$size": Int64(0)}}, {"a": []}, {}) == [0]
    assert selected({"a": {"$size": 2.0}}, *docs) == [0]
    assert selected({"a.b": {"$size": 1}}, {"a": [{"b": [1]}, {"b": 5}]}) == [0]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("secret", "Failed to parse $size. Expected a number"),
        (-1, "Failed to parse $size. Expected a positive number"),
        (1.5, "Failed to parse $size. Expected an integer"),
        (NAN, "Failed to parse $size. Expected an integer, but found NaN"),
        (Decimal128("1.5"), "Failed to parse $size. Cannot represent as a 64-bit integer"),
        (2**40, "Failed to parse $size. Cannot represent the number in an int"),
        (True, "Failed to parse $size. Expected a number"),
    ],
)
def test_size_validation(argument: Any, message: str) -> None:
    error = failure({"a": {"$size": argument}})
    assert (error.code, error.message) == (2, message)


def test_mod_truncates_and_keeps_the_dividend_sign() -> None:
    docs = [{"a": 7}, {"a": -7}, {"a": 7.9}, {"a": Decimal128("-7.5")}, {"a": NAN}, {"a": "7"}]
    assert selected({"a": {"$mod": [4, 3]}}, *docs) == [0, 2]
    assert selected({"a": {"$mod": [4, -3]}}, *docs) == [1, 3]  # C's %, not Python's
    assert selected({"a": {"$mod": [-4, 3]}}, *docs) == [0, 2]
    assert selected({"a": {"$mod": [4.9, 3.2]}}, *docs) == [0, 2]  # arguments truncate too
    assert selected({"a": {"$mod": [-1, 0]}}, *docs) == [0, 1, 2, 3]
    assert selected({"a": {"$mod": [2, 1]}}, {"a": [2, 3]}, {"a": float("inf")}) == [0]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (5, "malformed mod, needs to be an array"),
        ([], "malformed mod, not enough elements"),
        ([4], "malformed mod, not enough elements"),
        (["4", 1], "malformed mod, divisor not a number"),
        ([4, None], "malformed mod, remainder not a number"),
        ([4, 1, 2], "malformed mod, too many elements"),
        ([0, 1], "divisor cannot be 0"),
        ([0.5, 0], "divisor cannot be 0"),
        ([NAN, 1], "malformed mod, divisor value is invalid :: caused by :: "
                   "Unable to coerce NaN/Inf to integral type"),
        ([1, 1e300], "malformed mod, remainder value is invalid :: caused by :: "
                     "Out of bounds coercing to integral value"),
    ],
)  # fmt: skip
def test_mod_validation(argument: Any, message: str) -> None:
    error = failure({"a": {"$mod": argument}})
    assert (error.code, error.message) == (2, message)


def test_bit_operators() -> None:
    docs = [{"a": 0b1010}, {"a": -1}, {"a": 2.0}, {"a": 2.5}, {"a": Binary(b"\x0a")}, {"a": "x"}]
    assert selected({"a": {"$bitsAllSet": [1, 3]}}, *docs) == [0, 1, 4]
    assert selected({"a": {"$bitsAllSet": 0b1010}}, *docs) == [0, 1, 4]
    assert selected({"a": {"$bitsAnySet": Binary(b"\x02")}}, *docs) == [0, 1, 2, 4]
    assert selected({"a": {"$bitsAllClear": [0, 2]}}, *docs) == [0, 2, 4]
    assert selected({"a": {"$bitsAnyClear": [1, 200]}}, *docs) == [0, 2, 4]  # -1 sign-extends
    assert failure({"a": {"$bitsAllSet": [-1]}}).message == (
        "Failed to parse bit position. Expected a positive number"
    )
    assert failure({"a": {"$bitsAllSet": -1}}).code == 9
    assert failure({"a": {"$bitsAllSet": "x"}}).code == 2


# ---- $regex -------------------------------------------------------------------------------


def test_regex_operator_and_options() -> None:
    docs = [{"a": "Apple"}, {"a": "line1\napple"}, {"a": "a\nb"}, {"a": ["zz", "apple"]}, {}]
    assert selected({"a": {"$regex": "^a"}}, *docs) == [2, 3]
    assert selected({"a": {"$regex": "^a", "$options": "i"}}, *docs) == [0, 2, 3]
    assert selected({"a": {"$options": "im", "$regex": "^a"}}, *docs) == [0, 1, 2, 3]
    assert selected({"a": {"$regex": "a.b", "$options": "s"}}, *docs) == [2]
    assert selected({"a": {"$regex": "a  p  p # comment", "$options": "x"}}, *docs) == [1, 3]
    assert selected({"a": {"$regex": re.compile("^A")}}, *docs) == [0]
    assert selected({"a": {"$regex": Regex("^A", "i")}}, *docs) == [0, 2, 3]
    assert selected({"a": {"$regex": "p", "$nin": ["Apple"]}}, *docs) == [1, 3]


BOTH = "options set in both $regex and $options"


@pytest.mark.parametrize(
    ("spec", "code", "message"),
    [
        ({"$regex": "a", "$options": "q"}, 51108, "$regex invalid flag in regex options: q"),
        ({"$regex": "a", "$options": "l"}, 51108, "$regex invalid flag in regex options: l"),
        ({"$regex": 5}, 2, "$regex has to be a string"),
        ({"$regex": "a", "$options": 1}, 2, "$options has to be a string"),
        ({"$options": "i"}, 2, "$options needs a $regex"),
        ({"$regex": Regex("a", "i"), "$options": "m"}, 51075, BOTH),
        ({"$options": "m", "$regex": Regex("a", "i")}, 51074, BOTH),
        # The driver sends a Python pattern with "u", so this is also two sets of options.
        ({"$regex": re.compile("a"), "$options": "i"}, 51075, BOTH),
        ({"$regex": "(unclosed"}, 51091, "Regular expression is invalid"),
        ({"$regex": "a\0b"}, 2, "Regular expression cannot contain an embedded null byte"),
        ({"$regex": r"\u0041"}, 51091, "Regular expression is invalid"),  # not PCRE syntax
    ],
)  # fmt: skip
def test_regex_validation(spec: dict[str, Any], code: int, message: str) -> None:
    error = failure({"a": spec})
    assert (error.code, error.message) == (code, message)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        # The server compiles with UTF but not UCP: \d, \w, \s and \b are ASCII only (mongomock
        # uses Python's Unicode classes).
        (r"^\d+$", "١٢", False),
        (r"^\d+$", "12", True),
        (r"^\w$", "é", False),
        (r"^[\w]$", "é", False),
        (r"\bé", " é", False),
        (r"^\s$", "\u00a0", False),
        (r"^\S$", "é", True),
        (r"a\z", "a\n", False),
        (r"a\Z", "a\n", True),
        (r"a$", "a\n", True),
        (r"(?<w>a)\k<w>", "aa", True),
        (r"(?'w'a)\k{w}", "aa", True),
        (r"\Qa.b\E", "a.b", True),
        (r"\Qa.b\E", "axb", False),
        (r"^[[:alpha:]]+$", "abC", True),
        (r"^[[:digit:]]$", "x", False),
        (r"\x{41}", "A", True),
        (r"\e", "\x1b", True),
        (r"[a&&b]", "&", True),  # literal in PCRE (a set operation warning in Python)
        (r"^a++b", "aab", True),
        (r"\Aab\z", "ab", True),
        ("(?x) a b # [not a class", "ab", True),
        (r"^[\h]$", "\u00a0", True),
        (r"^\h$", "x", False),
    ],
)
def test_regexes_follow_pcre_semantics(pattern: str, text: str, expected: bool) -> None:
    assert matches({"a": text}, {"a": {"$regex": pattern}}) is expected


@pytest.mark.parametrize(
    "pattern", [r"\p{L}", r"a(?i)b", r"(?|a)", r"\X", r"(?<=a|bc)d", "[[:^alpha:]]"]
)
def test_pcre_constructs_python_cannot_express_are_unsupported(pattern: str) -> None:
    with pytest.raises(UnsupportedOperator) as raised:
        compile_filter({"a": {"$regex": pattern}})
    assert raised.value.operator == "$regex"


# ---- $not ---------------------------------------------------------------------------------


def test_not_negates_an_operator_document_or_a_regex() -> None:
    docs = [{"a": 5}, {"a": 1}, {}, {"a": "5"}, {"a": [1, 9]}, {"a": "x"}]
    assert selected({"a": {"$not": {"$gt": 3}}}, *docs) == [1, 2, 3, 5]
    assert selected({"a": {"$not": {"$gt": 3, "$lt": 6}}}, *docs) == [1, 2, 3, 5]
    assert selected({"a": {"$not": re.compile("^x")}}, *docs) == [0, 1, 2, 3, 4]
    assert selected({"a": {"$not": {"$regex": "X", "$options": "i"}}}, *docs) == [0, 1, 2, 3, 4]
    # $not of nothing is true: mongomock fails when the path yields no candidate.
    assert matches({"a": []}, {"a.b": {"$not": {"$gt": 1}}})


def test_not_validation() -> None:
    assert failure({"a": {"$not": 5}}).message == "$not needs a regex or a document"
    assert failure({"a": {"$not": {}}}).message == "$not cannot be empty"
    assert failure({"a": {"$not": {"b": 1}}}).message == "unknown operator: b"


# ---- $elemMatch / $all ------------------------------------------------------------------------


def test_elem_match_operator_form_tests_each_element_whole() -> None:
    docs = [{"a": [1, 5]}, {"a": [[5]]}, {"a": 5}, {"a": [4, 6]}, {"a": []}]
    assert selected({"a": {"$elemMatch": {"$gt": 4, "$lt": 6}}}, *docs) == [0]
    # mongomock expands a nested array element; MongoDB compares [5] with 4 (no match).
    assert selected({"a": {"$elemMatch": {"$gt": 4}}}, *docs) == [0, 3]
    assert selected({"a": {"$elemMatch": {"$ne": 1}}}, *docs) == [0, 1, 3]
    assert selected({"a": {"$elemMatch": {"$elemMatch": {"$eq": 5}}}}, *docs) == [1]
    assert selected({"a": {"$elemMatch": {"$not": {"$gte": 5}}}}, *docs) == [0, 1, 3]
    assert selected({"a": {"$elemMatch": {"$in": [6], "$exists": True}}}, *docs) == [3]


def test_elem_match_query_form_tests_embedded_documents() -> None:
    docs = [
        {"a": [{"b": 1, "c": 2}, {"b": 2, "c": 1}]},
        {"a": [{"b": 1, "c": 1}]},
        {"a": [[{"b": 1, "c": 1}]]},  # an array element is read as {"0": …}
        {"a": [["x", "y"]]},
        {"a": {"b": 1, "c": 1}},
    ]
    assert selected({"a": {"$elemMatch": {"b": 1, "c": 1}}}, *docs) == [1]
    assert selected({"a": {"$elemMatch": {"b": 1, "c": {"$gt": 1}}}}, *docs) == [0]
    assert selected({"a": {"$elemMatch": {"1": "y"}}}, *docs) == [3]
    assert selected({"a": {"$elemMatch": {"$or": [{"b": 2}, {"c": 2}]}}}, *docs) == [0]
    assert selected({"a": {"$elemMatch": {"$and": [{"b": 1}], "c": 1}}}, *docs) == [1]


def test_elem_match_through_a_dotted_path() -> None:
    doc = {"a": [{"b": [1, 9]}, {"b": [5]}]}
    assert matches(doc, {"a.b": {"$elemMatch": {"$gt": 4, "$lt": 6}}})
    assert not matches(doc, {"a.b": {"$elemMatch": {"$gt": 6, "$lt": 8}}})


def test_elem_match_validation() -> None:
    assert failure({"a": {"$elemMatch": [1]}}).message == "$elemMatch needs an Object"
    error = failure({"a": {"$elemMatch": {"$where": "true"}}})
    assert (error.code, error.message) == (
        2,
        "$where can only be applied to the top-level document",
    )
    assert failure({"a": {"$elemMatch": {"$gt": 1, "b": 1}}}).message == "unknown operator: b"
    assert failure({"a": {"$elemMatch": {"b": 1, "$gt": 1}}}).message.startswith(
        "unknown top level operator: $gt"
    )


def test_all_matches_when_every_value_matches() -> None:
    docs = [{"a": [1, 2, 3]}, {"a": [1]}, {"a": 1}, {"a": [[1, 2]]}, {"a": [1, 2]}, {}]
    assert selected({"a": {"$all": [1, 2]}}, *docs) == [0, 4]
    assert selected({"a": {"$all": [1]}}, *docs) == [0, 1, 2, 4]
    assert selected({"a": {"$all": [[1, 2]]}}, *docs) == [3, 4]
    assert selected({"a": {"$all": []}}, *docs) == []
    # mongomock's {$all: [null]} does not match a missing field; it is equality with null.
    assert selected({"a": {"$all": [None]}}, *docs) == [5]
    assert selected({"a": {"$all": [re.compile("^x"), "xy"]}}, {"a": ["xy"]}, {"a": "xz"}) == [0]


def test_all_of_elem_matches() -> None:
    docs = [{"a": [{"b": 1}, {"c": 2}]}, {"a": [{"b": 1, "c": 2}]}, {"a": [{"b": 1}]}]
    query = {"a": {"$all": [{"$elemMatch": {"b": 1}}, {"$elemMatch": {"c": 2}}]}}
    assert selected(query, *docs) == [0, 1]


def test_all_validation() -> None:
    assert failure({"a": {"$all": 1}}).message == "$all needs an array"
    assert failure({"a": {"$all": [{"$elemMatch": {}}, 1]}}).message == (
        "$all/$elemMatch has to be consistent"
    )
    assert failure({"a": {"$all": [1, {"$gt": 1}]}}).message == "no $ expressions in $all"
    assert matches({"a": [{"$x": 1}]}, {"a": {"$all": [{"$x": 1}]}})  # not an operator


# ---- logical operators ----------------------------------------------------------------------


def test_and_or_nor() -> None:
    docs = [{"a": 1, "b": 1}, {"a": 1, "b": 2}, {"a": 2}, {}]
    assert selected({"$and": [{"a": 1}, {"b": 2}]}, *docs) == [1]
    assert selected({"$or": [{"a": 2}, {"b": 1}]}, *docs) == [0, 2]
    assert selected({"$nor": [{"a": 2}, {"b": 1}]}, *docs) == [1, 3]
    assert selected({"a": 1, "$or": [{"b": 2}, {"b": {"$exists": False}}]}, *docs) == [1]
    assert selected({"$and": [{"$or": [{"a": 1}]}, {"$nor": [{"b": 1}]}]}, *docs) == [1]


@pytest.mark.parametrize("operator", ["$and", "$or", "$nor"])
def test_logical_validation(operator: str) -> None:
    assert failure({operator: {"a": 1}}).message == f"{operator} must be an array"
    assert failure({operator: []}).message == "$and/$or/$nor must be a nonempty array"
    assert failure({operator: [{"a": 1}, 2]}).message == (
        "$or/$and/$nor entries need to be full objects"
    )


def test_comment_always_and_empty_filters() -> None:
    assert selected({"$comment": "why"}, {}, {"a": 1}) == [0, 1]
    assert selected({}, {}, {"a": 1}) == [0, 1]
    assert selected({"$alwaysFalse": 1}, {}) == []
    assert selected({"$alwaysTrue": 1.0}, {}) == [0]
    assert failure({"$alwaysTrue": 2}).code == 9


# ---- paths ----------------------------------------------------------------------------------


def test_dotted_paths_traverse_arrays_and_index_them() -> None:
    doc = {"a": [{"b": [{"c": 1}, {"c": 2}]}, {"b": {"c": 3}}], "n": [[1, 2], [3, 4]]}
    assert matches(doc, {"a.b.c": 2})
    assert matches(doc, {"a.b.c": 3})
    assert matches(doc, {"a.1.b.c": 3})
    assert not matches(doc, {"a.1.b.c": 2})
    assert matches(doc, {"a.0.b.1.c": 2})
    assert matches(doc, {"n.1.0": 3})
    assert matches(doc, {"n.1": [3, 4]})
    assert not matches(doc, {"n.0": 3})
    assert matches(doc, {"n": [3, 4]})
    assert not matches(doc, {"n": 3})  # nested arrays are not expanded by equality
    assert matches({"a": [{"0": "x"}]}, {"a.0": "x"})  # "0" is also a field name
    assert matches({"a": {"0": "x"}}, {"a.0": "x"})
    assert matches({"a": [{"b": 1}]}, {"a.0.b": 1})


def test_dbrefs_and_dollar_fields() -> None:
    doc = {"ref": DBRef("people", 7)}
    assert matches(doc, {"ref.$id": 7})
    assert matches(doc, {"ref": {"$ref": "people", "$id": 7}})
    assert matches({"$id": 3}, {"$id": 3})


# ---- errors and unsupported operators -----------------------------------------------------------


def test_unknown_operators() -> None:
    error = failure({"a": {"$foo": 1}})
    assert (error.code, error.message) == (2, "unknown operator: $foo")
    assert failure({"a": {"$gt": 1, "b": 2}}).message == "unknown operator: b"
    assert failure({"$foo": 1}).message == (
        "unknown top level operator: $foo. If you have a field name that starts with a '$' "
        "symbol, consider using $getField or $setField."
    )
    assert failure({"$not": {"a": 1}}).message.endswith("use $nor.")
    assert failure({"a": {"$where": "x"}}).message == "$where cannot be applied to a field"
    assert failure({"a": {"$comment": "x"}}).message == "unknown operator: $comment"


def test_an_embedded_document_that_starts_with_a_field_is_a_value() -> None:
    assert matches({"a": {"b": 1, "$gt": 2}}, {"a": {"b": 1, "$gt": 2}})


def test_regexes_cannot_bound_a_comparison() -> None:
    assert failure({"a": {"$gt": re.compile("x")}}).message == (
        "Can't have RegEx as arg to predicate over field 'a'."
    )
    assert failure({"a": {"$ne": re.compile("x")}}).message == "Can't have regex as arg to $ne."


@pytest.mark.parametrize(
    ("filter", "operator"),
    [
        ({"$where": "this.a > 1"}, "$where"),
        ({"$expr": {"$gt": ["$a", 1]}}, "$expr"),
        ({"$text": {"$search": "x"}}, "$text"),
        ({"$jsonSchema": {}}, "$jsonSchema"),
        ({"$sampleRate": 0.5}, "$sampleRate"),
        ({"loc": {"$near": [0, 0]}}, "$near"),
        ({"loc": {"$nearSphere": [0, 0], "$maxDistance": 1}}, "$nearSphere"),
        ({"loc": {"$geoWithin": {"$center": [[0, 0], 1]}}}, "$geoWithin"),
        ({"loc": {"$geoIntersects": {}}}, "$geoIntersects"),
        ({"$or": [{"a": 1}, {"$where": "1"}]}, "$where"),
        ({"a": {"$not": {"$geoWithin": {}}}}, "$geoWithin"),
        ({"a": {"$_internalSchemaType": 1}}, "$_internalSchemaType"),
    ],
)
def test_operators_the_process_cannot_evaluate(filter: dict[str, Any], operator: str) -> None:
    with pytest.raises(UnsupportedOperator) as raised:
        compile_filter(filter)
    assert raised.value.operator == operator
    assert str(raised.value) == f"{operator} cannot be evaluated in the process"


def test_messages_never_quote_a_value() -> None:
    for bad in (
        {"a": {"$size": "Alice Secret"}},
        {"a": {"$type": "Alice Secret"}},
        {"a": {"$regex": "(Alice Secret"}},
        {"a": {"$mod": ["Alice Secret", 1]}},
        {"a": {"$in": "Alice Secret"}},
        {"a": {"$bitsAllSet": "Alice Secret"}},
    ):
        assert "Alice" not in failure(bad).message


def test_a_filter_must_be_a_mapping() -> None:
    with pytest.raises(TypeError):
        compile_filter([("a", 1)])  # type: ignore[arg-type]


def test_a_compiled_matcher_is_reusable() -> None:
    matcher = compile_filter({"a": {"$in": [1, 2]}})
    assert isinstance(matcher, Matcher)
    assert [matcher(doc) for doc in ({"a": 1}, {"a": 3}, {"a": [3, 2]})] == [True, False, True]
    assert matches({"a": 2}, {"a": {"$in": [1, 2]}})


# ---- the positional $ -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter", "document", "index"),
    [
        ({"a": 5}, {"a": [1, 5, 5]}, 1),
        ({"a": {"$gt": 4}}, {"a": [1, 5, 9]}, 1),
        ({"a.b": 2}, {"a": [{"b": 1}, {"b": 2}]}, 1),
        ({"a.b": 3}, {"a": [{"b": 1}, {"b": [2, 3]}]}, 1),  # the outermost array's index
        ({"a": {"$elemMatch": {"b": 2, "c": 1}}}, {"a": [{"b": 2}, {"b": 2, "c": 1}]}, 1),
        ({"a": {"$elemMatch": {"$gte": 2}}}, {"a": [1, 2]}, 1),
        ({"x.a": {"$elemMatch": {"$gte": 2}}}, {"x": {"a": [1, 2]}}, 1),
        ({"a": {"$all": [2, 3]}}, {"a": [3, 2]}, 0),  # the last predicate to match decides
        ({"a": 1, "b": 2}, {"a": [0, 1], "b": [2]}, 0),
        ({"$and": [{"a": 1}, {"a": 2}]}, {"a": [1, 2]}, 1),
        ({"$or": [{"a": 2}]}, {"a": [1, 2]}, 1),  # a single clause is unwrapped
        ({"a": 2, "b": 7}, {"a": [1, 2], "b": 7}, 1),
        ({"a": [1, 2]}, {"a": [1, 2]}, None),  # the whole array matched
        ({"a": 2}, {"a": 2}, None),
        ({"a": {"$ne": 1}}, {"a": [2, 3]}, None),  # negations record nothing
        ({"a": {"$nin": [1]}}, {"a": [2, 3]}, None),
        ({"$or": [{"a": 2}, {"b": 1}]}, {"a": [1, 2]}, None),
        ({"a": 9}, {"a": [1, 2]}, None),  # no match at all
        ({"a": {"$size": 2}}, {"a": [1, 2]}, None),
    ],
)
def test_positional_index(
    filter: dict[str, Any], document: dict[str, Any], index: int | None
) -> None:
    assert compile_filter(filter).positional(document) == index


# ---- the server's own null semantics (jstests/core/query/null_query_semantics.js, 8.0) ------
# The documents and expected results of that test, without its BSON `undefined` values (Python
# has none). mongomock disagrees with several rows (a.b through a scalar, $all/$elemMatch).

NULL_DOCS: list[dict[str, Any]] = [
    {"_id": "a_empty_subobject", "a": {}},
    {"_id": "a_null", "a": None},
    {"_id": "a_number", "a": 4},
    {"_id": "a_subobject_b_not_null", "a": {"b": "hi"}},
    {"_id": "a_subobject_b_null", "a": {"b": None}},
    {"_id": "no_a"},
    {"_id": "a_double_array", "a": [[]]},
    {"_id": "a_empty_array", "a": []},
    {"_id": "a_object_array_b_mix_null_missing", "a": [{"b": None}, {"b": None}, {}]},
    {"_id": "a_object_array_no_b_nulls", "a": [{"b": 1}, {"b": 3}, {"b": "string"}]},
    {"_id": "a_object_array_some_b_nulls", "a": [{"b": None}, {"b": 3}, {"b": None}]},
    {"_id": "a_object_array_some_b_missing", "a": [{"b": 3}, {}]},
    {"_id": "a_value_array_all_nulls", "a": [None, None]},
    {"_id": "a_value_array_no_nulls", "a": [1, "string", 4]},
    {"_id": "a_value_array_with_null", "a": [1, "string", None, 4]},
]
A_IS_NULL = {"a_null", "no_a", "a_value_array_all_nulls", "a_value_array_with_null"}
A_B_IS_NULL = {
    "a_empty_subobject",
    "a_null",
    "a_number",
    "a_subobject_b_null",
    "no_a",
    "a_object_array_b_mix_null_missing",
    "a_object_array_some_b_nulls",
    "a_object_array_some_b_missing",
}
ALL = {doc["_id"] for doc in NULL_DOCS}


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"a": {"$eq": None}}, A_IS_NULL),
        ({"a": {"$ne": None}}, ALL - A_IS_NULL),
        ({"a": {"$not": {"$gte": None}}}, ALL - A_IS_NULL),
        ({"a": {"$in": [None, 75]}}, A_IS_NULL),
        ({"$or": [{"a": None}, {"a": 75}]}, A_IS_NULL),
        ({"a": {"$nin": [None, 75]}}, ALL - A_IS_NULL),
        ({"a": {"$nin": [None, []]}}, ALL - A_IS_NULL - {"a_double_array", "a_empty_array"}),
        (
            {"a": {"$nin": [None, re.compile("^str.*")]}},
            ALL - A_IS_NULL - {"a_value_array_no_nulls"},
        ),
        ({"a": {"$exists": False}}, {"no_a"}),
        (
            {"a": {"$elemMatch": {"$eq": None}}},
            {"a_value_array_all_nulls", "a_value_array_with_null"},
        ),
        (
            {"a": {"$elemMatch": {"$ne": None}}},
            {
                "a_double_array",
                "a_object_array_b_mix_null_missing",
                "a_object_array_no_b_nulls",
                "a_object_array_some_b_nulls",
                "a_object_array_some_b_missing",
                "a_value_array_no_nulls",
                "a_value_array_with_null",
            },
        ),
        ({"a.b": {"$eq": None}}, A_B_IS_NULL),
        ({"a.b": {"$ne": None}}, ALL - A_B_IS_NULL),
        ({"a.b": {"$in": [None, 75]}}, A_B_IS_NULL),
        ({"$or": [{"a.b": None}, {"a.b": 75}]}, A_B_IS_NULL),
        ({"a.b": {"$nin": [None, 75]}}, ALL - A_B_IS_NULL),
        (
            {"a.b": {"$nin": [None, re.compile("^str.*")]}},
            ALL - A_B_IS_NULL - {"a_object_array_no_b_nulls"},
        ),
        ({"a.b": {"$elemMatch": {"$eq": None}}}, set()),
        ({"a.b": {"$elemMatch": {"$ne": None}}}, set()),
        (
            {"a": {"$elemMatch": {"b": {"$eq": None}}}},
            {
                "a_double_array",  # the element [] is read as the document {}
                "a_object_array_b_mix_null_missing",
                "a_object_array_some_b_nulls",
                "a_object_array_some_b_missing",
            },
        ),
        (
            {"a": {"$elemMatch": {"b": {"$ne": None}}}},
            {
                "a_object_array_no_b_nulls",
                "a_object_array_some_b_nulls",
                "a_object_array_some_b_missing",
            },
        ),
    ],
)
def test_null_semantics_of_the_server_test_suite(
    filter: dict[str, Any], expected: set[str]
) -> None:
    matcher = compile_filter(filter)
    assert {doc["_id"] for doc in NULL_DOCS if matcher(doc)} == expected


# ---- properties: the compiled fast paths agree with the value order ---------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(-3, 3).map(Int64),
    st.sampled_from([0.5, -0.0, 2.0, NAN, float("inf")]),
    st.sampled_from([Decimal128("1"), Decimal128("0.5"), Decimal128("NaN")]),
    st.sampled_from(["", "a", "B", "é"]),
    st.sampled_from([MinKey(), MaxKey(), ObjectId("000000000000000000000001")]),
    st.just(datetime.datetime(2020, 1, 1)),
)


@given(value=SCALARS, bound=SCALARS)
def test_comparisons_and_in_agree_with_compare(value: Any, bound: Any) -> None:
    same_type = type_rank(value) == type_rank(bound)
    nan = is_nan(value) or is_nan(bound)
    order = compare(value, bound)
    doc = {"a": value}
    assert matches(doc, {"a": bound}) is equal(value, bound)
    assert matches(doc, {"a": {"$in": [bound, "zzz"]}}) is equal(value, bound)
    assert matches(doc, {"a": {"$nin": [bound]}}) is not equal(value, bound)
    if not isinstance(bound, (MinKey, MaxKey)):
        assert matches(doc, {"a": {"$gt": bound}}) is (same_type and not nan and order > 0)
        assert matches(doc, {"a": {"$lt": bound}}) is (same_type and not nan and order < 0)
        both_nan = is_nan(value) and is_nan(bound)
        assert matches(doc, {"a": {"$gte": bound}}) is (
            same_type and (both_nan or (not nan and order >= 0))
        )


def test_exists_false_through_an_array_sees_any_element_with_the_field() -> None:
    # MongoDB: a.c exists when any element of a has c, even null; mongomock 4.3 says it does not.
    document = {"_id": 0, "a": [{}, {"c": None}]}
    assert not matches(document, {"a.c": {"$exists": False}})
    assert matches(document, {"a.c": {"$exists": True}})
    assert matches({"a": [{}, {}]}, {"a.c": {"$exists": False}})
