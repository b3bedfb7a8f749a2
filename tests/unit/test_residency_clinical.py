"""Per-region clinical stores without a database: the requests per store and the merges."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privata_mongo.core.failures import WriteFailure
from privata_mongo.core.mql.values import sort_documents
from privata_mongo.core.ops import (
    Count,
    FetchAll,
    Find,
    FindAndModify,
    Gather,
    InRegion,
    Insert,
    InsertOutcome,
    NextBatch,
    Query,
    Update,
    UpdateOutcome,
)
from privata_mongo.core.residency import Residency, Wrapping, regional
from privata_mongo.core.residency.merging import Shape, keyed_projection, mergeable, united
from privata_mongo.core.schema import REGION_FIELD, Side
from privata_mongo.errors import RegionUnavailable
from privata_mongo.testing import ScriptedDriver

RESIDENCY = Residency(
    regions=("eu", "us"),
    default="us",
    wrapping={"eu": Wrapping("local:eu"), "us": Wrapping("local:us")},
    clinical=frozenset({"eu"}),
    model="Patient",
    identity_collection="patient__identity",
)


def _is_find(op: Any, region: str | None, limit: int) -> bool:
    if region is not None:
        if not isinstance(op, InRegion) or op.region != region:
            return False
        op = op.op
    return isinstance(op, Find) and op.query.skip == 0 and op.query.limit == limit


def _listing(query: Query, size: int) -> Generator[Any, Any, list[Any]]:
    handle = yield from Find(Side.CLINICAL, query)
    out: list[Any] = []
    while True:
        batch = yield from NextBatch(handle, size)
        out.extend(batch)
        if len(batch) < size:
            return out


def test_a_sorted_page_asks_each_store_for_skip_plus_limit_and_merges_in_server_order() -> None:
    query = Query({}, projection={"name": 1}, sort=(("visits", -1),), skip=2, limit=3)
    home = [{"_id": 1, "name": "a", "visits": 9}, {"_id": 2, "name": "b", "visits": 4}]
    eu = [
        {"_id": 3, "name": "c", "visits": 8},
        {"_id": 4, "name": "d", "visits": 5},
        {"_id": 5, "name": "e", "visits": 1},
    ]
    driver = ScriptedDriver(
        [
            (
                lambda op: (
                    isinstance(op, Gather)
                    and _is_find(op.ops[0], None, 5)
                    and _is_find(op.ops[1], "eu", 5)
                    and op.ops[0].query.projection == {"name": 1, "visits": 1}
                ),
                ["home cursor", "eu cursor"],
            ),
            (
                lambda op: (
                    isinstance(op, Gather)
                    and op.ops[0] == NextBatch("home cursor", 10)
                    and op.ops[1] == InRegion("eu", NextBatch("eu cursor", 10))
                ),
                [home, eu],
            ),
        ]
    )
    page = driver.run(regional(_listing(query, 10), RESIDENCY))
    assert page == [{"_id": 4, "name": "d"}, {"_id": 2, "name": "b"}, {"_id": 5, "name": "e"}]


def test_a_pin_to_regions_with_stores_of_their_own_asks_only_those_stores() -> None:
    pinned = replace(RESIDENCY, pinned=("eu",))
    driver = ScriptedDriver(
        [
            (lambda op: _is_find(op, "eu", 0), "eu cursor"),
            (lambda op: op == InRegion("eu", NextBatch("eu cursor", 10)), [{"_id": 1}]),
        ]
    )
    assert driver.run(regional(_listing(Query({}), 10), pinned)) == [{"_id": 1}]
    asked = driver.seen[0]
    assert isinstance(asked, InRegion)
    assert isinstance(asked.op, Find)
    assert asked.op.query.filter == {REGION_FIELD: {"$in": ["eu"]}}


def test_counts_are_summed_with_skip_and_limit_applied_after_the_sum() -> None:
    def flow() -> Generator[Any, Any, int]:
        return (yield from Count(Side.CLINICAL, {"x": 1}, {"skip": 2, "limit": 3}))

    driver = ScriptedDriver(
        [
            (
                lambda op: (
                    isinstance(op, Gather)
                    and [o.options if isinstance(o, Count) else o.op.options for o in op.ops]
                    == [{"limit": 5}, {"limit": 5}]
                ),
                [4, 3],
            )
        ]
    )
    assert driver.run(regional(flow(), RESIDENCY)) == 3


def test_new_rows_go_to_their_regions_store_in_order_keeping_failure_indexes() -> None:
    rows = tuple({"_id": i, REGION_FIELD: r} for i, r in enumerate(["eu", "us", "us", "eu"]))

    def flow() -> Generator[Any, Any, InsertOutcome]:
        return (yield from Insert(Side.CLINICAL, rows, False))

    failure = WriteFailure(1, 11000, "duplicate")
    driver = ScriptedDriver(
        [
            (lambda op: isinstance(op, InRegion) and op.op.documents == rows[:1], InsertOutcome()),
            (lambda op: isinstance(op, Insert) and op.documents == rows[1:3], InsertOutcome()),
            (
                lambda op: isinstance(op, InRegion) and op.op.documents == rows[3:],
                InsertOutcome((replace(failure, index=0),)),
            ),
        ]
    )
    outcome = driver.run(regional(flow(), RESIDENCY))
    assert outcome.failures == (replace(failure, index=3),)


def test_an_update_of_one_document_asks_the_stores_in_turn_until_one_matches() -> None:
    def flow() -> Generator[Any, Any, UpdateOutcome]:
        return (yield from Update(Side.CLINICAL, {"_id": 7}, {"$set": {"a": 1}}, multi=False))

    driver = ScriptedDriver(
        [
            (Update, UpdateOutcome(0, 0)),
            (lambda op: isinstance(op, InRegion) and op.region == "eu", UpdateOutcome(1, 1)),
        ]
    )
    assert driver.run(regional(flow(), RESIDENCY)).matched == 1


def test_a_sorted_find_and_modify_changes_the_first_row_over_every_store() -> None:
    def flow() -> Generator[Any, Any, Any]:
        return (
            yield from FindAndModify(
                Side.CLINICAL, "update", {"k": 1}, {"$inc": {"n": 1}}, sort=(("n", 1),)
            )
        )

    driver = ScriptedDriver(
        [
            (
                lambda op: (
                    isinstance(op, Gather)
                    and all(
                        isinstance(probe := (o.op if isinstance(o, InRegion) else o), FetchAll)
                        and probe.query.projection == {"_id": 1, "n": 1}
                        and probe.query.limit == 1
                        for o in op.ops
                    )
                ),
                [[{"_id": "home", "n": 5}], [{"_id": "eu", "n": 2}]],
            ),
            (
                lambda op: (
                    isinstance(op, InRegion)
                    and op.region == "eu"
                    and op.op.filter == {"k": 1, "_id": "eu"}
                ),
                {"_id": "eu", "n": 2},
            ),
        ]
    )
    assert driver.run(regional(flow(), RESIDENCY)) == {"_id": "eu", "n": 2}


def test_an_unreachable_store_fails_a_read_or_is_left_out_when_partial_results_are_allowed() -> (
    None
):
    failing = ScriptedDriver(
        [(Gather, RegionUnavailable("eu"))],
    )
    with pytest.raises(RegionUnavailable):
        failing.run(regional(_listing(Query({}), 10), RESIDENCY))
    left: list[str] = []
    partial = replace(RESIDENCY, partial=True, skipped=left.append)
    driver = ScriptedDriver(
        [
            (Find, "home cursor"),
            (lambda op: isinstance(op, InRegion), RegionUnavailable("eu")),
            (lambda op: op == NextBatch("home cursor", 10), [{"_id": 1}]),
        ]
    )
    assert driver.run(regional(_listing(Query({}), 10), partial)) == [{"_id": 1}]
    assert left == ["eu"]


def test_pipelines_merge_only_around_one_window() -> None:
    own = "patient__identity"
    lookup = {"$lookup": {"from": own, "localField": "a", "foreignField": "_id", "as": "i"}}
    assert mergeable([{"$match": {}}, {"$sort": {"a": 1}}, {"$skip": 2}, {"$limit": 3}]) == (
        Shape([{"$match": {}}], [("a", 1)], 2, 3, [])
    )
    assert mergeable([{"$limit": 5}, {"$skip": 2}]) == Shape([], [], 2, 3, [])
    assert mergeable([{"$match": {}}, {"$limit": 1}, lookup], own) == (
        Shape([{"$match": {}}], [], 0, 1, [lookup])
    )
    assert mergeable([lookup, {"$project": {"a": 1}}], own) == Shape(
        [lookup, {"$project": {"a": 1}}], [], 0, None, []
    )
    assert mergeable([lookup], "other__identity") is None  # another collection: not per store
    assert mergeable([{"$group": {"_id": "$a"}}]) is None
    assert mergeable([{"$sort": {"a": 1}}, {"$project": {"a": 0}}]) is None  # unbounded window
    assert mergeable([{"$sort": {"a": 1}}, {"$sort": {"b": 1}}]) is None


def test_a_projection_reads_the_sort_keys_it_leaves_out_and_says_which() -> None:
    assert keyed_projection({"a": 1}, [("b.c", 1)]) == ({"a": 1, "b.c": 1}, ("b.c",))
    assert keyed_projection({"b": 0}, [("b", 1)]) == ({}, ("b",))
    assert keyed_projection({"a": 1, "_id": 0}, [("_id", 1)]) == ({"a": 1}, ("_id",))
    assert keyed_projection({"b": 1}, [("b.c", 1)]) == ({"b": 1}, ())
    assert keyed_projection(None, [("b", 1)]) == (None, ())
    assert keyed_projection({"_id": 1}, [("b", 1)]) == ({"_id": 1, "b": 1}, ("b",))


_ROWS = st.lists(
    st.fixed_dictionaries(
        {"v": st.one_of(st.integers(-3, 3), st.text("ab", max_size=2), st.none())},
        optional={"w": st.integers(0, 2)},
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(
    home=_ROWS,
    eu=_ROWS,
    skip=st.integers(0, 4),
    limit=st.integers(0, 5),
    direction=st.sampled_from([1, -1]),
    size=st.integers(1, 4),
)
def test_a_merged_page_is_the_page_of_one_store_holding_every_row(
    home: list[dict[str, Any]],
    eu: list[dict[str, Any]],
    skip: int,
    limit: int,
    direction: int,
    size: int,
) -> None:
    rows = {
        None: [{"_id": i, **r} for i, r in enumerate(home)],
        "eu": [{"_id": 100 + i, **r} for i, r in enumerate(eu)],
    }
    sort = [("v", direction), ("_id", 1)]
    query = Query({}, sort=tuple(sort), skip=skip, limit=limit)
    served = _serve(_listing(query, size), rows)
    expected = sort_documents([*rows[None], *rows["eu"]], sort)
    assert served == expected[skip : skip + limit if limit else None]


def _serve(flow: Generator[Any, Any, Any], rows: dict[str | None, list[dict[str, Any]]]) -> Any:
    """Run ``flow`` through the router against two in-memory stores."""
    cursors: dict[str, list[dict[str, Any]]] = {}

    def answer(op: Any, store: str | None) -> Any:
        if isinstance(op, InRegion):
            return answer(op.op, op.region)
        if isinstance(op, Gather):
            return [answer(o, None) for o in op.ops]
        if isinstance(op, Find):
            q = op.query
            found = sort_documents(rows[store], list(q.sort))
            if q.limit:
                found = found[: q.limit]
            name = f"{store}:{len(cursors)}"
            cursors[name] = list(found)
            return name
        assert isinstance(op, NextBatch)
        held = cursors[op.handle]  # type: ignore[index]
        batch, cursors[op.handle] = held[: op.size], held[op.size :]  # type: ignore[index]
        return batch

    routed = regional(flow, RESIDENCY)
    result: Any = None
    try:
        while True:
            result = answer(routed.send(result), None)
    except StopIteration as done:
        return done.value


def test_distinct_values_of_several_stores_are_united_each_once_in_bson_order() -> None:
    values = united([[1, "a"], [None, 1.0, 2]])
    assert values == [None, 1, 2, "a"]
    assert type(values[1]) is int  # the first seen of equal values is kept
    assert united([["b", "a"], ["c"]]) == ["b", "a", "c"]  # stores in first-seen order
