"""Differential tests: the in-process update engine against mongomock's update_one.

mongomock is a reference, not the truth. Where it departs from MongoDB (each case pinned in
test_update.py against the server's behaviour), the generators avoid the shape or the
comparison normalises it, and every exclusion says why.
"""

from __future__ import annotations

import datetime
from typing import Any

import bson
import mongomock
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pymongo.errors import PyMongoError

from privata_mongo.core.failures import WriteFailed
from privata_mongo.core.mql.update import compile_update, upsert_seed

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime.datetime(2024, 1, 2, 3, 4, 5)

# Small ints only: mongomock returns a plain int where the server widens int32 to int64
# (test_update pins the widening). No NaN: mongomock compares with Python's operators.
# No booleans: in Python True == 1, in MongoDB they are different types.
ints = st.integers(-3, 3)
floats = st.sampled_from([0.5, 1.5, -2.0, 0.0])
strings = st.sampled_from(["", "a", "b", "é"])
scalars = st.one_of(ints, floats, strings, st.none())
numbers = st.one_of(ints, floats)


@st.composite
def subdocs(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key in ("x", "y"):
        if draw(st.booleans()):
            doc[key] = draw(st.one_of(scalars, st.lists(scalars, max_size=3)))
    return doc


values = st.one_of(scalars, st.lists(scalars, max_size=3), subdocs())


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": 1}
    for key in ("a", "b", "c"):
        if draw(st.booleans()):
            doc[key] = draw(values)
    return doc


# Paths: top-level names and one level into embedded documents. No numeric components:
# mongomock treats "a.0" on a document as an index and on a missing field as a list.
TOP = ["a", "b", "c", "d"]
DOTTED = ["a.x", "a.y", "b.x"]
PATHS = st.sampled_from(TOP + DOTTED)


@st.composite
def push_modifiers(draw: st.DrawFn) -> dict[str, Any]:
    # No $sort: mongomock sorts with Python's order (fails across types) and by one key only.
    spec: dict[str, Any] = {"$each": draw(st.lists(scalars, max_size=3))}
    if draw(st.booleans()):
        spec["$position"] = draw(st.integers(-4, 4))
    if draw(st.booleans()):
        spec["$slice"] = draw(st.integers(-3, 3))
    return spec


def _operator(draw: st.DrawFn, upsert: bool) -> tuple[str, dict[str, Any]]:
    # No $mul: mongomock 4.3 does not implement it (it takes the update for a replacement).
    names = ["$set", "$unset", "$inc", "$min", "$max", "$push", "$addToSet"]
    names += ["$pop", "$pullAll", "$rename"]
    if upsert:
        names.append("$setOnInsert")
    op = draw(st.sampled_from(names))
    fields: dict[str, Any] = {}
    for _ in range(draw(st.integers(1, 2))):
        path = draw(PATHS)
        if op in ("$set", "$setOnInsert"):
            fields[path] = draw(values)
        elif op == "$unset":
            fields[path] = ""
        elif op == "$inc":
            fields[path] = draw(numbers)
        elif op in ("$min", "$max"):
            # Scalars but null only: mongomock's $min/$max use Python's order, which cannot
            # compare a list or None with anything (MongoDB orders any two values).
            fields[path] = draw(st.one_of(ints, floats, strings))
        elif op == "$push":
            fields[path] = draw(st.one_of(scalars, push_modifiers()))
        elif op == "$addToSet":
            # $each values are distinct: mongomock does not remove duplicates within $each.
            each = st.lists(scalars, unique=True, max_size=3).map(lambda v: {"$each": v})
            fields[path] = draw(st.one_of(scalars, each))
        elif op == "$pop":
            fields[path] = draw(st.sampled_from([1, -1]))
        elif op == "$pullAll":
            fields[path] = draw(st.lists(scalars, max_size=2))
        else:
            # Top-level names only: mongomock raises NotImplementedError for dotted $rename.
            source, target = draw(st.sampled_from(TOP)), draw(st.sampled_from(TOP))
            fields = {source: target}
    return op, fields


@st.composite
def updates(draw: st.DrawFn, upsert: bool = False) -> dict[str, Any]:
    update: dict[str, Any] = {}
    for _ in range(draw(st.integers(1, 2))):
        op, fields = _operator(draw, upsert)
        update.setdefault(op, {}).update(fields)
    return update


def _comparable(value: Any, keep_order: bool) -> Any:
    """``value`` with its BSON types visible (1 and 1.0 differ) and, optionally, key order."""
    if isinstance(value, dict):
        items = [(key, _comparable(item, keep_order)) for key, item in value.items()]
        return items if keep_order else sorted(items, key=lambda pair: pair[0])
    if isinstance(value, list):
        return [_comparable(item, keep_order) for item in value]
    return (type(value).__name__, value)


def _paths(update: dict[str, Any]) -> list[str]:
    return [
        path
        for op, fields in update.items()
        for key, target in fields.items()
        for path in ((key, target) if op == "$rename" else (key,))
    ]


def _in_server_order(update: dict[str, Any]) -> bool:
    """Whether mongomock's application order (the update's) is the server's (path order).

    MongoDB applies all operators' paths in lexicographic order, so new fields are appended
    in that order; mongomock applies them in the update's order (test_update pins MongoDB's).
    """
    paths = _paths(update)
    if "$rename" in update:
        return len(update) == 1 and len(update["$rename"]) == 1
    return paths == sorted(paths)


def _mongomock_update(
    document: dict[str, Any] | None, filter: dict[str, Any], update: dict[str, Any]
) -> tuple[str, Any, int]:
    collection: Any = mongomock.MongoClient().db.c
    if document is not None:
        collection.insert_one(dict(document))
    try:
        result = collection.update_one(filter, update, upsert=document is None)
    except (PyMongoError, ValueError, TypeError, AttributeError):
        # mongomock reports some failures as Python errors ($inc on a string: TypeError).
        return ("error", None, 0)
    except (KeyError, IndexError):
        # mongomock's own crashes ($pop of a missing field raises KeyError; MongoDB does
        # nothing): no reference to compare with.
        return ("crash", None, 0)
    return ("ok", collection.find_one(), result.modified_count)


def _ours(
    document: dict[str, Any], update: dict[str, Any], inserting: bool
) -> tuple[str, Any, bool]:
    try:
        applied = compile_update(update).apply(document, now=NOW, inserting=inserting)
    except WriteFailed:
        return ("error", None, False)
    return ("ok", applied.document, applied.modified)


def _mongomock_departs(document: dict[str, Any], update: dict[str, Any]) -> bool:
    """Shapes where mongomock is known to differ from MongoDB (see test_update.py)."""
    try:
        compile_update(update)
    except WriteFailed:
        return True  # mongomock checks no path conflicts and few arguments
    for op, fields in update.items():
        for path in fields:
            parts = path.split(".")
            parent = document.get(parts[0], _ABSENT) if len(parts) > 1 else document
            # mongomock's $pullAll on a path under a missing field creates the field.
            if op == "$pullAll" and len(parts) > 1 and parts[0] not in document:
                return True
            # A field name under a scalar or an array: MongoDB fails (28) or, for $unset,
            # does nothing; mongomock ignores some operators silently ($set under a scalar,
            # $min under an array) and fails others with ValueError (test_update pins 28).
            if parent is not _ABSENT and not isinstance(parent, dict):
                return True
            if not isinstance(parent, dict):
                continue
            value = parent.get(parts[-1], _ABSENT)
            # $min/$max: mongomock uses Python's order, which fails across types (MongoDB
            # orders any two values by type; test_update pins it).
            if op in ("$min", "$max") and value is not _ABSENT:
                both_numbers = all(isinstance(v, (int, float)) for v in (value, fields[path]))
                both_strings = all(isinstance(v, str) for v in (value, fields[path]))
                if not (both_numbers or both_strings):
                    return True
            # mongomock's $pullAll and $addToSet iterate any value (a string is a sequence of
            # characters); MongoDB fails on a non-array (2).
            addresses_array = op in ("$pullAll", "$addToSet")
            if addresses_array and value is not _ABSENT and not isinstance(value, list):
                return True
    return False


_ABSENT = object()


def _assert_same(
    ours: tuple[str, Any, Any],
    theirs: tuple[str, Any, Any],
    keep_order: bool,
    before: Any,
    compare_modified: bool = True,
) -> None:
    assert ours[0] == theirs[0], (ours, theirs)
    if ours[0] == "error":
        return
    assert _comparable(ours[1], keep_order) == _comparable(theirs[1], keep_order)
    # mongomock counts a modification when the document is no longer == to the original:
    # MongoDB also counts a change of type (1 -> 1.0) or of field order, which == ignores.
    if compare_modified and (ours[1] == before) == (bson.encode(ours[1]) == bson.encode(before)):
        assert ours[2] == bool(theirs[2]), (ours, theirs)


@SETTINGS
@given(document=documents(), update=updates())
def test_update_matches_mongomock(document: dict[str, Any], update: dict[str, Any]) -> None:
    if _mongomock_departs(document, update):
        return
    ours = _ours(document, update, inserting=False)
    theirs = _mongomock_update(document, {"_id": document["_id"]}, update)
    event(theirs[0])
    if theirs[0] == "crash":
        return
    _assert_same(ours, theirs, _in_server_order(update), document)


@st.composite
def filters(draw: st.DrawFn) -> dict[str, Any]:
    filter: dict[str, Any] = {"_id": draw(st.integers(1, 3))}
    for path in draw(st.lists(st.sampled_from(["a", "b.x", "b.y"]), unique=True, max_size=2)):
        filter[path] = draw(st.one_of(scalars, st.lists(scalars, max_size=2)))
    if draw(st.booleans()):
        filter["c"] = {"$gt": draw(ints)}  # operators seed nothing
    return filter


@SETTINGS
@given(filter=filters(), update=updates(upsert=True))
def test_upsert_matches_mongomock(filter: dict[str, Any], update: dict[str, Any]) -> None:
    seed = upsert_seed(filter)
    if _mongomock_departs(seed, update):
        return
    ours = _ours(seed, update, inserting=True)
    theirs = _mongomock_update(None, filter, update)
    event(theirs[0])
    if theirs[0] == "crash":
        return
    # Key order is not compared: mongomock seeds the filter's fields in the filter's order
    # and keeps _id where the filter had it; MongoDB adds them in path order, _id first
    # (test_update pins both).
    # nModified is 0 for an upsert's insert, on the server and in mongomock: nothing to compare.
    _assert_same(ours, theirs, keep_order=False, before=seed, compare_modified=False)


@pytest.mark.parametrize(
    ("update", "document"),
    [
        ({"$set": {"b": 1, "a": 1}}, {"_id": 1}),  # order of new fields
        ({"$set": {"a": 1.0}}, {"_id": 1, "a": 1}),  # a type change is a modification
    ],
)
def test_known_departures_are_real(update: dict[str, Any], document: dict[str, Any]) -> None:
    """The exclusions above are needed: mongomock really differs on these shapes."""
    ours = _ours(document, update, inserting=False)
    theirs = _mongomock_update(document, {"_id": 1}, update)
    assert (_comparable(ours[1], True), ours[2]) != (_comparable(theirs[1], True), bool(theirs[2]))
