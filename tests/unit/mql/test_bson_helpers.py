"""The BSON helpers the in-process engine shares: sort arguments, type names, integer parsing.

Expected values are pymongo's (``helpers._index_list`` for sort arguments) and the server's
(``typeName``; ``parseIntegerElementToLong`` and its FailedToParse reasons; the 15-digit
double-to-decimal conversion of ``Decimal128(double, kRoundTo15Digits)``).
"""

from __future__ import annotations

import datetime
import decimal
import enum
import re
import uuid
from typing import Any

import pytest
from bson.binary import Binary
from bson.code import Code
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.objectid import ObjectId
from bson.son import SON

from privata_mongo.core.failures import WriteFailed
from privata_mongo.core.mql._bson_types import MISSING, as_sent, sort_pairs, type_name
from privata_mongo.core.mql._numbers import double_to_decimal, parse_integer, parse_long


class Direction(enum.IntEnum):
    UP = 1
    DOWN = -1


class Key(str):
    """A str subclass, as Beanie's ExpressionField is."""


class Ratio(float):
    pass


def test_sort_arguments_take_every_form_pymongo_takes() -> None:
    assert sort_pairs("a") == [("a", 1)]
    assert sort_pairs("a", Direction.DOWN) == [("a", -1)]
    assert sort_pairs(["a", ("b", -1)]) == [("a", 1), ("b", -1)]
    assert sort_pairs(SON([("a", -1), ("b", 1)])) == [("a", -1), ("b", 1)]
    (pair,) = sort_pairs([(Key("a"), Direction.UP)])
    assert type(pair[0]) is str
    assert type(pair[1]) is int


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((["a"], 1), "Expected a string and a direction"),
        ((5,), "key_or_list must be an instance of list"),
    ],
)
def test_malformed_sort_arguments_fail_as_pymongo_does(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        sort_pairs(*args)


def test_subclasses_are_sent_as_their_base_values() -> None:
    assert type(as_sent(Ratio(0.5))) is float
    assert type(as_sent(Key("k"))) is str
    assert as_sent(True) is True
    assert type(as_sent(Int64(3))) is Int64
    marker = object()
    assert as_sent(marker) is marker


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (MISSING, "missing"),
        (1, "int"),
        (2**31, "long"),
        (Int64(1), "long"),
        (1.5, "double"),
        (Decimal128("1"), "decimal"),
        ("s", "string"),
        (Code("f"), "javascript"),
        (Code("f", {"x": 1}), "javascriptWithScope"),
        (SON([("a", 1)]), "object"),
        ([1], "array"),
        (uuid.UUID(int=1), "binData"),
        (Binary(b"x", 5), "binData"),
        (ObjectId(), "objectId"),
        (datetime.datetime(2024, 1, 1), "date"),
        (None, "null"),
        (re.compile("a"), "regex"),
        (MaxKey(), "maxKey"),
        (Key("s"), "string"),
        (object(), "unknown"),
    ],
)
def test_type_names_are_the_servers(value: Any, name: str) -> None:
    assert type_name(value) == name


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1", "Expected a number"),
        (float("nan"), "found NaN"),
        (2.0**63, "Cannot represent as a 64-bit integer"),
        (1.5, "Expected an integer"),
        (Decimal128("1.5"), "Cannot represent as a 64-bit integer"),
        (Decimal128("Infinity"), "Cannot represent as a 64-bit integer"),
        (Decimal128("1E+30"), "Cannot represent as a 64-bit integer"),
    ],
)
def test_an_integer_argument_that_is_not_one_fails_to_parse(value: Any, reason: str) -> None:
    with pytest.raises(WriteFailed, match=reason) as caught:
        parse_long(value, "$slice")
    assert caught.value.code == 9
    with pytest.raises(ValueError, match=reason):
        parse_integer(value)


def test_integral_numbers_of_every_type_parse() -> None:
    assert (
        parse_long(3.0, "x") == parse_long(Decimal128("3"), "x") == parse_long(Int64(3), "x") == 3
    )
    assert parse_integer(Decimal128("-4")) == -4


@pytest.mark.parametrize(
    ("double", "expected"),
    [
        (0.1, "0.100000000000000"),
        (1 / 3, "0.333333333333333"),
        (9.999999999999999e22, "1.00000000000000E+23"),
        (0.0, "0"),
    ],
)
def test_a_double_becomes_a_decimal_of_15_significant_digits(double: float, expected: str) -> None:
    assert double_to_decimal(double) == decimal.Decimal(expected)
