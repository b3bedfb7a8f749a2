"""Op sequences of the flows: the ordering rules, with no database and no event loop."""

from __future__ import annotations

import re
from typing import Any

import pytest

from privata_mongo.core.failures import BulkWriteFailed, OperationFailed, WriteFailed, WriteFailure
from privata_mongo.core.flows import read, write
from privata_mongo.core.flows.context import Context
from privata_mongo.core.flows.read import ordered_ids
from privata_mongo.core.ops import (
    Count,
    Delete,
    FetchAll,
    Find,
    FindAndModify,
    Insert,
    InsertOutcome,
    NextBatch,
    Op,
    Query,
    ReplaceMany,
    Update,
    UpdateOutcome,
)
from privata_mongo.core.schema import PSEUDONYM_FIELD, VERSION_FIELD, Side
from privata_mongo.errors import UnsupportedQuery
from privata_mongo.testing.scripted import ScriptedDriver, UnexpectedOp
from tests.unit.builders import make_context, make_schema

P1 = "pseu_" + "0" * 31 + "1"


def on(kind: type, side: Side) -> Any:
    return lambda op: isinstance(op, kind) and op.side is side


def test_insert_writes_identity_before_clinical(ctx: Context) -> None:
    driver = ScriptedDriver(
        [(on(Insert, Side.IDENTITY), InsertOutcome()), (on(Insert, Side.CLINICAL), InsertOutcome())]
    )
    driver.run(write.insert(ctx, [{"_id": 1, "first_name": "Ada", "age": 3}], ordered=True))
    identity, clinical = driver.seen
    assert isinstance(identity, Insert)
    assert isinstance(clinical, Insert)
    assert identity.documents[0]["first_name"] == "Ada"
    assert "first_name" not in clinical.documents[0]
    assert clinical.documents[0][PSEUDONYM_FIELD] == identity.documents[0]["_id"]


def test_clinical_failure_removes_the_identity_rows_it_orphaned(ctx: Context) -> None:
    dup = WriteFailure(1, 11000, "E11000 duplicate key error", {})
    driver = ScriptedDriver(
        [
            (on(Insert, Side.IDENTITY), InsertOutcome()),
            (on(Insert, Side.CLINICAL), InsertOutcome((dup,))),
            (on(Delete, Side.IDENTITY), 2),
        ]
    )
    documents = [{"_id": i, "first_name": f"N{i}"} for i in range(3)]
    with pytest.raises(BulkWriteFailed) as caught:
        driver.run(write.insert(ctx, documents, ordered=True))
    assert caught.value.inserted == 1
    assert [f.index for f in caught.value.failures] == [1]
    delete = driver.seen[-1]
    assert isinstance(delete, Delete)
    orphaned = delete.filter["_id"]["$in"]
    written = driver.seen[0].documents  # type: ignore[union-attr]
    assert orphaned == [written[1]["_id"], written[2]["_id"]]


def test_identity_failure_stops_an_ordered_insert_before_clinical_rows(ctx: Context) -> None:
    dup = WriteFailure(0, 11000, "dup", {})
    driver = ScriptedDriver([(on(Insert, Side.IDENTITY), InsertOutcome((dup,)))])
    with pytest.raises(BulkWriteFailed) as caught:
        driver.run(write.insert(ctx, [{"_id": 1, "email": "x"}, {"_id": 2}], ordered=True))
    assert caught.value.inserted == 0


def test_update_of_identity_fields_swaps_identity_then_updates_clinical(ctx: Context) -> None:
    clinical = {"_id": 1, "age": 3, PSEUDONYM_FIELD: P1}
    identity = {"_id": P1, "_rev": "r0", "email": "old@x"}
    driver = ScriptedDriver(
        [
            (on(FetchAll, Side.CLINICAL), [{"_id": 1}]),  # the ids first: a multi update
            (on(FetchAll, Side.CLINICAL), [clinical]),
            (on(FindAndModify, Side.IDENTITY), identity),  # the write lease, and the row
            (on(ReplaceMany, Side.IDENTITY), 1),
            (on(Update, Side.CLINICAL), UpdateOutcome(1, 1)),
            (on(Update, Side.IDENTITY), UpdateOutcome(1, 1)),  # its release
        ]
    )
    outcome = driver.run(
        write.update(
            ctx, {"age": 3}, {"$set": {"email": "new@x"}, "$inc": {"age": 1}}, True, False, {}
        )
    )
    assert outcome == UpdateOutcome(1, 1)
    swap = driver.seen[3]
    assert isinstance(swap, ReplaceMany)
    ((cas_filter, row),) = swap.pairs
    assert cas_filter == {"_id": P1, "_rev": "r0"}
    assert row["email"] == "new@x"
    assert row["_rev"] != "r0"
    clinical_update = driver.seen[4]
    assert isinstance(clinical_update, Update)
    # The clinical part, plus the version both halves now carry (what readers compare).
    assert clinical_update.update == {
        "$inc": {"age": 1},
        "$set": {VERSION_FIELD: row[VERSION_FIELD]},
    }


