"""A clinical-only update is checked against the size of the whole document, not one half.

Natively the server refuses an update whose resulting document passes 16 MiB (17419). Split,
the server sees the clinical half only, so an update of clinical fields could take the two
halves together past the limit. Where the server measures documents (``$bsonSize``), the flow
first asks it for the documents the update could take past the limit, counting the identity
row's stored size (larger than the identity values it seals); only those are read, joined and
updated in the process to measure the result exactly, and the update is refused before
anything is written when one passes the limit. A server without ``$bsonSize`` (FerretDB 1.x)
enforces no limit of its own: the flow then learns, once, not to ask.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from privata_mongo.core.failures import WriteFailed
from privata_mongo.core.flows import modify, write
from privata_mongo.core.flows.context import Context
from privata_mongo.core.limits import (
    DOCUMENT_GREW_TOO_LARGE,
    MAX_BSON_SIZE,
    ServerSizes,
    growth_bound,
)
from privata_mongo.core.ops import (
    Aggregate,
    FetchAll,
    FindAndModify,
    NextBatch,
    Update,
    UpdateOutcome,
)
from privata_mongo.core.schema import PSEUDONYM_FIELD, Side
from privata_mongo.testing.scripted import ScriptedDriver

P1 = "pseu_" + "0" * 31 + "1"
BIG = "x" * (MAX_BSON_SIZE - 200)  # a clinical value just below the limit


class Unsupported(Exception):
    """What a server without ``$bsonSize`` answers (FerretDB: NotImplemented, 238)."""

    code = 238


def on(kind: type, side: Side | None = None) -> Any:
    return lambda op: isinstance(op, kind) and (side is None or op.side is side)


@pytest.fixture
def sized(ctx: Context) -> Context:
    return replace(ctx, server_sizes=ServerSizes())


def _gate(candidates: list[Any]) -> list[tuple[Any, Any]]:
    return [
        (on(Aggregate, Side.CLINICAL), "gate"),
        (on(NextBatch), [{"_id": i} for i in candidates]),
    ]


def test_an_update_taking_the_halves_past_the_limit_is_refused_before_any_write(
    sized: Context,
) -> None:
    clinical = {"_id": 1, "age": 3, "notes": BIG, PSEUDONYM_FIELD: P1}
    identity = {"_id": P1, "_rev": "r0", "first_name": "Ada", "email": "a" * 300}
    driver = ScriptedDriver(
        [
            *_gate([1]),
            (on(FetchAll, Side.CLINICAL), [clinical]),
            (on(FetchAll, Side.IDENTITY), [identity]),
        ]
    )
    with pytest.raises(WriteFailed) as caught:
        driver.run(write.update(sized, {"age": 3}, {"$set": {"age": 4}}, False, False, {}))
    assert caught.value.code == DOCUMENT_GREW_TOO_LARGE
    assert not [op for op in driver.seen if isinstance(op, Update)]
    gate = driver.seen[0]
    assert isinstance(gate, Aggregate)
    assert gate.pipeline[0] == {"$match": {"age": 3}}
    assert {"$limit": 1} in gate.pipeline  # update_one: the document it would update
    assert "$bsonSize" in repr(gate.pipeline)
    assert sized.schema.identity_collection in repr(gate.pipeline)


def test_a_candidate_whose_result_fits_is_updated_on_the_server(sized: Context) -> None:
    clinical = {"_id": 1, "age": 3, "notes": BIG, PSEUDONYM_FIELD: P1}
    identity = {"_id": P1, "_rev": "r0", "first_name": "Ada"}
    driver = ScriptedDriver(
        [
            *_gate([1]),
            (on(FetchAll, Side.CLINICAL), [clinical]),
            (on(FetchAll, Side.IDENTITY), [identity]),
            (on(Update, Side.CLINICAL), UpdateOutcome(1, 1)),
        ]
    )
    update = {"$set": {"age": 4}}
    assert driver.run(write.update(sized, {}, update, True, False, {})) == UpdateOutcome(1, 1)
    assert {"$limit": 1} not in driver.seen[0].pipeline  # update_many: every match


def test_no_candidate_costs_one_read_and_no_identity_read(sized: Context) -> None:
    driver = ScriptedDriver([*_gate([]), (on(Update, Side.CLINICAL), UpdateOutcome(2, 2))])
    update = {"$set": {"age": 4}}
    assert driver.run(write.update(sized, {}, update, True, False, {})) == UpdateOutcome(2, 2)


def test_a_server_that_does_not_measure_is_not_asked_again(sized: Context) -> None:
    update = {"$set": {"age": 4}}
    first = ScriptedDriver(
        [
            (on(Aggregate, Side.CLINICAL), Unsupported("$bsonSize is not implemented yet")),
            (on(Update, Side.CLINICAL), UpdateOutcome(1, 1)),
        ]
    )
    assert first.run(write.update(sized, {}, update, True, False, {})) == UpdateOutcome(1, 1)
    assert sized.server_sizes is not None
    assert not sized.server_sizes.available
    then = ScriptedDriver([(on(Update, Side.CLINICAL), UpdateOutcome(1, 1))])
    assert then.run(write.update(sized, {}, update, True, False, {})) == UpdateOutcome(1, 1)


def test_other_gate_failures_are_raised(sized: Context) -> None:
    driver = ScriptedDriver([(on(Aggregate, Side.CLINICAL), ConnectionError("down"))])
    with pytest.raises(ConnectionError):
        driver.run(write.update(sized, {}, {"$set": {"age": 4}}, True, False, {}))


def test_an_update_that_cannot_grow_a_document_is_not_checked(sized: Context) -> None:
    driver = ScriptedDriver([(on(Update, Side.CLINICAL), UpdateOutcome(1, 1))])
    shrinking = {"$unset": {"age": ""}, "$pull": {"tags": "a"}}
    assert driver.run(write.update(sized, {}, shrinking, True, False, {})) == UpdateOutcome(1, 1)


def test_growth_bounds() -> None:
    assert growth_bound({"$unset": {"a": ""}, "$pop": {"b": 1}}) == 0
    small = growth_bound({"$set": {"a": 1}})
    assert small is not None
    assert 0 < small < 2048
    big = growth_bound({"$push": {"a": {"$each": ["x" * 10_000]}}})
    assert big is not None
    assert big > 20_000
    padded = growth_bound({"$set": {"a.5000": 1}})  # pads the array with nulls up to 5000
    assert padded is not None
    assert padded > 5000 * 3
    assert growth_bound({"$set": {"a.$[].b": 1}}) is None  # every element: unbounded
    assert growth_bound({"$set": {"a.$[x].b": 1}}) is None


def test_find_one_and_update_measures_the_document_its_sort_picks(sized: Context) -> None:
    clinical = {"_id": 2, "age": 3, "notes": BIG, PSEUDONYM_FIELD: P1}
    identity = {"_id": P1, "_rev": "r0", "first_name": "Ada", "email": "a" * 300}
    driver = ScriptedDriver(
        [
            *_gate([2]),
            (on(FetchAll, Side.CLINICAL), [clinical]),
            (on(FetchAll, Side.IDENTITY), [identity]),
        ]
    )
    flow = modify.find_one_and_update(
        sized, {"age": 3}, {"$set": {"age": 4}}, (("age", -1),), False, True, None, {}
    )
    with pytest.raises(WriteFailed) as caught:
        driver.run(flow)
    assert caught.value.code == DOCUMENT_GREW_TOO_LARGE
    pipeline = driver.seen[0].pipeline
    assert pipeline[1:3] == ({"$sort": {"age": -1}}, {"$limit": 1})
    assert not [op for op in driver.seen if isinstance(op, FindAndModify)]
