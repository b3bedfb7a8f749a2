"""The asyncio driver: runs a core flow, awaiting each request against the async ports.

The twin of ``drivers.sync``, line for line; only ``await`` differs. Every privacy rule lives in
the flows both drivers run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol, TypeVar

from privata_mongo.core.ops import AnyOp, Document, Emit, Flow, Gather, Steps
from privata_mongo.drivers._dispatch import Binding, call_of, failure_of, routed
from privata_mongo.ports.audit import AsyncAuditTrailPort
from privata_mongo.ports.cache import AsyncCache
from privata_mongo.ports.keys import AsyncKeyShredder, AsyncKeyVault
from privata_mongo.ports.kms import AsyncKmsConnector
from privata_mongo.ports.storage import AsyncBatchCursor, AsyncDocumentStore

__all__ = ["AsyncBinding", "run", "stream"]

T = TypeVar("T")


class AsyncKeys(AsyncKeyVault, AsyncKeyShredder, Protocol):
    """What an async binding's ``keys`` offer: the key vault and the shredder."""


AsyncBinding = Binding[
    AsyncDocumentStore, AsyncKeys, AsyncAuditTrailPort, AsyncKmsConnector, AsyncCache
]


async def run(flow: Flow[T], binding: AsyncBinding) -> T:
    """Run a flow to completion and return its result (a flow here may not ``Emit``)."""
    steps = Steps(routed(flow, binding))
    async for _ in _drive(steps, binding):
        raise RuntimeError("a streaming flow was run with run(); use stream()")
    return steps.value


async def stream(flow: Flow[None], binding: AsyncBinding) -> AsyncIterator[tuple[Document, ...]]:
    """Run a flow lazily, yielding each batch it emits to the consumer."""
    async for batch in _drive(Steps(routed(flow, binding)), binding):
        yield batch


async def _drive(steps: Steps[Any], binding: AsyncBinding) -> AsyncIterator[tuple[Document, ...]]:
    cursors: list[AsyncBatchCursor] = []
    try:
        op = steps.advance()
        while op is not None:
            if isinstance(op, Emit):
                yield op.documents
                op = steps.advance()
                continue
            result: Any = None
            error: Exception | None = None
            try:
                if isinstance(op, Gather):  # concurrently: the slowest region, not the sum
                    done = await asyncio.gather(
                        *(_call(each, binding, cursors) for each in op.ops),
                        return_exceptions=True,
                    )
                    error = next((e for e in done if isinstance(e, Exception)), None)
                    result = None if error is not None else done
                else:
                    result = await _call(op, binding, cursors)
            except Exception as exc:  # handed back into the flow, which decides
                error = exc
            op = steps.advance(result, error)
    finally:
        steps.close()
        for cursor in cursors:
            await cursor.close()


async def _call(op: AnyOp, binding: AsyncBinding, cursors: list[AsyncBatchCursor]) -> Any:
    try:
        call = call_of(op, binding)
        result = call.function(*call.args)
        if call.awaited:
            result = await result
    except Exception as exc:
        failure = failure_of(op, exc)
        if failure is exc:
            raise
        raise failure from exc
    if call.opens:
        cursors.append(result)
    return result
