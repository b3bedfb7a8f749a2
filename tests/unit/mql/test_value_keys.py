"""``value_key``: one hashable key per MongoDB value, equal exactly when the values are equal.

The oracle is ``compare`` (``core/mql/values.py``, itself pinned against the server's
documented order): two values with keys have equal keys exactly when they compare equal.
A missing field is no value: ``compare`` sorts it with null, while its key stays apart, so
the callers decide what a missing field means for them.
"""

from __future__ import annotations

import datetime
import re
import uuid
from decimal import Decimal
from typing import Any

from bson.binary import Binary
from bson.code import Code
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

from privata_mongo.core.mql.expressions._value_keys import value_key
from privata_mongo.core.mql.values import MISSING, compare

OID = ObjectId("64b7f0c2a1b2c3d4e5f60718")
WHEN = datetime.datetime(2024, 5, 1, 12, 0, 0, 123000)
SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    1.0,
    Int64(1),
    Decimal128("1"),
    Decimal128("1.0"),
    2.5,
    Decimal128("2.5"),
    float("nan"),
    Decimal128("NaN"),
    float("inf"),
    "",
    "a",
    "A",
    Code("a"),
    WHEN,
    WHEN.replace(microsecond=123456),
    WHEN.replace(tzinfo=datetime.timezone.utc),
    OID,
    ObjectId("64b7f0c2a1b2c3d4e5f60719"),
    Timestamp(1, 2),
    Timestamp(1, 3),
    uuid.UUID(int=7),
    Binary(uuid.UUID(int=7).bytes, 4),
    Binary(b"ab", 0),
    b"ab",
    Binary(b"ab", 5),
    Regex("^a", "i"),
    re.compile("^a", re.IGNORECASE),
    Regex("^a", ""),
    MinKey(),
    MaxKey(),
]
VALUES = st.recursive(
    st.sampled_from(SCALARS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2),
        st.builds(lambda i: DBRef("c", i), st.sampled_from([1, 1.0, "x"])),
    ),
    max_leaves=5,
)


@given(VALUES, VALUES)
def test_keys_are_equal_exactly_when_values_compare_equal(a: Any, b: Any) -> None:
    key_a, key_b = value_key(a), value_key(b)
    if key_a is None or key_b is None:
        return
    hash(key_a)
    assert (key_a == key_b) == (compare(a, b) == 0), (a, b)


def test_numbers_of_every_type_share_a_key() -> None:
    assert value_key(1) == value_key(1.0) == value_key(Int64(1)) == value_key(Decimal128("1"))
    assert value_key(Decimal128("1.5")) == value_key(1.5) == ("n", Decimal("1.5"))
    assert value_key(float("nan")) == value_key(Decimal128("NaN")) == ("nan",)


def test_null_missing_strings_and_code_are_told_apart() -> None:
    keys = [value_key(v) for v in (None, MISSING, "a", Code("a"), False, 0)]
    assert len(set(keys)) == len(keys)


def test_documents_need_the_same_fields_in_the_same_order() -> None:
    assert value_key({"a": 1, "b": 2}) == value_key({"a": 1.0, "b": Int64(2)})
    assert value_key({"a": 1, "b": 2}) != value_key({"b": 2, "a": 1})
    assert value_key(DBRef("c", 1)) == value_key({"$ref": "c", "$id": 1})


def test_a_value_without_a_faithful_key_makes_its_container_keyless() -> None:
    scoped = Code("f", {"x": 1})
    assert value_key(scoped) is None
    assert value_key([1, scoped]) is None
    assert value_key({"a": scoped}) is None
    assert value_key(object()) is None


def test_dates_key_by_milliseconds_and_uuids_as_binary_subtype_4() -> None:
    assert value_key(WHEN) == value_key(WHEN.replace(microsecond=123999))
    assert value_key(uuid.UUID(int=7)) == value_key(Binary(uuid.UUID(int=7).bytes, 4))
    assert value_key(b"ab") == value_key(Binary(b"ab", 0)) != value_key(Binary(b"ab", 5))
    # pymongo sends a compiled str pattern with the "u" flag Python sets on it
    assert value_key(Regex("^a", "iu")) == value_key(re.compile("^a", re.IGNORECASE))
    assert value_key(Regex("^a", "i")) != value_key(Regex("^a", ""))
    assert value_key(MinKey()) != value_key(MaxKey())
