"""Differential tests: the in-process matcher and sort select what mongomock's find selects.

mongomock is a reference, not the truth: where it departs from MongoDB (each case pinned in
test_match.py / test_values.py against the server's behaviour), the generators below avoid the
shape, and every exclusion says why.
"""

from __future__ import annotations

import datetime
from typing import Any

import mongomock
import pytest
from bson.objectid import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privata_mongo.core.mql.match import compile_filter
from privata_mongo.core.mql.values import sort_documents

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

OIDS = [ObjectId(f"{n:024x}") for n in (1, 2, 3)]
DATES = [datetime.datetime(2020, 1, 1) + datetime.timedelta(days=d, milliseconds=m)
         for d, m in ((0, 0), (0, 1), (400, 7))]  # fmt: skip

# No NaN: mongomock compares NaN with Python's operators (test_values pins MongoDB's order).
# No booleans: mongomock's equality is Python's, where True == 1 (MongoDB: different types).
# Datetimes are millisecond-exact: BSON stores milliseconds.
ints = st.integers(-2, 3)
floats = st.sampled_from([0.5, 1.5, 2.0, -0.0, -1.0, float("inf")])
strings = st.sampled_from(["", "a", "ab", "B", "abc", "é"])
scalars = st.one_of(ints, floats, strings, st.none(), st.sampled_from(DATES), st.sampled_from(OIDS))
non_null = st.one_of(ints, floats, strings, st.sampled_from(DATES), st.sampled_from(OIDS))


@st.composite
def subdocs(draw: st.DrawFn, min_keys: int = 0) -> dict[str, Any]:
    # Keys always in the order b, c: mongomock compares dicts ignoring key order.
    doc: dict[str, Any] = {}
    for key in ("b", "c"):
        if draw(st.booleans()) or len(doc) + (key == "b") < min_keys:
            doc[key] = draw(st.one_of(scalars, st.lists(scalars, max_size=3)))
    return doc


# No nested arrays: mongomock's $elemMatch value form expands an element that is itself an
# array (MongoDB tests the element as a whole), and its $in skips the whole-array candidate.
arrays = st.lists(st.one_of(scalars, subdocs()), max_size=3)
# "a" is never a scalar: on a path a.b, MongoDB treats a scalar a as "a.b is missing"
# ({"a.b": null} matches, $ne null does not); mongomock finds no candidate at all.
a_values = st.one_of(subdocs(), arrays)
top_values = st.one_of(scalars, st.lists(scalars, max_size=3), subdocs())


@st.composite
def documents(draw: st.DrawFn) -> list[dict[str, Any]]:
    docs = []
    for identifier in range(draw(st.integers(2, 10))):
        doc: dict[str, Any] = {"_id": identifier}
        if draw(st.booleans()):
            doc["a"] = draw(a_values)
        for key in ("b", "c"):
            if draw(st.booleans()):
                doc[key] = draw(top_values)
        docs.append(doc)
    return docs


TOP_PATHS = ["a", "b", "c"]
# No numeric components (a.0): MongoDB also looks for a field "0" in embedded documents.
DOTTED = ["a.b", "a.c"]


