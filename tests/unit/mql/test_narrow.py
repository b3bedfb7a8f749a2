"""Filters sent in their plainest equivalent form: the same documents match, on every value."""

from __future__ import annotations

import re
from typing import Any

import mongomock
import pytest
from bson import ObjectId

from privata_mongo.core.mql.narrow import narrowed

X = ObjectId()


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ({"$and": [{"_id": {"$in": [X]}}, {"_id": X}]}, {"_id": X}),
        ({"$and": [{"_id": X}, {"_id": 2}]}, {"_id": X, "$and": [{"_id": 2}]}),
        (
            {"$and": [{"_id": {"$in": [X]}}, {"_rst.r": {"$ne": True}}]},
            {"_id": X, "_rst.r": {"$ne": True}},
        ),
        ({"_id": {"$in": [X]}, "_lease": None}, {"_id": X, "_lease": None}),
        ({"_id": {"$in": [X, 2]}}, {"_id": {"$in": [X, 2]}}),
        ({"a": {"$in": [[1, 2]]}}, {"a": {"$in": [[1, 2]]}}),
        ({"a": {"$in": [re.compile("^x")]}}, {"a": {"$in": [re.compile("^x")]}}),
        ({"a": {"$in": [None]}}, {"a": {"$in": [None]}}),
        ({"a": {"$in": [1], "$ne": 2}}, {"a": {"$in": [1], "$ne": 2}}),
        ({"$and": [{"$and": [{"a": 1}, {"b": 2}]}, {"c": 3}]}, {"a": 1, "b": 2, "c": 3}),
        ({"$and": [{"a": 1}], "a": 2}, {"a": 1, "$and": [{"a": 2}]}),
        ({"$and": []}, {"$and": []}),
        ({"$or": [{"a": {"$in": [1]}}]}, {"$or": [{"a": {"$in": [1]}}]}),
    ],
)
def test_the_plain_form(given: dict[str, Any], sent: dict[str, Any]) -> None:
    assert narrowed(given) == sent


DOCUMENTS = [
    {"_id": 1, "a": 1, "b": [1, 2]},
    {"_id": 2, "a": [1, 3], "b": 2},
    {"_id": 3, "a": None},
    {"_id": 4},
    {"_id": 5, "a": "x", "b": {"c": 1}},
]


@pytest.mark.parametrize(
    "filter",
    [
        {"$and": [{"a": {"$in": [1]}}, {"b": {"$in": [2]}}]},
        {"$and": [{"a": {"$in": [1]}}, {"a": {"$in": [3]}}]},
        {"a": {"$in": ["x"]}, "$and": [{"b.c": 1}]},
        {"$and": [{"_id": {"$in": [2]}}, {"$and": [{"a": 3}, {"b": {"$in": [2]}}]}]},
        {"$and": [{"a": 1}], "a": 3},
    ],
)
def test_the_same_documents_match(filter: dict[str, Any]) -> None:
    collection = mongomock.MongoClient().db.c
    collection.insert_many([dict(d) for d in DOCUMENTS])
    before = sorted(d["_id"] for d in collection.find(filter))
    assert before  # each case selects something, so the comparison means something
    assert sorted(d["_id"] for d in collection.find(narrowed(filter))) == before
