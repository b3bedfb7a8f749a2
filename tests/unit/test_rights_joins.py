"""Joins into marked collections get the read clause, at every depth, without a database."""

from __future__ import annotations

from typing import Any

import pytest

from privata_mongo.core.rights.joins import local_joins, restricted_joins

CLAUSE = {"$nor": [{"_rst.r": True}, {"_rst.o": "research"}]}


def marked(name: str) -> bool:
    return name in ("visit", "lab")


def test_a_top_level_plain_lookup_is_left_to_the_process() -> None:
    plain = {"$lookup": {"from": "visit", "localField": "_id", "foreignField": "p", "as": "v"}}
    ward = {"$lookup": {"from": "ward", "localField": "w", "foreignField": "_id", "as": "w"}}
    assert restricted_joins([plain, ward], marked, CLAUSE) == [plain, ward]
    assert local_joins([plain, ward, {"$match": {}}], marked) == {"visit"}
    nested = {"$facet": {"a": [plain]}}
    assert local_joins([nested], marked) == frozenset()


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        (
            {
                "$lookup": {
                    "from": "visit",
                    "let": {"p": "$_id"},
                    "pipeline": [{"$limit": 1}],
                    "as": "v",
                }
            },
            {
                "$lookup": {
                    "from": "visit",
                    "let": {"p": "$_id"},
                    "pipeline": [{"$match": CLAUSE}, {"$limit": 1}],
                    "as": "v",
                }
            },
        ),
        (
            {
                "$lookup": {
                    "from": "visit",
                    "localField": "a",
                    "foreignField": "b",
                    "pipeline": [],
                    "as": "v",
                }
            },
            {
                "$lookup": {
                    "from": "visit",
                    "localField": "a",
                    "foreignField": "b",
                    "pipeline": [{"$match": CLAUSE}],
                    "as": "v",
                }
            },
        ),
        ({"$unionWith": "lab"}, {"$unionWith": {"coll": "lab", "pipeline": [{"$match": CLAUSE}]}}),
        ({"$unionWith": "ward"}, {"$unionWith": "ward"}),
        (
            {
                "$graphLookup": {
                    "from": "visit",
                    "startWith": "$x",
                    "connectFromField": "a",
                    "connectToField": "b",
                    "as": "g",
                    "restrictSearchWithMatch": {"k": 1},
                }
            },
            {
                "$graphLookup": {
                    "from": "visit",
                    "startWith": "$x",
                    "connectFromField": "a",
                    "connectToField": "b",
                    "as": "g",
                    "restrictSearchWithMatch": {"k": 1, **CLAUSE},
                }
            },
        ),
    ],
)
def test_server_side_joins_into_marked_collections_get_the_clause(
    stage: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert restricted_joins([stage], marked, CLAUSE) == [expected]


def test_nested_joins_are_restricted_at_every_depth_and_through_facets() -> None:
    inner = {"$lookup": {"from": "lab", "localField": "_id", "foreignField": "v", "as": "l"}}
    outer = {"$lookup": {"from": "ward", "let": {}, "pipeline": [inner], "as": "w"}}
    [rewritten] = restricted_joins(
        [{"$facet": {"x": [outer], "y": [{"$count": "n"}]}}], marked, CLAUSE
    )
    lab = rewritten["$facet"]["x"][0]["$lookup"]["pipeline"][0]["$lookup"]
    assert lab["pipeline"] == [{"$match": CLAUSE}]  # nested: the server joins it
    assert rewritten["$facet"]["y"] == [{"$count": "n"}]
    assert "pipeline" not in inner["$lookup"]  # the application's pipeline is not changed


def test_without_a_clause_nothing_changes() -> None:
    stage = {"$unionWith": "lab"}
    assert restricted_joins([stage], marked, None) == [stage]