def _families(path: str, values: st.SearchStrategy[Any]) -> dict[str, list[Any]]:
    """Operator documents for ``path``, by family, whose arguments are drawn from ``values``."""
    bounded = values.filter(lambda v: v is not None)
    rng = st.sampled_from(["$gt", "$gte", "$lt", "$lte"])
    families: dict[str, list[Any]] = {
        "equality": [
            values,  # implicit equality
            st.lists(values, max_size=2),
            subdocs(min_keys=1),  # mongomock's {a: {}} matches a missing field: MongoDB's not
            values.map(lambda v: {"$eq": v}),  # $eq/$ne of an array: mongomock skips elements
            values.map(lambda v: {"$ne": v}),
        ],
        # No null bound: MongoDB's {$gte: null} matches missing fields, mongomock's does not.
        "comparison": [st.tuples(rng, bounded).map(lambda t: {t[0]: t[1]})],
        "membership": [
            st.lists(values, max_size=3).map(lambda v: {"$in": v}),
            st.lists(values, max_size=3).map(lambda v: {"$nin": v}),
        ],
        "element": [
            st.sampled_from(["string", "int", "double", "array", "object", "date", "number"]).map(
                lambda v: {"$type": v}
            ),
            # $size 3 only: mongomock's $size counts the keys of a document and matches truthy
            # scalars for 1; documents here have at most two keys.
            st.just({"$size": 3}),
            st.sampled_from(["^a", "b", "^$", "é"]).map(lambda v: {"$regex": v}),
            st.just({"$regex": "^A", "$options": "i"}),
        ],
        "array": [
            st.tuples(rng, bounded).map(lambda t: {"$elemMatch": {t[0]: t[1]}}),
            values.map(lambda v: {"$elemMatch": {"b": v}}),
        ],
    }
    if path in TOP_PATHS:
        # $exists only on top-level paths: through an array of documents mongomock's
        # {"a.c": {"$exists": false}} matches a: [{}, {c: null}], where MongoDB sees that an
        # element has c (pinned in test_match.py).
        families["element"].append(st.booleans().map(lambda v: {"$exists": v}))
        # No null in $all: MongoDB's {$all: [null]} matches a missing field, mongomock's not.
        # Not on dotted paths: mongomock's $all crashes (TypeError) when the first candidate
        # is an array and another one is missing, e.g. a: [{b: []}, {}] for a.b.
        families["array"].append(
            st.lists(bounded, min_size=1, max_size=2).map(lambda v: {"$all": v})
        )
        # Only on top-level paths: through an array of documents, MongoDB lets each operator
        # match a different element (and $not of nothing is true); mongomock needs one
        # candidate to satisfy them all.
        families["comparison"].append(st.tuples(rng, bounded).map(lambda t: {"$not": {t[0]: t[1]}}))
        families["comparison"].append(
            st.tuples(bounded, bounded).map(lambda t: {"$gte": t[0], "$lte": t[1]})
        )
    return families


FAMILIES = ["equality", "comparison", "membership", "element", "array"]


