"""The asyncio driver: runs a core flow, awaiting each request against the async ports.

The twin of ``drivers.sync``, line for line; only ``await`` differs. Every privacy rule lives in
the flows both drivers run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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
from privata_mongo.ports.storage import AsyncBatchCursor, AsyncDocumentStore

__all__ = ["AsyncBinding", "run", "stream"]

T = TypeVar("T")
AsyncBinding = Binding[AsyncDocumentStore]


async def run(flow: Flow[T], binding: AsyncBinding) -> T:
    """Run a flow to completion and return its result (a flow here may not ``Emit``)."""
    outcome: list[Any] = []
    async for _ in _drive(flow, binding, outcome):
        raise RuntimeError("a streaming flow was run with run(); use stream()")
    return cast(T, outcome[0])


async def stream(flow: Flow[None], binding: AsyncBinding) -> AsyncIterator[tuple[Document, ...]]:
    """Run a flow lazily, yielding each batch it emits to the consumer."""
    async for batch in _drive(flow, binding, []):
        yield batch


async def _drive(
    flow: Flow[Any], binding: AsyncBinding, outcome: list[Any]
) -> AsyncIterator[tuple[Document, ...]]:
    cursors: list[AsyncBatchCursor] = []
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
                result = await _execute(op, binding, cursors)
            except Exception as exc:  # handed back into the flow, which decides
                error = exc
    finally:
        flow.close()
        for cursor in cursors:
            await cursor.close()


async def _execute(op: Op, binding: AsyncBinding, cursors: list[AsyncBatchCursor]) -> Any:
    if isinstance(op, NextBatch):
        return await cast(AsyncBatchCursor, op.handle).next_batch(op.size)
    if isinstance(op, FetchAll):
        cursor = await binding.store(op.side).find(op.query)
        try:
            return await _exhaust(cursor)
        finally:
            await cursor.close()
    if isinstance(op, ReadPeer):
        if binding.peers is None:
            raise RuntimeError("this binding cannot read other collections")
        return await binding.peers(op.collection, op.filter)
    if isinstance(op, Emit):
        raise RuntimeError("Emit is handled by the driver loop")
    if isinstance(op, ResolveAccess):
        return resolve_access()
    if isinstance(op, AppendAudit):
        if binding.audit is not None:
            await binding.audit.append(op.records)
        return None
    if isinstance(op, (LoadKeys, StoreKeys, ReplaceKeys, ShredKeys, FindErased)):
        if binding.keys is None:
            raise RuntimeError("this binding has no key vault")
        method, args = key_call_of(op)
        return await getattr(binding.keys, method)(*args)
    call = call_of(op)
    result = await getattr(binding.store(call.side), call.method)(*call.args)
    if call.opens_cursor:
        cursors.append(result)
    return result


async def _exhaust(cursor: AsyncBatchCursor, size: int = 1000) -> list[Document]:
    out: list[Document] = []
    while True:
        batch = await cursor.next_batch(size)
        out.extend(batch)
        if len(batch) < size:
            return out
