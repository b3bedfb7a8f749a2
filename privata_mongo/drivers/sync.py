"""The blocking driver: runs a core flow, executing each request against the storage ports.

A flow's request is executed and its result sent back; an exception is thrown back into the
flow, which decides (compensate, translate, or let it propagate). Cursors opened during a flow
are closed when it ends, however it ends — flows cannot yield while being closed. Its async twin
is ``drivers.aio``; the two differ only by ``await``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar, cast

from privata_mongo.context import resolve_access
from privata_mongo.core.ops import (
    AppendAudit,
    Document,
    Emit,
    FetchAll,
    FindErased,
    Flow,
    LoadKeys,
    NextBatch,
    Op,
    ReadPeer,
    ReplaceKeys,
    ResolveAccess,
    ShredKeys,
    StoreKeys,
)
from privata_mongo.drivers._calls import Binding, call_of, key_call_of
from privata_mongo.ports.storage import BatchCursor, DocumentStore

__all__ = ["Binding", "SyncBinding", "run", "stream"]

T = TypeVar("T")
SyncBinding = Binding[DocumentStore]


def run(flow: Flow[T], binding: SyncBinding) -> T:
    """Run a flow to completion and return its result (a flow here may not ``Emit``)."""
    outcome: list[Any] = []
    for _ in _drive(flow, binding, outcome):
        raise RuntimeError("a streaming flow was run with run(); use stream()")
    return cast(T, outcome[0])


def stream(flow: Flow[None], binding: SyncBinding) -> Iterator[tuple[Document, ...]]:
    """Run a flow lazily, yielding each batch it emits to the consumer."""
    yield from _drive(flow, binding, [])


def _drive(
    flow: Flow[Any], binding: SyncBinding, outcome: list[Any]
) -> Iterator[tuple[Document, ...]]:
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


def _execute(op: Op, binding: SyncBinding, cursors: list[BatchCursor]) -> Any:
    if isinstance(op, NextBatch):
        return cast(BatchCursor, op.handle).next_batch(op.size)
    if isinstance(op, FetchAll):
        cursor = binding.store(op.side).find(op.query)
        try:
            return _exhaust(cursor)
        finally:
            cursor.close()
    if isinstance(op, ReadPeer):
        if binding.peers is None:
            raise RuntimeError("this binding cannot read other collections")
        return binding.peers(op.collection, op.filter)
    if isinstance(op, Emit):
        raise RuntimeError("Emit is handled by the driver loop")
    if isinstance(op, ResolveAccess):
        return resolve_access()
    if isinstance(op, AppendAudit):
        if binding.audit is not None:
            binding.audit.append(op.records)
        return None
    if isinstance(op, (LoadKeys, StoreKeys, ReplaceKeys, ShredKeys, FindErased)):
        if binding.keys is None:
            raise RuntimeError("this binding has no key vault")
        method, args = key_call_of(op)
        return getattr(binding.keys, method)(*args)
    call = call_of(op)
    result = getattr(binding.store(call.side), call.method)(*call.args)
    if call.opens_cursor:
        cursors.append(result)
    return result


def _exhaust(cursor: BatchCursor, size: int = 1000) -> list[Document]:
    out: list[Document] = []
    while True:
        batch = cursor.next_batch(size)
        out.extend(batch)
        if len(batch) < size:
            return out
