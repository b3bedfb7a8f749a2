"""The blocking driver: runs a core flow, executing each request against the storage ports.

A flow's request is executed and its result sent back; an exception is thrown back into the
flow, which decides (compensate, translate, or let it propagate). Cursors opened during a flow
are closed when it ends, however it ends — flows cannot yield while being closed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from typing_extensions import assert_never

from privata_mongo.core.ops import (
    Aggregate,
    Count,
    CreateIndex,
    Delete,
    Distinct,
    Document,
    Drop,
    DropIndex,
    Emit,
    EstimatedCount,
    Explain,
    FetchAll,
    Find,
    FindAndModify,
    Flow,
    IndexInformation,
    Insert,
    NextBatch,
    Op,
    Replace,
    ReplaceMany,
    Update,
)
from privata_mongo.core.schema import Side
from privata_mongo.ports.storage import BatchCursor, DocumentStore

__all__ = ["Binding", "run", "stream"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Binding:
    """The two physical collections behind one logical collection."""

    clinical: DocumentStore
    identity: DocumentStore

    def store(self, side: Side) -> DocumentStore:
        """The store for ``side``."""
        return self.identity if side is Side.IDENTITY else self.clinical


def run(flow: Flow[T], binding: Binding) -> T:
    """Run a flow to completion and return its result (a flow here may not ``Emit``)."""
    outcome: list[Any] = []
    for _ in _drive(flow, binding, outcome):
        raise RuntimeError("a streaming flow was run with run(); use stream()")
    return cast(T, outcome[0])


def stream(flow: Flow[None], binding: Binding) -> Iterator[tuple[Document, ...]]:
    """Run a flow lazily, yielding each batch it emits to the consumer."""
    yield from _drive(flow, binding, [])


def _drive(flow: Flow[Any], binding: Binding, outcome: list[Any]) -> Iterator[tuple[Document, ...]]:
    cursors: list[BatchCursor] = []
    result: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                op = flow.throw(error) if error is not None else flow.send(result)
            except StopIteration as done:
                outcome.append(done.value)
                return
            result, error = None, None
            if isinstance(op, Emit):
                yield op.documents
                continue
            try:
                result = _execute(op, binding, cursors)
            except Exception as exc:  # handed back into the flow, which decides
                error = exc
    finally:
        flow.close()
        for cursor in cursors:
            cursor.close()


def _execute(op: Op, binding: Binding, cursors: list[BatchCursor]) -> Any:
    match op:
        case Find(side, query):
            cursor = binding.store(side).find(query)
            cursors.append(cursor)
            return cursor
        case NextBatch(handle, size):
            return cast(BatchCursor, handle).next_batch(size)
        case FetchAll(side, query):
            cursor = binding.store(side).find(query)
            try:
                return _exhaust(cursor)
            finally:
                cursor.close()
        case Count(side, filter, options):
            return binding.store(side).count(filter, options)
        case EstimatedCount(side, options):
            return binding.store(side).estimated_count(options)
        case Distinct(side, key, filter, options):
            return binding.store(side).distinct(key, filter, options)
        case Explain(side, query):
            return binding.store(side).explain(query)
        case Aggregate(side, pipeline, options):
            cursor = binding.store(side).aggregate(pipeline, options)
            cursors.append(cursor)
            return cursor
        case Insert(side, documents, ordered):
            return binding.store(side).insert(documents, ordered)
        case Update(side, filter, update, multi, upsert, options):
            return binding.store(side).update(filter, update, multi, upsert, options)
        case Replace(side, filter, document, upsert, options):
            return binding.store(side).replace(filter, document, upsert, options)
        case ReplaceMany(side, pairs):
            return binding.store(side).replace_many(pairs)
        case Delete(side, filter, multi, options):
            return binding.store(side).delete(filter, multi, options)
        case FindAndModify(
            side, action, filter, document, sort, upsert, return_new, projection, options
        ):
            return binding.store(side).find_and_modify(
                action, filter, document, sort, upsert, return_new, projection, options
            )
        case CreateIndex(side, keys, options):
            return binding.store(side).create_index(keys, options)
        case DropIndex(side, name):
            return binding.store(side).drop_index(name)
        case IndexInformation(side):
            return binding.store(side).index_information()
        case Drop(side):
            return binding.store(side).drop()
        case Emit():
            raise RuntimeError("Emit is handled by the driver loop")
        case _:
            assert_never(op)


def _exhaust(cursor: BatchCursor, size: int = 1000) -> list[Document]:
    out: list[Document] = []
    while True:
        batch = cursor.next_batch(size)
        out.extend(batch)
        if len(batch) < size:
            return out
