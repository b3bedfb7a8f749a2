"""A read running while a document is deleted sees it whole or not at all.

Natively a find sees a deleted document whole or not at all. Split in two rows, a document can
be read half-deleted: the reader reads the clinical row, a delete removes the rows, and the
reader's identity read then finds nothing to join. These tests run a reader's flow and a
delete's flow against one in-memory store, in every interleaving of their requests (each
request is one server call, atomic, as on a server), and check what the reader returned.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from privata_mongo.core.flows import read, write
from privata_mongo.core.flows.context import Context
from privata_mongo.core.mql.match import compile_filter
from privata_mongo.core.ops import (
    AnyOp,
    Delete,
    Document,
    Emit,
    FetchAll,
    Find,
    Flow,
    NextBatch,
    Query,
    Steps,
)
from privata_mongo.core.schema import PSEUDONYM_FIELD, Side
from tests.unit.builders import make_context, make_schema

ADA = "pseu_" + "a" * 32
GRACE = "pseu_" + "b" * 32
WHOLE = {
    1: {"_id": 1, "first_name": "Ada", "email": "ada@example.org", "age": 36},
    2: {"_id": 2, "first_name": "Grace", "email": "grace@example.org", "age": 85},
}


@dataclass
class Store:
    """Two collections in memory; each request is applied whole, as a server applies it."""

    rows: dict[Side, list[Document]]
    cursors: dict[int, list[Document]] = field(default_factory=dict)

    def serve(self, op: AnyOp) -> Any:
        match op:
            case Find(side, query):
                self.cursors[len(self.cursors)] = self._find(side, query)
                return len(self.cursors) - 1
            case NextBatch(handle, size):
                pending = self.cursors[handle]  # type: ignore[index]
                batch, self.cursors[handle] = pending[:size], pending[size:]  # type: ignore[index]
                return batch
            case FetchAll(side, query):
                return self._find(side, query)
            case Delete(side, filter, multi):
                match = compile_filter(filter)
                gone = [r for r in self.rows[side] if match(r)][: None if multi else 1]
                self.rows[side] = [r for r in self.rows[side] if r not in gone]
                return len(gone)
        raise AssertionError(f"the store does not serve {op!r}")

    def _find(self, side: Side, query: Query) -> list[Document]:
        match = compile_filter(query.filter)
        found = [copy.deepcopy(r) for r in self.rows[side] if match(r)]
        return found[: query.limit] if query.limit else found


def _store() -> Store:
    return Store(
        {
            Side.IDENTITY: [
                {"_id": ADA, "_rev": "r1", "first_name": "Ada", "email": "ada@example.org"},
                {"_id": GRACE, "_rev": "r2", "first_name": "Grace", "email": "grace@example.org"},
            ],
            Side.CLINICAL: [
                {"_id": 1, "age": 36, PSEUDONYM_FIELD: ADA},
                {"_id": 2, "age": 85, PSEUDONYM_FIELD: GRACE},
            ],
        }
    )


class Running:
    """One flow advanced a request at a time against the store."""

    def __init__(self, flow: Flow[Any], store: Store) -> None:
        self.steps = Steps(flow)
        self.store = store
        self.emitted: list[Document] = []
        self.requests: list[str] = []
        self.op = self._skip_emits(self.steps.advance())

    def _skip_emits(self, op: AnyOp | None) -> AnyOp | None:
        while isinstance(op, Emit):
            self.emitted.extend(op.documents)
            op = self.steps.advance()
        return op

    @property
    def done(self) -> bool:
        return self.op is None

    def step(self) -> None:
        assert self.op is not None
        self.requests.append(f"{type(self.op).__name__}:{getattr(self.op, 'side', '')}")
        self.op = self._skip_emits(self.steps.advance(self.store.serve(self.op)))


def _length(make: Callable[[Store], Flow[Any]]) -> int:
    """How many requests a flow makes when it runs alone."""
    store = _store()
    running = Running(make(store), store)
    while not running.done:
        running.step()
    return len(running.requests)


def _interleavings(reader: int, writer: int) -> Iterator[tuple[bool, ...]]:
    """Every order of ``reader`` + ``writer`` steps (``True``: the reader's turn)."""
    for positions in itertools.combinations(range(reader + writer), reader):
        chosen = set(positions)
        yield tuple(i in chosen for i in range(reader + writer))


def _run(
    order: Sequence[bool],
    reading: Callable[[Store], Flow[Any]],
    deleting: Callable[[Store], Flow[Any]],
) -> tuple[list[Document], Store]:
    store = _store()
    reader, writer = Running(reading(store), store), Running(deleting(store), store)
    for turn in order:
        flow = reader if turn else writer
        if not flow.done:
            flow.step()
    for flow in (writer, reader):  # a flow that made more requests than when alone finishes
        while not flow.done:
            flow.step()
    return reader.emitted, store


def _ctx() -> Context:
    return make_context(make_schema(), batch_size=10)


def _find_all(store: Store) -> Flow[None]:
    return read.find(_ctx(), Query({}))


def _delete_ada(store: Store) -> Flow[int]:
    return write.delete(_ctx(), {"_id": 1}, False, {})


def _delete_both(store: Store) -> Flow[int]:
    return write.delete(_ctx(), {}, True, {})


def _seen(emitted: list[Document]) -> dict[Any, Document]:
    return {d["_id"]: {k: d[k] for k in sorted(d)} for d in emitted}


@pytest.mark.parametrize("deleting", [_delete_ada, _delete_both], ids=["delete_one", "delete_many"])
def test_a_find_sees_each_document_whole_or_not_at_all_in_every_interleaving(
    deleting: Callable[[Store], Flow[Any]],
) -> None:
    reader, writer = _length(_find_all), _length(deleting)
    assert (reader, writer) == (3, 4)  # a clinical batch, an identity read; select, 2 deletes
    half: list[str] = []
    orders = list(_interleavings(reader, writer))
    for order in orders:
        emitted, store = _run(order, _find_all, deleting)
        for _id, document in _seen(emitted).items():
            if document != {k: WHOLE[_id][k] for k in sorted(WHOLE[_id])}:
                half.append(f"{order}: {document}")
        assert not [r for r in store.rows[Side.CLINICAL] if r["_id"] == 1]  # Ada is deleted
        assert not [r for r in store.rows[Side.IDENTITY] if r["_id"] == ADA]
    assert len(orders) == 35
    assert half == []


def test_a_document_read_before_the_delete_is_returned_whole() -> None:
    # the reader's two reads both before the delete: Ada is returned, whole
    emitted, _ = _run((True, True, True, False, False, False, False), _find_all, _delete_ada)
    assert _seen(emitted)[1] == {k: WHOLE[1][k] for k in sorted(WHOLE[1])}


def test_a_document_deleted_between_the_readers_two_reads_is_left_out() -> None:
    # the clinical batch is read, then the delete runs to its end, then the identity read
    order = (True, True, False, False, False, False, True)
    emitted, _ = _run(order, _find_all, _delete_ada)
    assert sorted(_seen(emitted)) == [2]


def test_an_erased_subjects_document_still_reads_without_identity_values() -> None:
    # erasure (pseudonymise) leaves the clinical row and no identity row: the documented
    # read of an erased subject is the document without its identity fields
    store = _store()
    store.rows[Side.IDENTITY] = [r for r in store.rows[Side.IDENTITY] if r["_id"] != ADA]
    running = Running(read.find(_ctx(), Query({})), store)
    while not running.done:
        running.step()
    assert _seen(running.emitted)[1] == {"_id": 1, "age": 36}
    assert _seen(running.emitted)[2]["first_name"] == "Grace"
