"""Internal. Which store method serves each request: shared by the sync and the async driver.

Both drivers execute a request by calling one method of one side's store; only whether they
``await`` the call differs. Keeping the mapping here leaves each driver a thin loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from typing_extensions import assert_never

from privata_mongo.core.ops import (
    Aggregate,
    Count,
    CreateIndex,
    Delete,
    Distinct,
    Drop,
    DropIndex,
    EstimatedCount,
    Explain,
    Find,
    FindAndModify,
    FindErased,
    IndexInformation,
    Insert,
    KeyOp,
    LoadKeys,
    Replace,
    ReplaceKeys,
    ReplaceMany,
    ShredKeys,
    StoreKeys,
    Update,
)
from privata_mongo.core.schema import Side

__all__ = ["Binding", "Call", "StoreOp", "call_of", "key_call_of"]

S = TypeVar("S", covariant=True)

StoreOp = (
    Find
    | Count
    | EstimatedCount
    | Distinct
    | Explain
    | Aggregate
    | Insert
    | Update
    | Replace
    | ReplaceMany
    | Delete
    | FindAndModify
    | CreateIndex
    | DropIndex
    | IndexInformation
    | Drop
)
"""The requests that are exactly one call of a store method."""


@dataclass(frozen=True, slots=True)
class Binding(Generic[S]):
    """The two physical collections behind one logical collection.

    ``peers`` reads another logical collection of the same database, joined (for ``$lookup``
    into a split collection): ``(collection, filter) → documents``, awaited by the async driver.
    ``keys`` serves the key requests (``KeyOp``): a ``KeyVault`` and ``KeyShredder`` (or their
    async twins), ``None`` when identity rows are not encrypted. ``audit`` is the audit trail
    ``AppendAudit`` goes to (``drivers._audit``), ``None`` when nothing is audited.
    """

    clinical: S
    identity: S
    peers: Callable[[str, Mapping[str, Any]], Any] | None = None
    keys: Any = None
    audit: Any = None

    def store(self, side: Side) -> S:
        """The store for ``side``."""
        return self.identity if side is Side.IDENTITY else self.clinical


@dataclass(frozen=True, slots=True)
class Call:
    """One store method call: on which side, which method, with which arguments."""

    side: Side
    method: str
    args: tuple[Any, ...]
    opens_cursor: bool = False


def call_of(op: StoreOp) -> Call:
    """The store call that executes ``op``."""
    match op:
        case Find(side, query):
            return Call(side, "find", (query,), opens_cursor=True)
        case Aggregate(side, pipeline, options):
            return Call(side, "aggregate", (pipeline, options), opens_cursor=True)
        case Count(side, filter, options):
            return Call(side, "count", (filter, options))
        case EstimatedCount(side, options):
            return Call(side, "estimated_count", (options,))
        case Distinct(side, key, filter, options):
            return Call(side, "distinct", (key, filter, options))
        case Explain(side, query):
            return Call(side, "explain", (query,))
        case Insert(side, documents, ordered):
            return Call(side, "insert", (documents, ordered))
        case Update(side, filter, update, multi, upsert, options):
            return Call(side, "update", (filter, update, multi, upsert, options))
        case Replace(side, filter, document, upsert, options):
            return Call(side, "replace", (filter, document, upsert, options))
        case ReplaceMany(side, pairs):
            return Call(side, "replace_many", (pairs,))
        case Delete(side, filter, multi, options):
            return Call(side, "delete", (filter, multi, options))
        case FindAndModify(side, action, filter, document, sort, upsert, new, projection, options):
            args = (action, filter, document, sort, upsert, new, projection, options)
            return Call(side, "find_and_modify", args)
        case CreateIndex(side, keys, options):
            return Call(side, "create_index", (keys, options))
        case DropIndex(side, name):
            return Call(side, "drop_index", (name,))
        case IndexInformation(side):
            return Call(side, "index_information", ())
        case Drop(side):
            return Call(side, "drop", ())
        case _:
            assert_never(op)


def key_call_of(op: KeyOp) -> tuple[str, tuple[Any, ...]]:
    """The key vault (or shredder) method that executes ``op``, and its arguments."""
    match op:
        case LoadKeys(names):
            return "find", (names,)
        case StoreKeys(documents):
            return "insert", (documents,)
        case ReplaceKeys(documents):
            return "replace", (documents,)
        case ShredKeys(names):
            return "shred", (names,)
        case FindErased(names):
            return "erased", (names,)
        case _:
            assert_never(op)
