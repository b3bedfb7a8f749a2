"""Op sequences of the aggregation flow: what is pushed down, and what the process reads."""

from __future__ import annotations

from typing import Any

import pytest

from privata_mongo.core.audit import AccessContext
from privata_mongo.core.audit.wrapper import AuditSpec, audited
from privata_mongo.core.flows.aggregate import aggregate
from privata_mongo.core.ops import Aggregate, AppendAudit, FetchAll, NextBatch, ResolveAccess
from privata_mongo.core.schema import PSEUDONYM_FIELD, Side
from privata_mongo.errors import UnsupportedQuery
from privata_mongo.testing.scripted import ScriptedDriver
from tests.unit.builders import make_context, make_schema

PH = PSEUDONYM_FIELD
P1, P2, P3 = (f"pseu_{i:032x}" for i in (1, 2, 3))


def on(kind: type, side: Side) -> Any:
    return lambda op: isinstance(op, kind) and op.side is side


def test_a_group_on_an_identity_field_merges_partial_groups_per_identity_batch() -> None:
    ctx = make_context(make_schema(), batch_size=2)
    pipeline = [
        {"$group": {"_id": "$first_name", "n": {"$sum": 1}, "v": {"$sum": "$visits"}}},
        {"$sort": {"_id": 1}},
    ]
    partials = [
        {"_id": P1, "p0": 2, "p1": 5},
        {"_id": P2, "p0": 1, "p1": 1.5},
        {"_id": P3, "p0": 4, "p1": 10},
    ]
    names = {P1: "Ada", P2: "Bob", P3: "Ada"}

    def identities(pseudonyms: list[str]) -> list[dict[str, Any]]:
        return [{"_id": p, "first_name": names[p]} for p in pseudonyms]

    driver = ScriptedDriver(
        [
            (on(Aggregate, Side.CLINICAL), "cursor"),
            (NextBatch, partials[:2]),
            (on(FetchAll, Side.IDENTITY), identities([P1, P2])),
            (NextBatch, partials[2:]),
            (on(FetchAll, Side.IDENTITY), identities([P3])),
        ]
    )
    driver.run(aggregate(ctx, pipeline, {}))
    assert driver.emitted == [{"_id": "Ada", "n": 6, "v": 15}, {"_id": "Bob", "n": 1, "v": 1.5}]
    opened = driver.seen[0]
    assert isinstance(opened, Aggregate)
    assert opened.options == {"batchSize": 2}  # one server batch per identity read
    (partial_group,) = opened.pipeline
    assert partial_group == {
        "$group": {"_id": f"${PH}", "p0": {"$sum": 1}, "p1": {"$sum": "$visits"}}
    }
    reads = [op for op in driver.seen if isinstance(op, FetchAll)]
    assert [op.query.filter for op in reads] == [{"_id": {"$in": [P1, P2]}}, {"_id": {"$in": [P3]}}]
    assert all(op.query.projection == {"first_name": 1} for op in reads)


def test_identity_accumulators_count_each_document_of_a_partial_group() -> None:
    ctx = make_context(make_schema())
    pipeline = [
        {
            "$group": {
                "_id": "$age",
                "names": {"$push": "$first_name"},
                "distinct": {"$addToSet": "$first_name"},
                "first": {"$min": "$email"},
                "mean": {"$avg": "$address.zip"},
            }
        }
    ]
    partials = [
        {"_id": {PH: P1, "k0": 3}, "p0": 2},
        {"_id": {PH: P2, "k0": 3}, "p0": 1},
        {"_id": P3, "p0": 1},
    ]
    rows = [
        {"_id": P1, "first_name": "Ada", "email": "b@x", "address": {"zip": 1}},
        {"_id": P2, "first_name": "Bob", "email": "a@x", "address": {"zip": 4}},
    ]
    driver = ScriptedDriver(
        [
            (on(Aggregate, Side.CLINICAL), "cursor"),
            (NextBatch, partials),
            (on(FetchAll, Side.IDENTITY), rows),
            # P3 has no identity row: its clinical rows are still there (not deleted meanwhile)
            (on(FetchAll, Side.CLINICAL), [{PH: P3}]),
        ]
    )
    driver.run(aggregate(ctx, pipeline, {}))
    assert driver.emitted == [
        {"_id": 3, "names": ["Ada", "Ada", "Bob"], "distinct": ["Ada", "Bob"], "first": "a@x"}
        | {"mean": 2.0},
        {"_id": None, "names": [], "distinct": [], "first": None, "mean": None},
    ]


