"""Find projections applied in the process: inclusion, exclusion, ``$slice`` and ``$elemMatch``.

The expected results follow MongoDB's documentation of find projections (4.4 and later):
``$slice`` alone returns every field, next to an inclusion it includes its own field, next to
an exclusion it keeps the exclusion; ``$elemMatch`` includes its field with the first matching
element only, and leaves the field out when nothing matches.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from privata_mongo.core.failures import OperationFailed
from privata_mongo.core.mql.find_projection import compile_find_projection
from privata_mongo.core.mql.values import UnsupportedOperator

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5)
ROW = {
    "_id": 1,
    "name": "Ada",
    "aliases": ["Countess", "Enchantress", "Ada K."],
    "scores": [3, 8, 5],
    "visits": [{"at": 1, "ward": "A"}, {"at": 2, "ward": "B"}, {"at": 3, "ward": "B"}],
    "city": "London",
}


def project(projection: dict[str, Any], row: dict[str, Any] = ROW) -> dict[str, Any]:
    return compile_find_projection(projection, NOW)(row)


@pytest.mark.parametrize(
    ("spec", "aliases"),
    [
        (2, ["Countess", "Enchantress"]),
        (-1, ["Ada K."]),
        (0, []),
        (10, ["Countess", "Enchantress", "Ada K."]),
        ([1, 1], ["Enchantress"]),
        ([-2, 1], ["Enchantress"]),
        ([-5, 2], ["Countess", "Enchantress"]),
        ([5, 2], []),
        (2.0, ["Countess", "Enchantress"]),
    ],
)
def test_slice_alone_keeps_every_field(spec: Any, aliases: list[str]) -> None:
    assert project({"aliases": {"$slice": spec}}) == {**ROW, "aliases": aliases}


def test_slice_next_to_an_inclusion_includes_its_field() -> None:
    assert project({"name": 1, "aliases": {"$slice": 1}}) == {
        "_id": 1,
        "name": "Ada",
        "aliases": ["Countess"],
    }


def test_slice_next_to_an_exclusion_keeps_the_exclusion() -> None:
    expected = {k: v for k, v in ROW.items() if k != "city"}
    assert project({"city": 0, "aliases": {"$slice": -2}}) == {
        **expected,
        "aliases": ["Enchantress", "Ada K."],
    }


def test_slice_of_a_non_array_leaves_it_unchanged() -> None:
    assert project({"name": {"$slice": 1}}) == ROW


@pytest.mark.parametrize("spec", ["2", [1], [1, 0], [1, -1], [1, 2, 3], 1.5])
def test_a_malformed_slice_is_refused_as_the_server_refuses_it(spec: Any) -> None:
    with pytest.raises(OperationFailed) as caught:
        compile_find_projection({"aliases": {"$slice": spec}}, NOW)
    assert caught.value.code == 28724


def test_elem_match_keeps_the_first_matching_element_only() -> None:
    assert project({"visits": {"$elemMatch": {"ward": "B"}}}) == {
        "_id": 1,
        "visits": [{"at": 2, "ward": "B"}],
    }
    assert project({"scores": {"$elemMatch": {"$gt": 4}}, "name": 1}) == {
        "_id": 1,
        "name": "Ada",
        "scores": [8],
    }


def test_elem_match_without_a_match_leaves_the_field_out() -> None:
    assert project({"visits": {"$elemMatch": {"ward": "C"}}, "name": 1}) == {
        "_id": 1,
        "name": "Ada",
    }


def test_operators_on_dotted_paths_and_unknown_operators_are_not_evaluated() -> None:
    with pytest.raises(UnsupportedOperator):
        compile_find_projection({"visits.ward": {"$slice": 1}}, NOW)
    with pytest.raises(UnsupportedOperator):
        compile_find_projection({"aliases": {"$meta": "textScore"}}, NOW)


@pytest.mark.parametrize(
    ("projection", "expected"),
    [
        # MongoDB 4.4+: a find projection's value may be an aggregation expression; a field
        # path is read from the document ($$CURRENT, $$ROOT), a missing one leaves the field out
        ({"name": "$city"}, {"_id": 1, "name": "London"}),
        ({"name": "$$CURRENT.city"}, {"_id": 1, "name": "London"}),
        ({"name": "$$ROOT.city"}, {"_id": 1, "name": "London"}),
        ({"name": "$literal"}, {"_id": 1}),
        ({"name": "$literal", "city": 1}, {"_id": 1, "city": "London"}),
        ({"when": "$$NOW"}, {"_id": 1, "when": NOW}),
    ],
)
def test_computed_fields_read_the_row_as_current(
    projection: dict[str, Any], expected: dict[str, Any]
) -> None:
    # the fuzz finding: ``{"phone": "$literal"}`` raised KeyError('CURRENT'), since the
    # projection was evaluated with no variables bound
    assert project(projection) == expected
