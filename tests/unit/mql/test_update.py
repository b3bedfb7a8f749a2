"""The in-process update engine against MongoDB's documented and source-level behaviour.

Expected results come from the server (``src/mongo/db/update``, MongoDB 5.0+ semantics) and
from FerretDB's integration suite, which records real MongoDB answers. Where mongomock behaves
differently the test says so: those cases are excluded from the differential test.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.regex import Regex
from bson.timestamp import Timestamp

from privata_mongo.core.failures import WriteFailed
from privata_mongo.core.mql.update import (
    Applied,
    CompiledUpdate,
    compile_update,
    replace_document,
    upsert_seed,
)

NOW = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc)
PRIVATE = "Jane-Doe-1970"  # a document value: must never appear in an error message
PRIVATE_NUMBER = 4242


def apply(update: dict[str, Any], document: dict[str, Any], **options: Any) -> Applied:
    return compile_update(update).apply(document, now=NOW, **options)


def doc_after(update: dict[str, Any], document: dict[str, Any], **options: Any) -> Any:
    return apply(update, document, **options).document


def fails(
    update: dict[str, Any], document: dict[str, Any] | None, code: int, **options: Any
) -> WriteFailed:

    def run() -> None:
        compiled = compile_update(update)
        if document is not None:
            compiled.apply(document, now=NOW, **options)

    with pytest.raises(WriteFailed) as info:
        run()
    assert info.value.code == code, info.value.message
    assert PRIVATE not in info.value.message
    assert str(PRIVATE_NUMBER) not in info.value.message
    return info.value


def ordered(document: Any) -> Any:
    """The document with its key order made visible (dict equality ignores order)."""
    if isinstance(document, dict):
        return [(key, ordered(value)) for key, value in document.items()]
    if isinstance(document, list):
        return [ordered(value) for value in document]
    return (type(document).__name__, document)


# ---- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("update", "code"),
    [
        ({"$foo": {"a": 1}}, 9),  # Unknown modifier
        ({"$set": {"a": 1}, "b": 1}, 9),  # a plain field after an operator: unknown modifier
        ({"$set": [1]}, 9),  # Modifiers operate on fields
        ({"$set": PRIVATE}, 9),
        ({"a": 1}, 9),  # a replacement is not handled here
        ({}, 9),  # the empty document is a replacement too
        ({"$set": {"a": 1, "a.b": 2}}, 40),  # conflict at 'a'
        ({"$set": {"a.b": 1}, "$inc": {"a": 1}}, 40),
        ({"$set": {"a": 1}, "$unset": {"a": 1}}, 40),
        ({"$set": {"a.$[]": 1, "a.b": 1}}, 40),  # an array node and an object node at 'a'
        ({"$rename": {"a": "b"}, "$set": {"a": 1}}, 40),  # the source conflicts too
        ({"$set": {"": 1}}, 56),
        ({"$set": {"a..b": 1}}, 56),
        ({"$set": {"a.": 1}}, 56),
        ({"$set": {"a.$.$": 1}}, 2),  # too many positional elements
        ({"$set": {"$.a": 1}}, 2),  # positional first
        ({"$set": {"$[].a": 1}}, 2),  # array filter first
        ({"$inc": {"a": PRIVATE}}, 14),
        ({"$mul": {"a": True}}, 14),
        ({"$pop": {"a": 2}}, 9),
        ({"$pop": {"a": PRIVATE}}, 9),
        ({"$pullAll": {"a": 1}}, 2),
        ({"$push": {"a": {"$each": 1}}}, 2),
        ({"$push": {"a": {"$each": [], "$foo": 1}}}, 2),
        ({"$push": {"a": {"$each": [], "$slice": 1.5}}}, 2),
        ({"$push": {"a": {"$each": [], "$position": PRIVATE}}}, 2),
        ({"$push": {"a": {"$each": [], "$sort": 2}}}, 2),
        ({"$push": {"a": {"$each": [], "$sort": {}}}}, 2),
        ({"$push": {"a": {"$each": [], "$sort": {"b.": 1}}}}, 2),
        ({"$push": {"a": {"$each": [], "$sort": PRIVATE}}}, 2),
        ({"$addToSet": {"a": {"$each": 1}}}, 14),
        ({"$addToSet": {"a": {"$each": [], "b": PRIVATE}}}, 2),
        ({"$bit": {"a": 1}}, 2),
        ({"$bit": {"a": {}}}, 2),
        ({"$bit": {"a": {"not": 1}}}, 2),
        ({"$bit": {"a": {"and": 1.0}}}, 2),
        ({"$currentDate": {"a": 1}}, 2),
        ({"$currentDate": {"a": {"$type": "int"}}}, 2),
        ({"$currentDate": {"a": {"$type": "date", "x": 1}}}, 2),
        ({"$rename": {"a": 1}}, 2),
        ({"$rename": {"a": "a"}}, 2),
        ({"$rename": {"a": "a.b"}}, 2),
        ({"$rename": {"a.b": "a"}}, 2),
        ({"$rename": {"a.$": "b"}}, 2),
        ({"$rename": {"a": "b.$[]"}}, 2),
        ({"$pull": {"a": {"$foo": 1}}}, 2),  # the condition is parsed by the matcher
    ],
)
def test_malformed_updates_fail_at_compile_time_with_the_server_code(
    update: dict[str, Any], code: int
) -> None:
    fails(update, None, code)


def test_conflict_message_names_both_paths() -> None:
    error = fails({"$set": {"a.b": 1}, "$inc": {"a": 1}}, None, 40)
    assert error.message == "Updating the path 'a' would create a conflict at 'a'"
    error = fails({"$set": {"a": 1, "a.b.c": 2}}, None, 40)
    assert error.message == "Updating the path 'a.b.c' would create a conflict at 'a'"


def test_unknown_modifier_message() -> None:
    assert fails({"$foo": {"a": 1}}, None, 9).message.startswith("Unknown modifier: $foo.")


def test_pipeline_is_not_handled() -> None:
    with pytest.raises(WriteFailed) as info:
        compile_update([{"$set": {"a": 1}}])  # type: ignore[arg-type]
    assert info.value.code == 9


def test_empty_operator_documents_are_allowed_since_5_0() -> None:
    result = apply({"$set": {}, "$unset": {}}, {"_id": 1, "a": 1})
    assert result == Applied({"_id": 1, "a": 1}, False)


def test_fields_lists_top_level_names_including_both_sides_of_rename() -> None:
    compiled = compile_update(
        {"$set": {"a.b.c": 1, "x.$[]": 2}, "$rename": {"p.q": "r.s"}, "$inc": {"n": 1}}
    )
    assert isinstance(compiled, CompiledUpdate)
    assert compiled.fields == frozenset({"a", "x", "p", "r", "n"})


# ---- field order and the input document ------------------------------------------------------


def test_new_fields_are_appended_in_lexicographic_order_across_operators() -> None:
    # MongoDB 5.0+: "update operators process document fields with string-based names in
    # lexicographic order". mongomock appends in the update's order.
    result = doc_after({"$set": {"z": 1, "b": 1}, "$inc": {"a": 1}, "$max": {"c": 2}}, {"_id": 1})
    assert list(result) == ["_id", "a", "b", "c", "z"]


def test_numeric_field_names_are_applied_in_numeric_order() -> None:
    result = doc_after({"$set": {"a.10": 1, "a.9": 1, "a.b": 1}}, {"_id": 1, "a": {}})
    assert list(result["a"]) == ["9", "10", "b"]


def test_existing_fields_keep_their_place() -> None:
    result = doc_after({"$set": {"a": 2, "c": 3}}, {"_id": 1, "b": 1, "a": 1})
    assert ordered(result) == ordered({"_id": 1, "b": 1, "a": 2, "c": 3})


def test_input_document_and_update_are_not_modified() -> None:
    document = {"_id": 1, "a": {"b": [1, 2]}, "c": [{"d": 1}]}
    value = {"x": [1]}
    compiled = compile_update({"$push": {"a.b": 3}, "$set": {"c.0.d": 2, "e": value}})
    first = compiled.apply(document, now=NOW).document
    assert document == {"_id": 1, "a": {"b": [1, 2]}, "c": [{"d": 1}]}
    first["e"]["x"].append(2)
    second = compiled.apply(document, now=NOW).document
    assert second["e"] == {"x": [1]}
    assert value == {"x": [1]}


def test_nested_mappings_and_tuples_come_back_as_dicts_and_lists() -> None:
    from collections import OrderedDict

    result = doc_after({"$set": {"n": 1}}, {"_id": 1, "a": OrderedDict(b=(1, 2))})
    assert type(result["a"]) is dict
    assert result["a"]["b"] == [1, 2]


# ---- $set / $setOnInsert / $unset ---------------------------------------------------------------


def test_set_creates_intermediate_documents() -> None:
    assert doc_after({"$set": {"a.b.c": 1}}, {"_id": 1}) == {"_id": 1, "a": {"b": {"c": 1}}}


def test_set_through_array_index_and_padding_with_nulls() -> None:
    result = doc_after({"$set": {"a.1.b": 5, "x.3": 1}}, {"_id": 1, "a": [{}, {}], "x": [0]})
    assert result == {"_id": 1, "a": [{}, {"b": 5}], "x": [0, None, None, 1]}


def test_padding_is_capped_like_the_server() -> None:
    fails({"$set": {"a.1500001": 1}}, {"_id": 1, "a": []}, 34)  # CannotBackfillArray
    assert len(doc_after({"$set": {"a.1500000": 1}}, {"_id": 1, "a": []})["a"]) == 1500001


def test_set_on_missing_array_index_creates_a_document_under_it() -> None:
    assert doc_after({"$set": {"a.2.b": 1}}, {"_id": 1, "a": []}) == {
        "_id": 1,
        "a": [None, None, {"b": 1}],
    }


def test_numeric_component_on_a_document_is_a_field_name() -> None:
    assert doc_after({"$set": {"a.0": 1}}, {"_id": 1, "a": {}}) == {"_id": 1, "a": {"0": 1}}
    assert doc_after({"$set": {"a.0": 1}}, {"_id": 1}) == {"_id": 1, "a": {"0": 1}}


def test_leading_zero_index_addresses_the_element() -> None:
    # parseUnsignedBase10Integer accepts "01" as index 1.
    assert doc_after({"$set": {"a.01": 9}}, {"_id": 1, "a": [0, 1]}) == {"_id": 1, "a": [0, 9]}


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"_id": 1, "a": PRIVATE}, "a.b"),
        ({"_id": 1, "a": None}, "a.b"),
        ({"_id": 1, "a": [PRIVATE]}, "a.b"),  # a field name on an array
        ({"_id": 1, "a": [PRIVATE_NUMBER]}, "a.0.b"),
    ],
)
def test_set_inside_a_scalar_is_path_not_viable(document: dict[str, Any], path: str) -> None:
    error = fails({"$set": {path: 1}}, document, 28)
    assert "Cannot create field" in error.message


def test_set_same_value_is_a_noop() -> None:
    assert apply({"$set": {"a": {"b": 1}}}, {"_id": 1, "a": {"b": 1}}).modified is False
    assert apply({"$set": {"a": 1}}, {"_id": 1, "a": 1}).modified is False


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (1, 1.0),  # int32 -> double: same value, another BSON type
        (1, Int64(1)),
        (0.0, -0.0),
        ({"b": 1, "c": 2}, {"c": 2, "b": 1}),  # field order matters
        ({"b": 1}, {"b": 1.0}),
    ],
)
def test_set_equal_value_of_another_type_or_order_is_a_modification(old: Any, new: Any) -> None:
    # mongomock compares with Python's ==, so it reports no modification for these.
    result = apply({"$set": {"a": new}}, {"_id": 1, "a": old})
    assert result.modified is True
    assert ordered(result.document["a"]) == ordered(new)


def test_set_on_insert_only_applies_when_inserting() -> None:
    update = {"$setOnInsert": {"a": 1}, "$set": {"b": 2}}
    assert apply(update, {"_id": 1}) == Applied({"_id": 1, "b": 2}, True)
    assert doc_after(update, {"_id": 1}, inserting=True) == {"_id": 1, "a": 1, "b": 2}
    assert apply({"$setOnInsert": {"a": 1}}, {"_id": 1}).modified is False


def test_unset_removes_fields_and_nulls_array_elements() -> None:
    result = apply(
        {"$unset": {"a.b": "", "c.1": 1, "z": 1}}, {"_id": 1, "a": {"b": 1}, "c": [1, 2]}
    )
    assert result == Applied({"_id": 1, "a": {}, "c": [1, None]}, True)


def test_unset_of_missing_or_non_viable_paths_is_a_noop() -> None:
    document = {"_id": 1, "a": 5, "b": [1]}
    result = apply({"$unset": {"x": 1, "a.b": 1, "b.c": 1, "b.5": 1}}, document)
    assert result == Applied(document, False)


def test_unset_null_array_element_still_counts_as_modified() -> None:
    assert apply({"$unset": {"a.0": 1}}, {"_id": 1, "a": [None]}).modified is True


# ---- _id -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "update",
    [
        {"$set": {"_id": 2}},
        {"$inc": {"_id.x": 1}},
        {"$unset": {"_id": 1}},
        {"$set": {"_id.x": 2}},
        {"$rename": {"_id": "x"}},
        {"$rename": {"x": "_id"}},
    ],
)
def test_modifying_id_fails_with_immutable_field(update: dict[str, Any]) -> None:
    error = fails(update, {"_id": {"x": PRIVATE_NUMBER}, "x": 1}, 66)
    assert "immutable field '_id'" in error.message


def test_setting_id_to_its_own_value_is_a_noop() -> None:
    assert apply({"$set": {"_id": 1}}, {"_id": 1}) == Applied({"_id": 1}, False)


def test_upsert_may_set_id_when_the_filter_does_not() -> None:
    result = doc_after({"$set": {"b": 1, "_id": 5}}, {"a": 1}, inserting=True)
    assert ordered(result) == ordered({"_id": 5, "a": 1, "b": 1})


def test_upsert_moves_id_first() -> None:
    seed = upsert_seed({"b": 1, "_id": 7, "A": 2})
    assert list(seed) == ["A", "_id", "b"]  # path order, as the server adds them
    result = doc_after({"$set": {"c": 1}}, seed, inserting=True)
    assert list(result) == ["_id", "A", "b", "c"]


@pytest.mark.parametrize(("value", "code"), [([1], 53), (re.compile("x"), 53), ({"$x": 1}, 52)])
def test_upserted_id_must_be_storable(value: Any, code: int) -> None:
    fails({"$set": {"_id": value}}, {}, code, inserting=True)


def test_upsert_cannot_change_the_id_from_the_filter() -> None:
    fails({"$set": {"_id": 2}}, upsert_seed({"_id": 1}), 66, inserting=True)


# ---- dollar-prefixed names -------------------------------------------------------------------


def test_top_level_dollar_field_is_not_valid_for_storage() -> None:
    fails({"$set": {"$x": 1}}, {"_id": 1}, 52)


def test_nested_dollar_fields_are_allowed_since_5_0() -> None:
    result = doc_after({"$set": {"a.$x": 1, "b": {"$y": 2}}}, {"_id": 1, "a": {}})
    assert result == {"_id": 1, "a": {"$x": 1}, "b": {"$y": 2}}


# ---- $inc / $mul ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "delta", "new"),
    [
        (1, 2, 3),
        (2**31 - 1, 1, Int64(2**31)),  # int32 overflow widens to int64
        (Int64(5), 1, Int64(6)),  # int64 stays int64 (mongomock returns a plain int)
        (5, Int64(1), Int64(6)),
        (1, 0.5, 1.5),
        (Int64(2**53 + 1), 1.0, float(2**53 + 1) + 1.0),
        (Decimal128("1.1"), 1, Decimal128("2.1")),
        (Decimal128("1"), 0.1, Decimal128("1.100000000000000")),  # double as 15 digits
        (0.1, Decimal128("1"), Decimal128("1.100000000000000")),
    ],
)
def test_inc_follows_safe_num(old: Any, delta: Any, new: Any) -> None:
    result = doc_after({"$inc": {"a": delta}}, {"_id": 1, "a": old})["a"]
    assert type(result) is type(new)
    assert result == new


@pytest.mark.parametrize(
    ("old", "factor", "new"),
    [
        (3, 2, 6),
        (2**20, 2**20, Int64(2**40)),
        (Int64(3), 2, Int64(6)),
        (1.5, 2, 3.0),
        (Decimal128("1.5"), 2, Decimal128("3.0")),
    ],
)
def test_mul_follows_safe_num(old: Any, factor: Any, new: Any) -> None:
    result = doc_after({"$mul": {"a": factor}}, {"_id": 1, "a": old})["a"]
    assert type(result) is type(new)
    assert result == new


def test_inc_and_mul_create_missing_fields() -> None:
    result = doc_after(
        {"$inc": {"a": Int64(5)}, "$mul": {"b": 7, "c": -2.5, "d": Int64(3)}}, {"_id": 1}
    )
    assert ordered(result) == ordered({"_id": 1, "a": Int64(5), "b": 0, "c": -0.0, "d": Int64(0)})
    assert str(result["c"]) == "-0.0"  # 0 * -2.5 keeps the sign, as SafeNum does


@pytest.mark.parametrize(
    ("update", "old", "modified"),
    [
        ({"$inc": {"a": 0}}, 5, False),
        ({"$inc": {"a": 0.0}}, 5, True),  # the type becomes double
        ({"$inc": {"a": Int64(0)}}, 5, True),  # the type becomes long
        ({"$mul": {"a": 1}}, 5.0, False),
        ({"$mul": {"a": 1}}, Decimal128("1.50"), False),  # decimals compare numerically
        ({"$inc": {"a": 1}}, float("nan"), True),  # NaN is never identical
    ],
)
def test_arithmetic_noop_rule(update: dict[str, Any], old: Any, modified: bool) -> None:
    assert apply(update, {"_id": 1, "a": old}).modified is modified


@pytest.mark.parametrize(
    ("update", "old"),
    [
        ({"$inc": {"a": 2**63 - 1}}, Int64(1)),
        ({"$inc": {"a": Int64(-(2**63))}}, -1),
        ({"$mul": {"a": Int64(2**62)}}, 4),
    ],
)
def test_int64_overflow_fails_with_bad_value(update: dict[str, Any], old: Any) -> None:
    error = fails(update, {"_id": 1, "a": old}, 2)
    assert "Failed to apply" in error.message


@pytest.mark.parametrize("op", ["$inc", "$mul"])
def test_arithmetic_on_non_number_is_type_mismatch(op: str) -> None:
    error = fails({op: {"a.b": 1}}, {"_id": 1, "a": {"b": PRIVATE}}, 14)
    assert error.message.startswith(f"Cannot apply {op} to a value of non-numeric type.")
    assert "string" in error.message


# ---- $min / $max -----------------------------------------------------------------------------


def test_min_and_max_use_bson_order_across_types() -> None:
    document = {"_id": 1, "a": 5, "b": 5, "c": "x", "d": 1}
    result = apply({"$min": {"a": 3, "c": 1, "e": 9}, "$max": {"b": 3, "d": "s"}}, document)
    assert result.document == {"_id": 1, "a": 3, "b": 5, "c": 1, "d": "s", "e": 9}
    assert result.modified is True


def test_min_with_an_equal_value_of_another_type_is_a_noop() -> None:
    assert apply({"$min": {"a": 1.0}}, {"_id": 1, "a": 1}).modified is False


# ---- $currentDate ----------------------------------------------------------------------------


def test_current_date_writes_now_truncated_to_milliseconds_or_a_timestamp() -> None:
    update = {"$currentDate": {"d": True, "f": False, "t": {"$type": "timestamp"}}}
    result = doc_after(update, {"_id": 1, "d": 0})
    expected = NOW.replace(microsecond=123000)
    assert result["d"] == expected
    assert result["f"] == expected  # any boolean means a date
    assert result["t"] == Timestamp(int(NOW.timestamp()), 1)


def test_current_date_always_modifies() -> None:
    document = {"_id": 1, "d": NOW.replace(microsecond=123000)}
    assert apply({"$currentDate": {"d": True}}, document).modified is True


# ---- $push -----------------------------------------------------------------------------------


def test_push_appends_and_creates() -> None:
    result = doc_after({"$push": {"a": 3, "b": [1]}}, {"_id": 1, "a": [1, 2]})
    assert result == {"_id": 1, "a": [1, 2, 3], "b": [[1]]}


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        (0, [8, 9, 1, 2, 3]),
        (1, [1, 8, 9, 2, 3]),
        (3, [1, 2, 3, 8, 9]),
        (10, [1, 2, 3, 8, 9]),
        (-1, [1, 2, 8, 9, 3]),
        (-3, [8, 9, 1, 2, 3]),
        (-10, [8, 9, 1, 2, 3]),
    ],
)
def test_push_position(position: int, expected: list[int]) -> None:
    update = {"$push": {"a": {"$each": [8, 9], "$position": position}}}
    assert doc_after(update, {"_id": 1, "a": [1, 2, 3]})["a"] == expected


def test_push_sort_and_slice() -> None:
    update = {"$push": {"a": {"$each": [{"s": 2}, {"s": 0}], "$sort": {"s": -1}, "$slice": 3}}}
    result = doc_after(update, {"_id": 1, "a": [{"s": 1}, {"s": 3}]})
    assert result["a"] == [{"s": 3}, {"s": 2}, {"s": 1}]
    update = {"$push": {"a": {"$each": [5, 1], "$sort": 1, "$slice": -2}}}
    assert doc_after(update, {"_id": 1, "a": [3, "x"]})["a"] == [5, "x"]
    assert doc_after({"$push": {"a": {"$each": [], "$slice": 0}}}, {"_id": 1, "a": [1]})["a"] == []


def test_push_sort_by_field_treats_non_documents_as_missing() -> None:
    update = {"$push": {"a": {"$each": [], "$sort": {"b": 1}}}}
    result = doc_after(update, {"_id": 1, "a": [{"b": 2}, 7, {"b": None}, {"c": 1}, {"b": 0}]})
    assert result["a"] == [7, {"b": None}, {"c": 1}, {"b": 0}, {"b": 2}]


def test_push_noop_rule() -> None:
    document = {"_id": 1, "a": [2, 1]}
    assert apply({"$push": {"a": {"$each": []}}}, document).modified is False
    assert apply({"$push": {"a": {"$each": [], "$slice": 5}}}, document).modified is False
    # a $sort counts as a modification even when the order does not change
    assert apply({"$push": {"a": {"$each": [], "$sort": -1}}}, document).modified is True


def test_push_without_each_pushes_the_document_as_is() -> None:
    result = doc_after({"$push": {"a": {"$slice": 1}}}, {"_id": 1, "a": []})
    assert result["a"] == [{"$slice": 1}]


def test_push_to_non_array_fails() -> None:
    error = fails({"$push": {"a.b": 1}}, {"_id": 1, "a": {"b": PRIVATE}}, 2)
    assert error.message == "The field 'a.b' must be an array but is of type string"


# ---- $addToSet -------------------------------------------------------------------------------


def test_add_to_set_uses_mongodb_equality() -> None:
    update = {"$addToSet": {"a": {"$each": [1.0, 2, 2, {"x": 1, "y": 1}, {"y": 1, "x": 1}]}}}
    result = apply(update, {"_id": 1, "a": [1, {"x": 1, "y": 1}]})
    assert result.document["a"] == [1, {"x": 1, "y": 1}, 2, {"y": 1, "x": 1}]
    assert apply({"$addToSet": {"a": 1.0}}, {"_id": 1, "a": [1]}).modified is False
    assert doc_after({"$addToSet": {"a": [1]}}, {"_id": 1})["a"] == [[1]]


def test_add_to_set_on_non_array_fails() -> None:
    fails({"$addToSet": {"a": 1}}, {"_id": 1, "a": PRIVATE_NUMBER}, 2)


# ---- $pop / $pull / $pullAll -----------------------------------------------------------------


def test_pop_removes_first_or_last() -> None:
    document = {"_id": 1, "a": [1, 2, 3], "b": [1, 2, 3]}
    assert doc_after({"$pop": {"a": 1, "b": -1}}, document) == {"_id": 1, "a": [1, 2], "b": [2, 3]}
    assert apply({"$pop": {"a": 1}}, {"_id": 1, "a": []}).modified is False
    assert apply({"$pop": {"a.b.c": 1, "x": -1}}, {"_id": 1, "a": {}}).modified is False


def test_pop_on_non_array_is_type_mismatch_and_through_scalar_is_not_viable() -> None:
    fails({"$pop": {"a": 1}}, {"_id": 1, "a": PRIVATE}, 14)
    fails({"$pop": {"a.b": 1}}, {"_id": 1, "a": PRIVATE_NUMBER}, 28)
    fails({"$pull": {"a.b": 1}}, {"_id": 1, "a": [PRIVATE_NUMBER]}, 28)
    fails({"$pullAll": {"a.b": [1]}}, {"_id": 1, "a": PRIVATE}, 28)


def test_pull_by_value_condition_and_document_query() -> None:
    document = {"_id": 1, "a": [1, 1.0, 2, [1], {"b": 1, "c": 2}, {"b": 2}], "n": [1, 5, 9]}
    result = doc_after({"$pull": {"a": 1, "n": {"$gte": 5}}}, document)
    assert result["a"] == [2, [1], {"b": 1, "c": 2}, {"b": 2}]
    assert result["n"] == [1]
    result = doc_after({"$pull": {"a": {"b": 1}}}, document)
    assert result["a"] == [1, 1.0, 2, [1], {"b": 2}]
    result = doc_after({"$pull": {"a": {"$in": [[1], 2]}}}, document)
    assert result["a"] == [1, 1.0, {"b": 1, "c": 2}, {"b": 2}]


def test_pull_with_regex_and_empty_document() -> None:
    document = {"_id": 1, "a": ["apple", "pear", {"x": 1}, 3]}
    assert doc_after({"$pull": {"a": re.compile("^a")}}, document)["a"] == ["pear", {"x": 1}, 3]
    assert doc_after({"$pull": {"a": Regex("p")}}, document)["a"] == [{"x": 1}, 3]
    assert doc_after({"$pull": {"a": {}}}, document)["a"] == ["apple", "pear", 3]


def test_pull_all_and_noop() -> None:
    document = {"_id": 1, "a": [1, 2.0, 3, [1]]}
    assert doc_after({"$pullAll": {"a": [2, [1]]}}, document)["a"] == [1, 3]
    assert apply({"$pullAll": {"a": [7]}}, document).modified is False
    assert apply({"$pull": {"x": 1}}, document).modified is False
    fails({"$pull": {"a": 1}}, {"_id": 1, "a": PRIVATE}, 2)


# ---- $bit ------------------------------------------------------------------------------------


def test_bit_operations() -> None:
    document = {"_id": 1, "a": 0b1100, "b": Int64(1)}
    result = doc_after(
        {"$bit": {"a": {"and": 0b1010, "or": 1}, "b": {"xor": 3}, "c": {"or": 5}}}, document
    )
    assert result == {"_id": 1, "a": 0b1001, "b": Int64(2), "c": 5}
    assert type(result["b"]) is Int64
    assert type(doc_after({"$bit": {"a": {"or": Int64(1)}}}, {"_id": 1, "a": 2})["a"]) is Int64
    assert apply({"$bit": {"a": {"or": 4}}}, document).modified is False
    fails({"$bit": {"a": {"or": 1}}}, {"_id": 1, "a": 1.0}, 2)


# ---- $rename ---------------------------------------------------------------------------------


def test_rename_moves_values_and_creates_the_destination_path() -> None:
    result = apply(
        {"$rename": {"a.b": "c.d", "x": "y"}}, {"_id": 1, "a": {"b": 1, "k": 2}, "c": {}}
    )
    assert result == Applied({"_id": 1, "a": {"k": 2}, "c": {"d": 1}}, True)


def test_rename_overwrites_an_existing_destination_in_place() -> None:
    result = doc_after({"$rename": {"a": "b"}}, {"_id": 1, "b": 0, "a": [1], "c": 2})
    assert ordered(result) == ordered({"_id": 1, "b": [1], "c": 2})


def test_rename_of_missing_source_is_a_noop() -> None:
    assert apply({"$rename": {"a": "b", "x.y": "z"}}, {"_id": 1, "b": 1, "x": {}}).modified is False


@pytest.mark.parametrize(
    ("rename", "document", "code"),
    [
        ({"a.b": "c"}, {"_id": 1, "a": [{"b": PRIVATE}]}, 28),  # a name on an array
        ({"a.-1": "c"}, {"_id": 1, "a": [PRIVATE]}, 28),
        ({"a.b.c": "x"}, {"_id": 1, "a": {"b": PRIVATE}}, 28),
        ({"a.0.b": "c"}, {"_id": 1, "a": [{"b": PRIVATE}]}, 2),  # source in an array
        ({"a": "b.c"}, {"_id": 1, "a": PRIVATE, "b": [{"c": 1}]}, 2),  # destination in an array
        ({"a": "b.0"}, {"_id": 1, "a": PRIVATE, "b": []}, 2),
        ({"a": "b.c"}, {"_id": 1, "a": PRIVATE, "b": PRIVATE_NUMBER}, 28),
    ],
)
def test_rename_errors(rename: dict[str, str], document: dict[str, Any], code: int) -> None:
    fails({"$rename": rename}, document, code)


def test_rename_out_of_array_bounds_is_a_noop() -> None:
    assert apply({"$rename": {"a.3.b": "c"}}, {"_id": 1, "a": [{"b": 1}]}).modified is False


# ---- positional $, $[] and $[<id>] -----------------------------------------------------------


def test_positional_uses_the_query_match() -> None:
    document = {"_id": 1, "a": [{"b": 1, "c": 0}, {"b": 2, "c": 0}]}
    result = doc_after({"$set": {"a.$.c": 9}}, document, query={"a.b": 2})
    assert result["a"] == [{"b": 1, "c": 0}, {"b": 2, "c": 9}]
    result = doc_after(
        {"$inc": {"a.$.c": 1}}, document, query={"_id": 1, "a": {"$elemMatch": {"b": 1}}}
    )
    assert result["a"][0] == {"b": 1, "c": 1}


def test_positional_without_a_match_fails() -> None:
    fails({"$set": {"a.$": 1}}, {"_id": 1, "a": [1]}, 2, query={"_id": 1})
    fails({"$set": {"a.$": 1}}, {"_id": 1, "a": [1]}, 2)
    # an upsert's insert never has a positional match
    fails({"$set": {"a.$": 1}}, {"a": [1]}, 2, inserting=True, query={"a": 1})


def test_positional_merges_with_the_same_index() -> None:
    document = {"_id": 1, "a": [{"b": 0}, {"b": 1}]}
    result = doc_after({"$set": {"a.$.c": 5, "a.1.d": 6}}, document, query={"a.b": 1})
    assert result["a"][1] == {"b": 1, "c": 5, "d": 6}
    fails({"$set": {"a.$": 5, "a.1": 6}}, document, 40, query={"a.b": 1})


def test_all_positional_and_nested() -> None:
    document = {"_id": 1, "a": [{"b": [1, 2]}, {"b": [3]}]}
    result = doc_after({"$inc": {"a.$[].b.$[]": 10}}, document)
    assert result["a"] == [{"b": [11, 12]}, {"b": [13]}]


def test_array_filters_select_elements_before_any_change() -> None:
    document = {"_id": 1, "a": [{"x": 1}, {"x": 5}, 7, {"x": 9}]}
    update = {"$set": {"a.$[e].y": 0}, "$inc": {"a.$[e].x": 10}}
    result = doc_after(update, document, array_filters=[{"e.x": {"$gt": 3}}])
    assert result["a"] == [{"x": 1}, {"x": 15, "y": 0}, 7, {"x": 19, "y": 0}]
    result = doc_after(
        {"$mul": {"n.$[v]": 2}}, {"_id": 1, "n": [1, 5, 9]}, array_filters=[{"v": {"$gte": 5}}]
    )
    assert result["n"] == [1, 10, 18]


def test_query_is_only_evaluated_for_a_positional_update() -> None:
    # $where cannot run in the process, but without a positional $ the query is not needed.
    assert doc_after({"$set": {"a": 1}}, {"_id": 1}, query={"$where": "true"}) == {"_id": 1, "a": 1}


def test_array_filter_updates_that_meet_on_one_element_conflict() -> None:
    error = fails(
        {"$set": {"a.$[i]": 1, "a.$[j]": 2}},
        {"_id": 1, "a": [0, 1]},
        40,
        array_filters=[{"i": 0}, {"j": {"$lt": 1}}],
    )
    assert error.message == "Update created a conflict at 'a.0'"
    result = doc_after(
        {"$set": {"a.$[i].b": 1, "a.$[j].c": 2}},
        {"_id": 1, "a": [{}]},
        array_filters=[{"i": {"$exists": True}}, {"j": {"$exists": True}}],
    )
    assert result["a"] == [{"b": 1, "c": 2}]


@pytest.mark.parametrize(
    ("update", "filters", "code"),
    [
        ({"$set": {"a.$[i]": 1}}, None, 2),  # no filter for i
        ({"$set": {"a.$[i]": 1}}, [{"j": 1}], 2),
        ({"$set": {"a.$[]": 1}}, [{"i": 1}], 9),  # filter not used
        ({"$set": {"a.$[i]": 1}}, [{"i": 1}, {"i": 2}], 9),
        ({"$set": {"a.$[i]": 1}}, [{}], 9),
        ({"$set": {"a.$[i]": 1}}, [{"i": 1, "j": 1}], 9),
        ({"$set": {"a.$[I]": 1}}, [{"I": 1}], 2),  # must start with a lowercase letter
        ({"$set": {"a.$[i]": 1}}, [{"i": {"$foo": 1}}], 2),
    ],
)
def test_array_filter_errors(update: dict[str, Any], filters: Any, code: int) -> None:
    fails(update, {"_id": 1, "a": [1]}, code, array_filters=filters)


def test_array_updates_need_an_existing_array() -> None:
    fails({"$set": {"a.$[].b": 1}}, {"_id": 1}, 2)
    fails({"$set": {"a.$[]": 1}}, {"_id": 1, "a": PRIVATE}, 2)


def test_array_filters_and_positional_apply_to_scalars_as_the_server_does() -> None:
    # a.$[].b on a scalar element: the server cannot create 'b' inside it
    fails({"$set": {"a.$[].b": 1}}, {"_id": 1, "a": [{"b": 0}, PRIVATE_NUMBER]}, 28)


# ---- upsert seed -----------------------------------------------------------------------------


def test_upsert_seed_takes_equalities_in_path_order() -> None:
    seed = upsert_seed(
        {
            "b": 1,
            "a.y": {"$eq": 2},
            "a.x": 3,
            "c": {"$gt": 1},
            "$and": [{"d": {"$in": [4]}}, {"$or": [{"e": 5}]}],
            "$or": [{"f": 1}, {"g": 2}],
            "h": re.compile("x"),
            "i": {"$in": [1, 2]},
            "j": {"$all": [6]},
        }
    )
    assert ordered(seed) == ordered({"a": {"x": 3, "y": 2}, "b": 1, "d": 4, "e": 5, "j": 6})


def test_upsert_seed_keeps_documents_and_arrays_whole() -> None:
    seed = upsert_seed({"a": {"b": 1}, "c": [1, {"d": 2}], "n": None})
    assert seed == {"a": {"b": 1}, "c": [1, {"d": 2}], "n": None}


@pytest.mark.parametrize(
    "filter",
    [
        {"a": 1, "a.b": 2},
        {"a.b": 2, "a": 1},
        {"$and": [{"a": 1}, {"a": 2}]},
        {"a": {"$all": [1, 2]}},  # $all of two values is two equalities
        {"a": {"$eq": 1, "$in": [2]}},
    ],
)
def test_upsert_seed_conflicts_are_not_single_value_field(filter: dict[str, Any]) -> None:
    with pytest.raises(WriteFailed) as info:
        upsert_seed(filter)
    assert info.value.code == 54
    assert info.value.message.startswith("cannot infer query fields to set")


def test_upsert_applies_array_filters_to_seeded_arrays() -> None:
    seed = upsert_seed({"a": [1, 5]})
    result = doc_after(
        {"$inc": {"a.$[big]": 1}}, seed, inserting=True, array_filters=[{"big": {"$gt": 2}}]
    )
    assert result == {"a": [1, 6]}


def test_upsert_applies_the_update_to_the_seed() -> None:
    seed = upsert_seed({"name": "x", "n": {"$gt": 1}})
    result = doc_after({"$inc": {"count": 1}, "$setOnInsert": {"created": 1}}, seed, inserting=True)
    assert ordered(result) == ordered({"name": "x", "count": 1, "created": 1})


# ---- replacements ----------------------------------------------------------------------------


def test_replace_document_keeps_the_original_id_first() -> None:
    result = replace_document({"_id": 1, "a": 1}, {"b": 2, "_id": 1})
    assert ordered(result) == ordered({"_id": 1, "b": 2})
    assert replace_document({"_id": 1}, {"b": 2}) == {"_id": 1, "b": 2}
    assert list(replace_document(None, {"b": 2, "_id": 5})) == ["_id", "b"]


def test_replace_document_errors() -> None:
    with pytest.raises(WriteFailed) as info:
        replace_document({"_id": 1}, {"_id": 2})
    assert info.value.code == 66
    with pytest.raises(WriteFailed) as info:
        replace_document({"_id": 1}, {"$set": {"a": PRIVATE}})
    assert info.value.code == 52
    assert PRIVATE not in info.value.message
