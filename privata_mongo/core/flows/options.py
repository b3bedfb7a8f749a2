"""Options about a whole operation travel with every storage request it makes.

pymongo sends ``session`` and ``comment`` with the one command a call is; a split operation is
several requests over two collections (target reads, identity rows read and rewritten, the
clinical write), and each is part of the same operation: in a transaction, a request without
the session would run outside it, and a comment would not mark it in the server's logs and
profiler. Rather than threading the two through every flow, the operation's flow is wrapped
once: each storage request it yields gets them added (its own options win).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final, TypeVar

from privata_mongo.core.ops import (
    Aggregate,
    AnyOp,
    Count,
    CreateIndex,
    Delete,
    Distinct,
    Drop,
    DropIndex,
    EstimatedCount,
    Explain,
    FetchAll,
    Find,
    FindAndModify,
    Flow,
    IndexInformation,
    Insert,
    Replace,
    ReplaceMany,
    Steps,
    Update,
)

__all__ = ["OPERATION_OPTIONS", "operation_options", "with_operation_options"]

T = TypeVar("T")

OPERATION_OPTIONS: Final = ("session", "comment")
"""The options that are about the operation, not about one of its requests."""

_WITH_OPTIONS = (
    Aggregate,
    Count,
    CreateIndex,
    Delete,
    Distinct,
    Drop,
    DropIndex,
    EstimatedCount,
    FindAndModify,
    IndexInformation,
    Insert,
    Replace,
    ReplaceMany,
    Update,
)
_WITH_QUERY = (Find, FetchAll, Explain)


def operation_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of ``options`` that every request of the operation carries."""
    return {k: options[k] for k in OPERATION_OPTIONS if options.get(k) is not None}


def _with(op: AnyOp, options: Mapping[str, Any]) -> AnyOp:
    if isinstance(op, EstimatedCount):
        # estimated_document_count takes no session (pymongo refuses one there)
        options = {k: v for k, v in options.items() if k != "session"}
    if isinstance(op, _WITH_OPTIONS):
        return dataclasses.replace(op, options={**options, **op.options})
    if isinstance(op, _WITH_QUERY):
        query = dataclasses.replace(op.query, options={**options, **op.query.options})
        return dataclasses.replace(op, query=query)
    return op


def with_operation_options(flow: Flow[T], options: Mapping[str, Any]) -> Flow[T]:
    """``flow``, each of whose storage requests carries ``operation_options(options)``."""
    shared = operation_options(options)
    if not shared:
        return (yield from flow)
    steps = Steps(flow)
    try:
        result: Any = None
        error: BaseException | None = None
        while True:
            op = steps.advance(result, error)
            if op is None:
                return steps.value
            result, error = None, None
            try:
                result = yield from _with(op, shared)
            except Exception as exc:  # handed back into the flow, which decides
                error = exc
    finally:
        if not steps.finished:
            steps.close()