def test_failed_clinical_half_restores_the_identity_rows(ctx: Context) -> None:
    clinical = {"_id": 1, "age": 3, PSEUDONYM_FIELD: P1}
    identity = {"_id": P1, "_rev": "r0", "email": "old@x"}
    driver = ScriptedDriver(
        [
            (on(FetchAll, Side.CLINICAL), [clinical]),  # a single update reads its row once
            (on(FindAndModify, Side.IDENTITY), identity),  # the write lease, and the row
            (on(ReplaceMany, Side.IDENTITY), 1),
            (on(Update, Side.CLINICAL), WriteFailed("conflict", 11000)),
            (on(ReplaceMany, Side.IDENTITY), 1),
            (on(Update, Side.IDENTITY), UpdateOutcome(1, 1)),  # its release
        ]
    )
    with pytest.raises(WriteFailed):
        driver.run(write.update(ctx, {}, {"$set": {"email": "new@x", "age": 4}}, False, False, {}))
    restore = driver.seen[-2]
    assert isinstance(restore, ReplaceMany)
    ((_, row),) = restore.pairs
    assert row["email"] == "old@x"


def test_an_update_the_server_would_reject_writes_nothing(ctx: Context) -> None:
    clinical = {"_id": 1, "age": "three", PSEUDONYM_FIELD: P1}
    driver = ScriptedDriver(
        [
            (on(FetchAll, Side.CLINICAL), [clinical]),
            (on(FindAndModify, Side.IDENTITY), {"_id": P1, "_rev": "r0", "email": "a"}),
            (on(Update, Side.IDENTITY), UpdateOutcome(1, 1)),  # the lease's release
        ]
    )
    with pytest.raises(WriteFailed) as caught:
        driver.run(
            write.update(ctx, {}, {"$set": {"email": "b"}, "$inc": {"age": 1}}, False, False, {})
        )
    assert caught.value.code == 14
    assert not [
        op
        for op in driver.seen
        if isinstance(op, ReplaceMany) or (isinstance(op, Update) and op.side is Side.CLINICAL)
    ]


def test_delete_removes_clinical_rows_before_identity_rows(ctx: Context) -> None:
    # every read starts from the clinical row: once it is gone, no read finds half a document
    driver = ScriptedDriver(
        [
            (on(Find, Side.CLINICAL), "cursor"),
            (NextBatch, [{"_id": 1, PSEUDONYM_FIELD: P1}]),
            (on(Delete, Side.CLINICAL), 1),
            (on(Delete, Side.IDENTITY), 1),
        ]
    )
    assert driver.run(write.delete(ctx, {"age": 3}, True, {})) == 1


def test_clinical_only_update_is_one_server_call(ctx: Context) -> None:
    driver = ScriptedDriver([(on(Update, Side.CLINICAL), UpdateOutcome(4, 4))])
    assert driver.run(
        write.update(ctx, {"age": 3}, {"$inc": {"age": 1}}, True, False, {})
    ) == UpdateOutcome(4, 4)


def test_clinical_upsert_links_a_fresh_identity_row(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (on(Update, Side.CLINICAL), UpdateOutcome(0, 0, 7)),
            (on(Insert, Side.IDENTITY), InsertOutcome()),
        ]
    )
    driver.run(write.update(ctx, {"age": 3}, {"$set": {"visits": 1}}, False, True, {}))
    upsert, identity = driver.seen
    assert isinstance(upsert, Update)
    assert isinstance(identity, Insert)
    assert upsert.update["$setOnInsert"][PSEUDONYM_FIELD] == identity.documents[0]["_id"]


def test_find_without_identity_fields_never_reads_the_identity_collection(ctx: Context) -> None:
    driver = ScriptedDriver(
        [(on(Find, Side.CLINICAL), "cursor"), (NextBatch, [{"_id": 1, "age": 3}])]
    )
    driver.run(read.find(ctx, Query({"age": 3}, projection={"age": 1})))
    assert driver.emitted == [{"_id": 1, "age": 3}]
    assert all(getattr(op, "side", Side.CLINICAL) is Side.CLINICAL for op in driver.seen)


