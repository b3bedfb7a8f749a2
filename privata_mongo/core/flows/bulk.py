"""``bulk_write`` over a split collection: each request through the same flow as its method.

A bulk is a sequence of inserts, updates, replacements and deletes; each runs through the flow
its single-request method uses, so every rule (identity first, compare-and-swap, nothing
half-written) holds per request. Counts and failures are reported as the server reports a bulk:
an ordered bulk stops at its first failure, an unordered one carries on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from privata_mongo.core.failures import BulkWriteFailed, WriteFailed, WriteFailure
from privata_mongo.core.ops import Flow

from . import write
from .context import Context

__all__ = [
    "BulkDelete",
    "BulkInsert",
    "BulkOutcome",
    "BulkReplace",
    "BulkRequest",
    "BulkRequestsFailed",
    "BulkUpdate",
    "bulk",
]


@dataclass(frozen=True, slots=True)
class BulkInsert:
    """Insert one document (it already has its ``_id``)."""

    document: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class BulkUpdate:
    """``UpdateOne`` / ``UpdateMany``."""

    filter: Mapping[str, Any]
    update: Any
    multi: bool
    upsert: bool
    options: Mapping[str, Any] = field(default_factory=dict)
    sort: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class BulkReplace:
    """``ReplaceOne``."""

    filter: Mapping[str, Any]
    replacement: Mapping[str, Any]
    upsert: bool
    options: Mapping[str, Any] = field(default_factory=dict)
    sort: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class BulkDelete:
    """``DeleteOne`` / ``DeleteMany``."""

    filter: Mapping[str, Any]
    multi: bool
    options: Mapping[str, Any] = field(default_factory=dict)


BulkRequest = BulkInsert | BulkUpdate | BulkReplace | BulkDelete


@dataclass
class BulkOutcome:
    """The counts of a bulk, as the server's bulk API reports them."""

    inserted: int = 0
    matched: int = 0
    modified: int = 0
    removed: int = 0
    upserted: list[tuple[int, Any]] = field(default_factory=list)


class BulkRequestsFailed(BulkWriteFailed):
    """Some requests of a bulk failed; ``outcome`` counts what the others did."""

    def __init__(self, failures: tuple[WriteFailure, ...], outcome: BulkOutcome) -> None:
        super().__init__(failures, outcome.inserted)
        self.outcome = outcome


def bulk(
    ctx: Context,
    requests: Sequence[BulkRequest],
    ordered: bool,
    options: Mapping[str, Any] | None = None,
) -> Flow[BulkOutcome]:
    """Run a bulk of requests in order; see the module docstring for failures.

    ``options`` are the bulk's own (``session``, ``comment``, ``let``,
    ``bypass_document_validation``): pymongo sends them with every command of the bulk, so
    every request carries them.
    """
    outcome = BulkOutcome()
    failures: list[WriteFailure] = []
    common = dict(options or {})
    for index, request in enumerate(requests):
        try:
            yield from _one(ctx, index, request, outcome, common)
        except BulkWriteFailed as exc:
            failures.extend(WriteFailure(index, f.code, f.message, f.details) for f in exc.failures)
        except WriteFailed as exc:
            failures.append(WriteFailure(index, exc.code, exc.message, dict(exc.details)))
        else:
            continue
        if ordered:
            break
    if failures:
        raise BulkRequestsFailed(tuple(failures), outcome)
    return outcome


def _one(
    ctx: Context,
    index: int,
    request: BulkRequest,
    outcome: BulkOutcome,
    common: Mapping[str, Any],
) -> Flow[None]:
    if isinstance(request, BulkInsert):
        yield from write.insert(ctx, [request.document], True, common)
        outcome.inserted += 1
    elif isinstance(request, BulkDelete):
        outcome.removed += yield from write.delete(
            ctx, request.filter, request.multi, {**common, **request.options}
        )
    else:
        if isinstance(request, BulkUpdate):
            done = yield from write.update(
                ctx,
                request.filter,
                request.update,
                request.multi,
                request.upsert,
                {**common, **request.options},
                request.sort,
            )
        else:
            done = yield from write.replace_one(
                ctx,
                request.filter,
                request.replacement,
                request.upsert,
                {**common, **request.options},
                request.sort,
            )
        outcome.matched += done.matched
        outcome.modified += done.modified
        if done.upserted_id is not None:
            outcome.upserted.append((index, done.upserted_id))
