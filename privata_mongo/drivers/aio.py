"""The asyncio driver: runs a core flow, awaiting each request against the async ports.

The twin of ``drivers.sync``, line for line; only ``await`` differs. Every privacy rule lives in
the flows both drivers run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, TypeVar

from privata_mongo.core.ops import Document, Emit, Flow, Steps
from privata_mongo.drivers._dispatch import Binding, call_of
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
    steps = Steps(flow)
    async for _ in _drive(steps, binding):
        raise RuntimeError("a streaming flow was run with run(); use stream()")
    return steps.value


async def stream(flow: Flow[None], binding: AsyncBinding) -> AsyncIterator[tuple[Document, ...]]:
    """Run a flow lazily, yielding each batch it emits to the consumer."""
    async for batch in _drive(Steps(flow), binding):
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
                call = call_of(op, binding)
                result = call.function(*call.args)
                if call.awaited:
                    result = await result
                if call.opens:
                    cursors.append(result)
            except Exception as exc:  # handed back into the flow, which decides
                error = exc
            op = steps.advance(result, error)
    finally:
        steps.close()
        for cursor in cursors:
            await cursor.close()