def test_regex_on_identity_is_narrowed_by_clinical_conditions(ctx: Context) -> None:
    def identity_scan(op: Op) -> bool:
        return (
            isinstance(op, FetchAll)
            and op.side is Side.IDENTITY
            and op.query.filter == {"_id": {"$in": [P1]}}
        )

    driver = ScriptedDriver(
        [
            (on(FetchAll, Side.CLINICAL), [{PSEUDONYM_FIELD: P1}]),
            (identity_scan, [{"_id": P1, "first_name": "Ada"}]),
            (
                lambda op: (
                    isinstance(op, Find)
                    and op.query.filter == {"age": 3, PSEUDONYM_FIELD: {"$in": [P1]}}
                ),
                "c",
            ),
            (NextBatch, [{"_id": 1, "age": 3, PSEUDONYM_FIELD: P1}]),
            (on(FetchAll, Side.IDENTITY), [{"_id": P1, "first_name": "Ada"}]),
        ]
    )
    driver.run(read.find(ctx, Query({"age": 3, "first_name": re.compile("^A")})))
    assert driver.emitted == [{"_id": 1, "first_name": "Ada", "age": 3}]


def test_in_process_evaluation_is_bounded_by_the_scan_limit() -> None:
    ctx = make_context(make_schema(scan_limit=2))
    rows = [{"_id": f"pseu_{i:032x}", "first_name": "x"} for i in range(3)]
    driver = ScriptedDriver([(on(FetchAll, Side.IDENTITY), rows)])
    with pytest.raises(
        UnsupportedQuery, match=r"first_name.*more than 2 documents.*scan_limit"
    ) as caught:
        driver.run(read.find(ctx, Query({"first_name": re.compile("x")})))
    assert caught.value.field == "first_name"


def test_sort_on_identity_orders_in_process_then_reads_the_page(ctx: Context) -> None:
    rows = [{"_id": i, PSEUDONYM_FIELD: f"pseu_{i:032x}"} for i in range(3)]
    names = {"pseu_" + f"{i:032x}": n for i, n in enumerate(["Cy", "Al", "Bo"])}
    driver = ScriptedDriver(
        [
            (on(FetchAll, Side.CLINICAL), rows),
            (on(FetchAll, Side.IDENTITY), [{"_id": p, "first_name": n} for p, n in names.items()]),
            (
                lambda op: isinstance(op, FetchAll) and op.query.filter == {"_id": {"$in": [1, 2]}},
                [rows[2], rows[1]],
            ),
            (on(FetchAll, Side.IDENTITY), [{"_id": p, "first_name": n} for p, n in names.items()]),
        ]
    )
    driver.run(read.find(ctx, Query({}, sort=(("first_name", 1),), limit=2)))
    assert [d["first_name"] for d in driver.emitted] == ["Al", "Bo"]


def test_scripted_driver_rejects_an_unexpected_request(ctx: Context) -> None:
    driver = ScriptedDriver([(on(Insert, Side.CLINICAL), InsertOutcome())])
    with pytest.raises(UnexpectedOp):
        driver.run(write.insert(ctx, [{"_id": 1}], ordered=True))


_NOCASE = {"locale": "en", "strength": 2}


_C = {"collation": _NOCASE}


@pytest.mark.parametrize(
    ("label", "flow"),
    [
        ("find filter", lambda ctx: read.find(ctx, Query({"first_name": "ada"}, options=_C))),
        ("find sort", lambda ctx: read.find(ctx, Query({}, sort=(("email", 1),), options=_C))),
        ("count", lambda ctx: read.count(ctx, {"email": "a@x"}, _C)),
        ("distinct", lambda ctx: read.distinct(ctx, "first_name", {}, _C)),
        (
            "update",
            lambda ctx: write.update(ctx, {"email": "a@x"}, {"$set": {"age": 1}}, True, False, _C),
        ),
        ("delete", lambda ctx: write.delete(ctx, {"first_name": "ada"}, True, _C)),
    ],
)
def test_a_collation_on_identity_fields_is_refused_before_any_io(
    ctx: Context, label: str, flow: Any
) -> None:
    """Identity values are compared exactly: a collation reaching them is refused, not ignored."""
    driver = ScriptedDriver([])
    with pytest.raises(UnsupportedQuery, match="collation cannot apply") as caught:
        driver.run(flow(ctx))
    assert caught.value.field in {"first_name", "email"}, label


def test_a_collation_on_clinical_fields_alone_still_reaches_the_server(ctx: Context) -> None:
    driver = ScriptedDriver([(on(Count, Side.CLINICAL), 0)])
    assert driver.run(read.count(ctx, {"age": 3}, {"collation": _NOCASE})) == 0
    (counted,) = driver.seen
    assert isinstance(counted, Count)
    assert counted.options == {"collation": _NOCASE}


def test_a_sort_on_an_identity_field_with_a_bad_direction_fails_as_the_server_does_before_reading(
    ctx: Context,
) -> None:
    driver = ScriptedDriver([])
    with pytest.raises(OperationFailed) as caught:
        driver.run(ordered_ids(ctx, {}, [("email", "text")], 0, 0, {}))
    assert caught.value.code == 15975
    assert driver.seen == []
