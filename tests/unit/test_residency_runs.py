"""An insert bound for several places goes out in runs, with the caller's failure indexes."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from privata_mongo.core.failures import WriteFailure
from privata_mongo.core.ops import Insert, InsertOutcome
from privata_mongo.core.residency.runs import in_runs
from privata_mongo.core.schema import Side


def _drive(op: Insert, where: list[str], failing: dict[str, set[int]]) -> tuple[Any, list[Any]]:
    """Run ``in_runs`` with a sender that fails the documents of ``failing`` (by ``n``)."""
    sent: list[tuple[str, list[int]]] = []

    def send(place: str, part: Insert) -> Generator[Any, Any, InsertOutcome]:
        numbers = [d["n"] for d in part.documents]
        sent.append((place, numbers))
        yield None  # a request on the way
        bad = failing.get(place, set())
        return InsertOutcome(
            tuple(WriteFailure(i, 11000, "dup") for i, n in enumerate(numbers) if n in bad)
        )

    flow = in_runs(op, where, send)
    try:
        while True:
            next(flow)
    except StopIteration as done:
        return done.value, sent


def _insert(n: int, ordered: bool = True) -> Insert:
    return Insert(Side.IDENTITY, tuple({"n": i} for i in range(n)), ordered=ordered)


def test_consecutive_documents_of_one_place_go_in_one_request() -> None:
    outcome, sent = _drive(_insert(5), ["eu", "eu", "us", "us", "eu"], {})
    assert sent == [("eu", [0, 1]), ("us", [2, 3]), ("eu", [4])]
    assert outcome.failures == ()


def test_failure_indexes_are_the_callers_and_an_ordered_insert_stops_at_the_first() -> None:
    outcome, sent = _drive(_insert(5), ["eu", "eu", "us", "us", "eu"], {"us": {3}})
    assert [f.index for f in outcome.failures] == [3]
    assert sent == [("eu", [0, 1]), ("us", [2, 3])]  # the last run is not sent


def test_an_unordered_insert_sends_every_run() -> None:
    failing = {"us": {3}, "eu": {4}}
    outcome, sent = _drive(_insert(5, ordered=False), ["eu", "eu", "us", "us", "eu"], failing)
    assert [f.index for f in outcome.failures] == [3, 4]
    assert len(sent) == 3


def test_one_place_sends_the_insert_as_it_is() -> None:
    outcome, sent = _drive(_insert(3), ["us", "us", "us"], {"us": {1}})
    assert sent == [("us", [0, 1, 2])]
    assert [f.index for f in outcome.failures] == [1]
