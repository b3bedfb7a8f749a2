"""The migration flows' order of requests, pinned without a database.

The conversion writes the identity rows before it rewrites a clinical row, so the plaintext
row keeps every value until the last step; a re-run meets its own identity rows and replaces
them; the restore rewrites the clinical rows before it deletes the identity rows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from privata_mongo.core.failures import DUPLICATE_KEY, WriteFailed, WriteFailure
from privata_mongo.core.flows import migrate
from privata_mongo.core.flows.context import Context
from privata_mongo.core.ops import (
    Count,
    Delete,
    FetchAll,
    FindErased,
    Insert,
    InsertOutcome,
    LoadKeys,
    Op,
    Replace,
    ReplaceMany,
    StoreKeys,
)
from privata_mongo.core.pseudonym import is_pseudonym
from privata_mongo.core.schema import PSEUDONYM_FIELD, Side
from privata_mongo.errors import SubjectErased
from privata_mongo.testing.scripted import ScriptedDriver
from tests.unit.builders import make_context, make_schema

SECRET = b"s" * 32
DOCS = [
    {"_id": 1, "first_name": "Ann", "email": "a@x.org", "age": 40},
    {"_id": 2, "first_name": "Bob", "age": 50},
]


@pytest.fixture
def ctx() -> Context:
    return make_context(make_schema())


def on(kind: type, side: Side) -> Any:
    return lambda op: isinstance(op, kind) and op.side is side


def test_pseudonyms_are_derived_from_the_id_and_the_secret() -> None:
    first = migrate.pseudonym_of(SECRET, 1)
    assert is_pseudonym(first)
    assert migrate.pseudonym_of(SECRET, 1) == first  # a re-run picks the same one
    assert migrate.pseudonym_of(SECRET, 2) != first
    assert migrate.pseudonym_of(b"t" * 32, 1) != first  # another collection's secret
    assert migrate.pseudonym_of(SECRET, "1") != first  # the BSON type counts


def test_checksums_are_keyed_and_see_field_order() -> None:
    doc = {"_id": 1, "a": 1, "b": 2}
    assert migrate.checksum(SECRET, doc) == migrate.checksum(SECRET, dict(doc))
    assert migrate.checksum(SECRET, {"_id": 1, "b": 2, "a": 1}) != migrate.checksum(SECRET, doc)
    assert migrate.checksum(b"t" * 32, doc) != migrate.checksum(SECRET, doc)


def test_convert_writes_identity_rows_then_rewrites_clinical_rows(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (on(Insert, Side.IDENTITY), InsertOutcome()),
            (on(ReplaceMany, Side.CLINICAL), 2),
        ]
    )
    done = driver.run(migrate.convert(ctx, DOCS, SECRET))
    assert (done.documents, done.identity_rows) == (2, 2)
    assert done.fields == frozenset({"first_name", "email"})
    identity: Insert = driver.seen[0]  # type: ignore[assignment]
    assert [r["_id"] for r in identity.documents] == [
        migrate.pseudonym_of(SECRET, i) for i in (1, 2)
    ]
    assert identity.documents[0]["first_name"] == "Ann"
    assert identity.ordered is False
    rewrite: ReplaceMany = driver.seen[1]  # type: ignore[assignment]
    selector, clinical = rewrite.pairs[0]
    assert selector == {"_id": 1}  # found by index; a second rewrite writes the same row
    assert list(clinical) == ["_id", "age", PSEUDONYM_FIELD]
    assert clinical[PSEUDONYM_FIELD] == migrate.pseudonym_of(SECRET, 1)


def test_a_rerun_replaces_the_identity_rows_it_finds(ctx: Context) -> None:
    again = InsertOutcome((WriteFailure(1, DUPLICATE_KEY, "E11000 duplicate key"),))
    driver = ScriptedDriver(
        [
            (on(Insert, Side.IDENTITY), again),
            (lambda op: isinstance(op, Replace) and op.upsert and op.side is Side.IDENTITY, None),
            (on(ReplaceMany, Side.CLINICAL), 2),
        ]
    )
    driver.run(migrate.convert(ctx, DOCS, SECRET))
    replaced: Replace = driver.seen[1]  # type: ignore[assignment]
    assert replaced.filter == {"_id": migrate.pseudonym_of(SECRET, 2)}


def test_an_identity_row_refused_otherwise_stops_before_any_clinical_rewrite(
    ctx: Context,
) -> None:
    refused = InsertOutcome((WriteFailure(0, 121, "Document failed validation"),))
    driver = ScriptedDriver([(on(Insert, Side.IDENTITY), refused)])
    with pytest.raises(WriteFailed, match="refused") as raised:
        driver.run(migrate.convert(ctx, DOCS, SECRET))
    assert "Ann" not in str(raised.value)
    assert not any(isinstance(op, ReplaceMany) for op in driver.seen)


def test_rewrites_go_in_requests_of_at_most_fifty_rows(ctx: Context) -> None:
    docs = [{"_id": i, "first_name": f"N{i}", "age": i} for i in range(120)]
    driver = ScriptedDriver(
        [
            (on(Insert, Side.IDENTITY), InsertOutcome()),
            (on(ReplaceMany, Side.CLINICAL), 50),
            (on(ReplaceMany, Side.CLINICAL), 50),
            (on(ReplaceMany, Side.CLINICAL), 20),
        ]
    )
    assert driver.run(migrate.convert(ctx, docs, SECRET)).documents == 120
    sizes = [len(op.pairs) for op in driver.seen if isinstance(op, ReplaceMany)]
    assert sizes == [50, 50, 20]


def test_rows_already_split_are_left_alone(ctx: Context) -> None:
    driver = ScriptedDriver([])
    done = driver.run(
        migrate.convert(ctx, [{"_id": 1, PSEUDONYM_FIELD: "pseu_" + "0" * 32}], SECRET)
    )
    assert done.documents == 0


def test_restore_rewrites_clinical_rows_before_deleting_identity_rows(ctx: Context) -> None:
    p = migrate.pseudonym_of(SECRET, 1)
    rows = [{"_id": 1, "age": 40, PSEUDONYM_FIELD: p}]
    identity = [{"_id": p, "_rev": "r", "first_name": "Ann", "email": "a@x.org"}]
    driver = ScriptedDriver(
        [
            (on(FetchAll, Side.IDENTITY), identity),
            (on(ReplaceMany, Side.CLINICAL), 1),
            (on(Delete, Side.IDENTITY), 1),
        ]
    )
    done = driver.run(migrate.restore(ctx, rows))
    assert (done.documents, done.identity_rows) == (1, 1)
    rewrite: ReplaceMany = driver.seen[1]  # type: ignore[assignment]
    selector, plain = rewrite.pairs[0]
    assert selector == {"_id": 1}
    assert plain == {"_id": 1, "first_name": "Ann", "email": "a@x.org", "age": 40}
    assert list(plain) == ["_id", "first_name", "email", "age"]  # the declared order


def test_orphans_are_removed_only_once_nothing_is_migrated(ctx: Context) -> None:
    busy = ScriptedDriver([(lambda op: isinstance(op, Count), 3)])
    assert busy.run(migrate.remove_orphans(ctx)) == 0
    done = ScriptedDriver(
        [
            (lambda op: isinstance(op, Count), 0),
            (on(FetchAll, Side.IDENTITY), [{"_id": "pseu_" + "1" * 32}]),
            (on(Delete, Side.IDENTITY), 1),
            (on(FetchAll, Side.IDENTITY), []),
        ]
    )
    assert done.run(migrate.remove_orphans(ctx)) == 1


def test_next_batch_continues_after_the_last_id(ctx: Context) -> None:
    def query_of(op: Op[Any]) -> Any:
        assert isinstance(op, FetchAll)
        return op.query

    first = ScriptedDriver([(on(FetchAll, Side.CLINICAL), [])])
    first.run(migrate.next_batch(ctx, migrate.PLAINTEXT, None, 10, first=True))
    assert query_of(first.seen[0]).filter == dict(migrate.PLAINTEXT)
    later = ScriptedDriver([(on(FetchAll, Side.CLINICAL), [])])
    later.run(migrate.next_batch(ctx, migrate.PLAINTEXT, 7, 10, first=False))
    assert query_of(later.seen[0]).filter == {
        "$and": [dict(migrate.PLAINTEXT), {"_id": {"$gt": 7}}]
    }
    assert query_of(later.seen[0]).sort == (("_id", 1),)


def _sealed() -> Context:
    from privata_mongo.core.crypto.ring import KeyRing
    from tests.unit.test_encryption_flows import MASTER, Clock

    ring = KeyRing(MASTER, clock=Clock(), ttl=60.0)
    ring.checked = True
    schema = replace(make_schema(), sealed=True, searchable=frozenset())
    return replace(make_context(schema), crypto=ring)


def test_copy_inserts_identity_rows_then_clinical_rows(ctx: Context) -> None:
    driver = ScriptedDriver(
        [
            (on(Insert, Side.IDENTITY), InsertOutcome()),
            (on(Insert, Side.CLINICAL), InsertOutcome()),
        ]
    )
    done = driver.run(migrate.copy(ctx, DOCS, SECRET))
    assert (done.documents, done.identity_rows) == (2, 2)
    clinical: Insert = driver.seen[1]  # type: ignore[assignment]
    assert clinical.ordered is False
    assert [dict(r) for r in clinical.documents] == [
        {"_id": 1, "age": 40, PSEUDONYM_FIELD: migrate.pseudonym_of(SECRET, 1)},
        {"_id": 2, "age": 50, PSEUDONYM_FIELD: migrate.pseudonym_of(SECRET, 2)},
    ]
    assert not any(isinstance(op, (Replace, ReplaceMany)) for op in driver.seen)


def test_copy_leaves_the_clinical_rows_a_killed_run_inserted(ctx: Context) -> None:
    there = InsertOutcome((WriteFailure(0, DUPLICATE_KEY, "E11000 duplicate key"),))
    driver = ScriptedDriver(
        [(on(Insert, Side.IDENTITY), InsertOutcome()), (on(Insert, Side.CLINICAL), there)]
    )
    assert driver.run(migrate.copy(ctx, DOCS, SECRET)).documents == 2
    refused = InsertOutcome((WriteFailure(1, 121, "Document failed validation"),))
    failing = ScriptedDriver(
        [(on(Insert, Side.IDENTITY), InsertOutcome()), (on(Insert, Side.CLINICAL), refused)]
    )
    with pytest.raises(WriteFailed, match="clinical row") as raised:
        failing.run(migrate.copy(ctx, DOCS, SECRET))
    assert "Bob" not in str(raised.value)


def test_copy_looks_keys_up_only_when_told() -> None:
    names = tuple(migrate.pseudonym_of(SECRET, d["_id"]) for d in DOCS)
    looked = ScriptedDriver(
        [
            (lambda op: op == LoadKeys(names), []),
            (lambda op: op == FindErased(names), []),
            (StoreKeys, None),
            (on(Insert, Side.IDENTITY), InsertOutcome()),
            (on(Insert, Side.CLINICAL), InsertOutcome()),
        ]
    )
    assert looked.run(migrate.copy(_sealed(), DOCS, SECRET)).keys_found == 0
    fresh = ScriptedDriver(
        [
            (lambda op: op == FindErased(names), []),
            (StoreKeys, None),
            (on(Insert, Side.IDENTITY), InsertOutcome()),
            (on(Insert, Side.CLINICAL), InsertOutcome()),
        ]
    )
    fresh.run(migrate.copy(_sealed(), DOCS, SECRET, look_up=False))
    assert not any(isinstance(op, LoadKeys) for op in fresh.seen)
    erased = ScriptedDriver([(LoadKeys, []), (FindErased, [names[1]])])
    with pytest.raises(SubjectErased, match="erased"):
        erased.run(migrate.copy(_sealed(), DOCS, SECRET))
    assert not any(isinstance(op, Insert) for op in erased.seen)


def test_rejoin_reads_only_and_gives_the_plaintext_documents(ctx: Context) -> None:
    p = migrate.pseudonym_of(SECRET, 1)
    rows = [{"_id": 1, "age": 40, PSEUDONYM_FIELD: p}]
    identity = [{"_id": p, "_rev": "r", "first_name": "Ann", "email": "a@x.org"}]
    driver = ScriptedDriver([(on(FetchAll, Side.IDENTITY), identity)])
    assert driver.run(migrate.rejoin(ctx, rows)) == [
        {"_id": 1, "first_name": "Ann", "email": "a@x.org", "age": 40}
    ]
    assert ScriptedDriver([]).run(migrate.rejoin(ctx, [{"_id": 2, "age": 1}])) == []


def test_subject_keys_are_loaded_in_one_request() -> None:
    sealed = _sealed()
    driver = ScriptedDriver([(lambda op: op == LoadKeys(("pseu_a", "pseu_b")), [])])
    assert driver.run(migrate.load_subject_keys(sealed, ["pseu_a", "pseu_b"])) == 0
    assert (
        ScriptedDriver([]).run(migrate.load_subject_keys(make_context(make_schema()), ["x"])) == 0
    )