def test_a_sort_on_an_identity_field_reads_sort_keys_then_the_page_by_id() -> None:
    ctx = make_context(make_schema())
    pipeline = [{"$match": {"age": 3}}, {"$sort": {"first_name": 1}}, {"$limit": 1}]
    keys = [{"_id": 1, PH: P1}, {"_id": 2, PH: P2}]
    driver = ScriptedDriver(
        [
            (on(FetchAll, Side.CLINICAL), keys),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1, "first_name": "Bob"}, {"_id": P2}]),
            (on(FetchAll, Side.CLINICAL), [{"_id": 2, "age": 3, PH: P2}]),
            (on(FetchAll, Side.IDENTITY), [{"_id": P2, "first_name": "Al", "email": "e"}]),
        ]
    )
    driver.run(aggregate(ctx, pipeline, {"allowDiskUse": True}))
    assert driver.emitted == [{"_id": 2, "first_name": "Al", "email": "e", "age": 3}]
    first = driver.seen[0]
    assert isinstance(first, FetchAll)
    assert first.query.filter == {"age": 3}
    assert first.query.options == {"allow_disk_use": True}
    page = driver.seen[2]
    assert isinstance(page, FetchAll)
    assert page.query.filter == {"_id": {"$in": [2]}}


def test_copied_identity_fields_are_joined_by_pseudonym_and_the_link_removed() -> None:
    ctx = make_context(make_schema())
    pipeline = [{"$project": {"_id": 0, "first_name": 1, "city": "$address.city", "age": 1}}]
    driver = ScriptedDriver(
        [
            (on(Aggregate, Side.CLINICAL), "cursor"),
            (NextBatch, [{"age": 3, PH: P1}, {"age": 4, PH: P2}]),
            (
                on(FetchAll, Side.IDENTITY),
                [
                    {"_id": P1, "first_name": "Ada", "address": {"city": "Oslo"}},
                    {"_id": P2, "first_name": "Bob", "address": {}},
                ],
            ),
        ]
    )
    driver.run(aggregate(ctx, pipeline, {}))
    assert driver.emitted == [
        {"first_name": "Ada", "age": 3, "city": "Oslo"},
        {"first_name": "Bob", "age": 4},
    ]
    read = driver.seen[2]
    assert isinstance(read, FetchAll)
    assert read.query.projection == {"address": 1, "first_name": 1}


def test_stages_needing_every_document_in_the_process_hold_at_most_the_scan_limit() -> None:
    ctx = make_context(make_schema(scan_limit=2))
    pipeline = [{"$unwind": "$address"}, {"$sort": {"age": 1}}]
    driver = ScriptedDriver(
        [
            (on(Aggregate, Side.CLINICAL), "cursor"),
            (NextBatch, [{"age": i, PH: P1} for i in range(3)]),
        ]
    )
    with pytest.raises(UnsupportedQuery, match="more than 2 documents"):
        driver.run(aggregate(ctx, pipeline, {}))
    opened = driver.seen[0]
    assert isinstance(opened, Aggregate)
    assert opened.pipeline == ({"$limit": 3},)


def test_what_cannot_be_pushed_down_is_refused_before_any_read() -> None:
    ctx = make_context(make_schema())
    driver = ScriptedDriver([])
    with pytest.raises(UnsupportedQuery, match=r"\$first"):
        driver.run(aggregate(ctx, [{"$group": {"_id": "$email", "f": {"$first": "$age"}}}], {}))
    with pytest.raises(UnsupportedQuery, match="collation"):
        driver.run(aggregate(ctx, [{"$group": {"_id": "$email"}}], {"collation": {"locale": "fr"}}))
    assert driver.seen == []


def test_the_subjects_of_merged_groups_are_the_partial_groups_subjects() -> None:
    ctx = make_context(make_schema())
    pipeline = [{"$group": {"_id": {"name": "$first_name", "age": "$age"}, "n": {"$sum": 1}}}]
    driver = ScriptedDriver(
        [
            (ResolveAccess, AccessContext(actor="dr.lee")),
            (on(Aggregate, Side.CLINICAL), "cursor"),
            (NextBatch, [{"_id": {PH: P1, "k0": 3}, "p0": 2}, {"_id": {PH: P2}, "p0": 1}]),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1, "first_name": "Ada"}, {"_id": P2}]),
            # P2's row holds no identity value: its clinical rows are looked up, still there
            (on(FetchAll, Side.CLINICAL), [{PH: P2}]),
            (AppendAudit, None),
        ]
    )
    spec = AuditSpec("aggregate", frozenset({"first_name"}))
    driver.run(audited(ctx, lambda c: aggregate(c, pipeline, {}), spec))
    assert driver.emitted == [{"_id": {"name": "Ada", "age": 3}, "n": 2}, {"_id": {}, "n": 1}]
    (record,) = next(op for op in driver.seen if isinstance(op, AppendAudit)).records
    assert (record.subjects, record.fields, record.count) == ((P1, P2), ("first_name",), 2)
