"""Aggregation stages the planner sends to the process or keeps on the server, against native.

Each pipeline runs on a native collection and on the split one (same documents, same
backend); the results, or the exception types, must be the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mongoengine
import pytest

import privata_mongo.mongoengine as pm
from compat_suite.requirements import requires
from testkit.backends import Backend

PATIENTS = [
    {"_id": 1, "email": "a@x.org", "ward": "A", "visits": 3, "doctor": 10},
    {"_id": 2, "email": "b@x.org", "ward": "B", "visits": 1, "doctor": 11},
    {"_id": 3, "email": "a@x.org", "ward": "A", "visits": 2, "doctor": 10},
]
DOCTORS = [{"_id": 10, "name": "Lee", "key": "a@x.org"}, {"_id": 11, "name": "Kim", "key": "z"}]


@pytest.fixture
def pair(backend: Backend) -> Iterator[tuple[Any, Any]]:
    """(split collection, native collection), both holding ``PATIENTS``; ``doctors`` beside."""
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())

    class AggPatient(pm.Document):
        email = pm.StringField()
        ward = pm.StringField()
        visits = pm.IntField()
        doctor = pm.IntField()
        meta = {"collection": "agg_patient"}

    raw = backend.client()
    db = raw[backend.db_name]
    try:
        split = AggPatient._get_collection()
        split.insert_many([dict(d) for d in PATIENTS])
        db["agg_native"].insert_many([dict(d) for d in PATIENTS])
        db["doctors"].insert_many([dict(d) for d in DOCTORS])
        yield split, db["agg_native"]
    finally:
        mongoengine.disconnect()
        raw.close()


def _outcome(collection: Any, pipeline: list[dict[str, Any]]) -> Any:
    try:
        return list(collection.aggregate(pipeline))
    except Exception as exc:  # the type is the observation: same as native or not
        return type(exc).__name__


def _same(pair: tuple[Any, Any], pipeline: list[dict[str, Any]]) -> Any:
    split, native = pair
    wrapped, expected = _outcome(split, pipeline), _outcome(native, pipeline)
    assert wrapped == expected
    return wrapped


LOOKUP = {"from": "doctors", "as": "doc"}


@requires("lookup")
@pytest.mark.parametrize(
    "pipeline",
    [
        [
            {"$lookup": {**LOOKUP, "localField": "email", "foreignField": "key"}},
            {"$sort": {"_id": 1}},
        ],
        [
            {"$lookup": {**LOOKUP, "localField": "doctor", "foreignField": "_id"}},
            {"$sort": {"_id": 1}},
        ],
        [
            {"$sort": {"_id": 1}},
            {
                "$lookup": {
                    "from": "doctors",
                    "localField": "doctor",
                    "foreignField": "_id",
                    "as": "ward",
                }
            },
            {"$project": {"ward.name": 1}},
        ],
    ],
)
def test_a_lookup_reads_its_local_field_where_it_is(
    pair: tuple[Any, Any], pipeline: list[dict[str, Any]]
) -> None:
    out = _same(pair, pipeline)
    assert isinstance(out, list)
    assert len(out) == 3


@pytest.mark.parametrize(
    "pipeline",
    [
        [{"$sort": {"ward": 1, "visits": 1}}, {"$project": {"_id": 1}}],
        [{"$match": {"visits": {"$gte": 2}}}, {"$sort": {"email": -1, "_id": 1}}, {"$limit": 2}],
    ],
)
def test_sorts_on_both_sides_match_native(
    pair: tuple[Any, Any], pipeline: list[dict[str, Any]]
) -> None:
    out = _same(pair, pipeline)
    assert isinstance(out, list)
    assert out


@requires("replace_root_stage")
@pytest.mark.parametrize(
    "pipeline",
    [
        [{"$replaceRoot": {"newRoot": {"who": "$email", "n": "$visits"}}}, {"$sort": {"n": 1}}],
        [{"$sort": {"visits": -1}}, {"$replaceRoot": {"newRoot": {"w": "$ward"}}}],
    ],
)
def test_a_new_root_reading_identity_fields_is_built_in_the_process(
    pair: tuple[Any, Any], pipeline: list[dict[str, Any]]
) -> None:
    out = _same(pair, pipeline)
    assert isinstance(out, list)
    assert len(out) == 3


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("$email", [{"_id": "a@x.org", "count": 2}, {"_id": "b@x.org", "count": 1}]),
    ],
)
def test_sort_by_count_of_an_identity_field_groups_in_partials(
    pair: tuple[Any, Any], by: str, expected: list[dict[str, Any]]
) -> None:
    # mongomock has no $sortByCount (a clinical one goes to it); the expected documents are
    # MongoDB's for these rows: the server groups per pseudonym, the process merges
    split, _ = pair
    assert list(split.aggregate([{"$sortByCount": by}])) == expected


@pytest.mark.parametrize(
    "pipeline",
    [
        [{"$match": 5}],
        [{"$sort": 5}],
        [{"$sortByCount": {"email": 1}}],
        [{"$skip": 1.5}],
    ],
)
def test_a_malformed_stage_fails_as_natively(
    pair: tuple[Any, Any], pipeline: list[dict[str, Any]]
) -> None:
    out = _same(pair, pipeline)
    assert isinstance(out, str)
