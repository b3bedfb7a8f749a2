"""Rules the server applies on its own, kept by the flows: distinct order, document size."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from privata_mongo.core.failures import BulkWriteFailed
from privata_mongo.core.flows import read, write
from privata_mongo.core.flows.context import Context
from privata_mongo.core.limits import BSON_OBJECT_TOO_LARGE, MAX_BSON_SIZE
from privata_mongo.core.ops import FetchAll, Insert, InsertOutcome
from privata_mongo.core.schema import PSEUDONYM_FIELD, Side
from privata_mongo.testing.scripted import ScriptedDriver
from tests.unit.builders import make_context, make_schema


@pytest.fixture
def ctx() -> Context:
    return make_context(make_schema())


def on(kind: type, side: Side) -> Any:
    return lambda op: isinstance(op, kind) and op.side is side


def _pseudonym(i: int) -> str:
    return f"pseu_{i:032x}"


def test_distinct_of_an_identity_field_is_in_bson_order(ctx: Context) -> None:
    values: list[Any] = [
        "b",
        2,
        [1.0, "a"],
        datetime.datetime(2020, 1, 1),
        None,
        "B",
        {"k": 1},
        True,
        1,
    ]
    rows = [{PSEUDONYM_FIELD: _pseudonym(i)} for i in range(len(values))]
    identities = [{"_id": _pseudonym(i), "email": v} for i, v in enumerate(values)]
    driver = ScriptedDriver(
        [(on(FetchAll, Side.CLINICAL), rows), (on(FetchAll, Side.IDENTITY), identities)]
    )
    found = driver.run(read.distinct(ctx, "email", {}, {}))
    # null, numbers (2 and 1.0 == 1: the first seen kept), strings by bytes, documents, booleans,
    # dates; an array contributes its elements
    assert found == [None, 1.0, 2, "B", "a", "b", {"k": 1}, True, datetime.datetime(2020, 1, 1)]


def test_an_oversized_document_fails_alone_before_either_half_is_written(ctx: Context) -> None:
    big = "x" * (MAX_BSON_SIZE // 2 + 1)
    documents = [{"_id": 1, "first_name": "A"}, {"_id": 2, "first_name": big, "age": big}]
    driver = ScriptedDriver(
        [(on(Insert, Side.IDENTITY), InsertOutcome()), (on(Insert, Side.CLINICAL), InsertOutcome())]
    )
    with pytest.raises(BulkWriteFailed) as caught:
        driver.run(write.insert(ctx, documents, ordered=False))
    assert [(f.index, f.code) for f in caught.value.failures] == [(1, BSON_OBJECT_TOO_LARGE)]
    assert caught.value.inserted == 1
    written = [op.documents for op in driver.seen if isinstance(op, Insert)]
    assert [len(d) for d in written] == [1, 1]  # the small document's two halves only
