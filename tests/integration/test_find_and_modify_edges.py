"""find_one_and_* through the proxy on the paths the ODMs rarely take, against native pymongo.

Each case runs the same call on a native collection and on the split one (same documents,
same backend) and compares what comes back and what is stored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mongoengine
import pytest
from pymongo import ReturnDocument

import privata_mongo.mongoengine as pm
from compat_suite.requirements import requires
from privata_mongo import UnsupportedQuery
from testkit.backends import Backend

DOCS = [
    {"_id": 1, "email": "c@x.org", "diagnosis": "J45", "visits": 1},
    {"_id": 2, "email": "a@x.org", "diagnosis": "E11", "visits": 2},
    {"_id": 3, "email": "b@x.org", "diagnosis": "J45", "visits": 3},
]


@pytest.fixture
def pair(backend: Backend) -> Iterator[tuple[Any, Any]]:
    """(split collection, native collection), both holding ``DOCS``."""
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())

    class EdgePatient(pm.Document):
        email = pm.StringField()
        diagnosis = pm.StringField()
        visits = pm.IntField()
        meta = {"collection": "edge_patient"}

    raw = backend.client()
    native = raw[backend.db_name]["edge_native"]
    try:
        split = EdgePatient._get_collection()
        split.insert_many([dict(d) for d in DOCS])
        native.insert_many([dict(d) for d in DOCS])
        yield split, native
    finally:
        mongoengine.disconnect()
        raw.close()


def _both(pair: tuple[Any, Any], method: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    split, native = pair
    return getattr(split, method)(*args, **kwargs), getattr(native, method)(*args, **kwargs)


def _stored(pair: tuple[Any, Any]) -> tuple[list[Any], list[Any]]:
    split, native = pair
    return list(split.find({}, sort=[("_id", 1)])), list(native.find({}, sort=[("_id", 1)]))


@requires("find_and_modify_projection")
@pytest.mark.parametrize(
    "projection", [{"diagnosis": 1}, {"_id": 0, "diagnosis": 1}, {"visits": 0}, {"email": 1}]
)
@pytest.mark.parametrize("after", [False, True])
def test_a_clinical_update_returns_the_projected_document(
    pair: tuple[Any, Any], projection: dict[str, Any], after: bool
) -> None:
    which = ReturnDocument.AFTER if after else ReturnDocument.BEFORE
    wrapped, native = _both(
        pair,
        "find_one_and_update",
        {"diagnosis": "J45"},
        {"$inc": {"visits": 10}},
        projection=projection,
        sort=[("_id", -1)],
        return_document=which,
    )
    assert wrapped == native
    split_rows, native_rows = _stored(pair)
    assert split_rows == native_rows


def test_a_sort_on_an_identity_field_picks_the_target_in_the_process(
    pair: tuple[Any, Any],
) -> None:
    wrapped, native = _both(
        pair,
        "find_one_and_update",
        {},
        {"$set": {"diagnosis": "Z00"}},
        sort=[("email", 1)],
        return_document=ReturnDocument.AFTER,
    )
    assert wrapped == native
    assert wrapped["_id"] == 2
    split_rows, native_rows = _stored(pair)
    assert split_rows == native_rows


@pytest.mark.parametrize("method", ["find_one_and_update", "find_one_and_replace"])
def test_no_match_without_upsert_returns_none_and_writes_nothing(
    pair: tuple[Any, Any], method: str
) -> None:
    change = {"$set": {"email": "n@x.org"}} if method == "find_one_and_update" else {"email": "n"}
    assert _both(pair, method, {"_id": 99}, change) == (None, None)
    assert _both(pair, "find_one_and_delete", {"_id": 99}) == (None, None)
    split_rows, native_rows = _stored(pair)
    assert split_rows == native_rows


def test_an_upsert_of_identity_fields_returning_the_old_document_returns_none(
    pair: tuple[Any, Any],
) -> None:
    wrapped, native = _both(
        pair, "find_one_and_update", {"_id": 7}, {"$set": {"email": "u@x.org"}}, upsert=True
    )
    assert wrapped is None
    assert native is None
    split_rows, native_rows = _stored(pair)
    assert split_rows == native_rows


def test_an_upsert_by_replacement_returns_the_new_document(pair: tuple[Any, Any]) -> None:
    wrapped, native = _both(
        pair,
        "find_one_and_replace",
        {"_id": 8},
        {"email": "r@x.org", "visits": 0},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert wrapped == native == {"_id": 8, "email": "r@x.org", "visits": 0}
    split_rows, native_rows = _stored(pair)
    assert split_rows == native_rows


def test_an_update_pipeline_that_names_an_identity_field_is_refused(
    pair: tuple[Any, Any],
) -> None:
    split, _ = pair
    with pytest.raises(UnsupportedQuery, match="update pipeline cannot read or write identity"):
        split.find_one_and_update({"_id": 1}, [{"$set": {"email": "$diagnosis"}}])
    assert split.find_one({"_id": 1})["email"] == "c@x.org"


@requires("update_pipelines")
def test_a_clinical_update_pipeline_with_upsert_links_the_new_document(
    pair: tuple[Any, Any],
) -> None:
    split, _ = pair
    created = split.find_one_and_update(
        {"_id": 9}, [{"$set": {"visits": 5}}], upsert=True, return_document=ReturnDocument.AFTER
    )
    assert created == {"_id": 9, "visits": 5}
    kept = split.find_one_and_update(
        {"_id": 1}, [{"$set": {"visits": 6}}], upsert=True, return_document=ReturnDocument.AFTER
    )
    assert kept == {"_id": 1, "email": "c@x.org", "diagnosis": "J45", "visits": 6}
