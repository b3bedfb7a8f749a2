"""The blocking driver: runs a core flow, executing each request against the ports.

A flow's request is executed and its result sent back; an exception is thrown back into the
flow, which decides (compensate, translate, or let it propagate). Cursors opened during a flow
are closed when it ends, however it ends — flows cannot yield while being closed. Which port
serves a request is ``_dispatch``'s; the async twin (``drivers.aio``) differs only by ``await``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, TypeVar

from privata_mongo.core.ops import AnyOp, Document, Emit, Flow, Gather, Steps
from privata_mongo.drivers._dispatch import Binding, call_of, failure_of, routed
from privata_mongo.ports.audit import AuditTrailPort
from privata_mongo.ports.cache import Cache
from privata_mongo.ports.keys import KeyShredder, KeyVault
from privata_mongo.ports.kms import KmsConnector
from privata_mongo.ports.storage import BatchCursor, DocumentStore

__all__ = ["SyncBinding", "run", "stream"]

T = TypeVar("T")


class SyncKeys(KeyVault, KeyShredder, Protocol):
    """What a sync binding's ``keys`` offer: the key vault and the shredder."""


SyncBinding = Binding[DocumentStore, SyncKeys, AuditTrailPort, KmsConnector, Cache]


def run(flow: Flow[T], binding: SyncBinding) -> T:
    """Run a flow to completion and return its result (a flow here may not ``Emit``)."""
    steps = Steps(routed(flow, binding))
    for _ in _drive(steps, binding):
        raise RuntimeError("a streaming flow was run with run(); use stream()")
    return steps.value


def stream(flow: Flow[None], binding: SyncBinding) -> Iterator[tuple[Document, ...]]:
    """Run a flow lazily, yielding each batch it emits to the consumer."""
    yield from _drive(Steps(routed(flow, binding)), binding)


def _drive(steps: Steps[Any], binding: SyncBinding) -> Iterator[tuple[Document, ...]]:
    cursors: list[BatchCursor] = []
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
                if isinstance(op, Gather):  # one after the other: nothing is gained by threads
                    result = [_call(each, binding, cursors) for each in op.ops]
                else:
                    result = _call(op, binding, cursors)
            except Exception as exc:  # handed back into the flow, which decides
                error = exc
            op = steps.advance(result, error)
    finally:
        steps.close()
        for cursor in cursors:
            cursor.close()


def _call(op: AnyOp, binding: SyncBinding, cursors: list[BatchCursor]) -> Any:
    try:
        call = call_of(op, binding)
        result = call.function(*call.args)
    except Exception as exc:
        failure = failure_of(op, exc)
        if failure is exc:
            raise
        raise failure from exc
    if call.opens:
        cursors.append(result)
    return result