def _scalars_in(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [v for item in value.values() for v in _scalars_in(item)]
    if isinstance(value, list):
        return [v for item in value for v in _scalars_in(item)]
    return [value]


def _at(value: Any, parts: list[str]) -> list[Any]:
    """The scalars a path reaches, roughly: enough to draw query values that hit."""
    if not parts:
        return _scalars_in(value)
    if isinstance(value, list):
        return [v for item in value for v in _at(item, parts)]
    if isinstance(value, dict) and parts[0] in value:
        return _at(value[parts[0]], parts[1:])
    return []


def filters(docs: list[dict[str, Any]], family: str | None) -> st.SearchStrategy[Any]:
    """Filters whose values mostly come from ``docs`` at the queried path, so they hit and miss.

    One family of operators on one path, or (family None) $and/$or/$nor trees of any family.
    """

    def leaf(path: str, name: str) -> st.SearchStrategy[Any]:
        seen = [v for doc in docs for v in _at(doc, path.split("."))]
        values = st.one_of(st.sampled_from(seen), scalars) if seen else scalars
        options = _families(path, values)[name]
        return st.sampled_from(options).flatmap(lambda op: op).map(lambda op: {path: op})

    paths = st.sampled_from(TOP_PATHS + DOTTED)
    if family is not None:
        return paths.flatmap(lambda path: leaf(path, family))
    return st.recursive(
        st.tuples(paths, st.sampled_from(FAMILIES)).flatmap(lambda t: leaf(*t)),
        lambda children: st.tuples(
            st.sampled_from(["$and", "$or", "$nor"]), st.lists(children, min_size=1, max_size=3)
        ).map(lambda t: {t[0]: t[1]}),
        max_leaves=4,
    )


def _mongomock_ids(docs: list[dict[str, Any]], query: dict[str, Any], **find: Any) -> list[int]:
    collection = mongomock.MongoClient().db.c
    if docs:
        collection.insert_many([dict(doc) for doc in docs])
    return [doc["_id"] for doc in collection.find(query, **find)]


@pytest.mark.parametrize("family", [*FAMILIES, None])
@SETTINGS
@given(data=st.data())
def test_matcher_selects_what_mongomock_selects(family: str | None, data: st.DataObject) -> None:
    docs = data.draw(documents(), label="docs")
    query = data.draw(filters(docs, family), label="query")
    matcher = compile_filter(query)
    assert [doc["_id"] for doc in docs if matcher(doc)] == _mongomock_ids(docs, query)


# Sort keys are scalars or missing: mongomock sorts an array by its first element (MongoDB:
# the smallest ascending, the largest descending), and has no NaN order.
sort_values = st.one_of(
    ints, floats, strings, st.none(), st.sampled_from(DATES), st.sampled_from(OIDS)
)


@st.composite
def sortable(draw: st.DrawFn) -> list[dict[str, Any]]:
    docs = []
    for identifier in range(draw(st.integers(0, 10))):
        doc: dict[str, Any] = {"_id": identifier}
        for key in ("k", "j"):
            if draw(st.booleans()):
                doc[key] = draw(sort_values)
        docs.append(doc)
    return docs


@SETTINGS
@given(
    docs=sortable(),
    spec=st.lists(
        st.tuples(st.sampled_from(["k", "j"]), st.sampled_from([1, -1])),
        min_size=1,
        max_size=2,
        unique_by=lambda t: t[0],
    ),
)
def test_sort_orders_as_mongomock(docs: list[dict[str, Any]], spec: list[tuple[str, int]]) -> None:
    mine = [doc["_id"] for doc in sort_documents(docs, spec)]
    assert mine == _mongomock_ids(docs, {}, sort=spec)


# Where mongomock and MongoDB disagree, the matcher follows MongoDB (the reasons are in
# test_match.py). Each row is also checked against mongomock, so that an exclusion above is
# dropped once mongomock is fixed.
NAN = float("nan")
DEVIATIONS = [
    ({"a": 1}, {"a": True}, False),  # Python's True == 1
    ({"a": {"y": 2, "x": 1}}, {"a": {"x": 1, "y": 2}}, False),  # dict equality ignores order
    ({}, {"a": {}}, False),
    ({"a": NAN}, {"a": NAN}, True),  # NaN equals NaN in MongoDB
    ({"a": 5}, {"a.b": None}, True),  # a scalar in the middle of a path: a.b is missing
    ({"a": 5}, {"a.b": {"$ne": None}}, False),
    ({}, {"a": {"$gte": None}}, True),  # a missing field compares as null
    ({}, {"a": {"$all": [None]}}, True),
    ({"a": 5}, {"a": {"$size": 1}}, False),
    ({"a": {"x": 1, "y": 2}}, {"a": {"$size": 2}}, False),
    ({"a": [[5]]}, {"a": {"$elemMatch": {"$gt": 4}}}, False),  # [5] is compared whole
    ({"a": [[{"b": 1}]]}, {"a": {"$elemMatch": {"b": 1}}}, False),  # [{b: 1}] is {"0": …}
    ({"a": [[]]}, {"a": {"$elemMatch": {"b": None}}}, True),
    ({"a": [1, 2]}, {"a": {"$in": [[1, 2]]}}, True),  # the whole array is a candidate
    ({"a": [[1, 2], 3]}, {"a": {"$eq": [1, 2]}}, True),  # so is each element
    ({"a": [{"b": 1}, {"b": 10}]}, {"a.b": {"$gt": 4, "$lt": 6}}, True),
    ({"a": []}, {"a.b": {"$not": {"$gt": 1}}}, True),
    ({"a": "\u0661"}, {"a": {"$regex": r"^\d$"}}, False),  # PCRE without UCP: \d is ASCII
]


@pytest.mark.parametrize(("document", "query", "mongodb"), DEVIATIONS)
def test_known_mongomock_deviations(
    document: dict[str, Any], query: dict[str, Any], mongodb: bool
) -> None:
    assert compile_filter(query)(document) is mongodb
    assert bool(_mongomock_ids([{"_id": 0, **document}], query)) is not mongodb


@pytest.mark.parametrize(
    ("document", "query"),
    [
        ({"a": 2}, {"a": {"$mod": [2, 0]}}),
        ({"a": None}, {"a": {"$type": "null"}}),
        ({"a": 2}, {"a": {"$bitsAllSet": [1]}}),
    ],
)
def test_operators_mongomock_lacks(document: dict[str, Any], query: dict[str, Any]) -> None:
    assert compile_filter(query)(document)
    with pytest.raises((NotImplementedError, mongomock.OperationFailure)):
        _mongomock_ids([{"_id": 0, **document}], query)
