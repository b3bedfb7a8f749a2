"""Every I/O request a flow may yield, as frozen data, and the ``Flow`` type itself.

A flow is a generator: it yields one of these requests, a driver executes it against the ports
and sends the result back (or throws the error in). Each request names the side (identity or
clinical collection) it targets; the driver knows which physical collection that is. Keeping
the whole vocabulary in one module makes the op sequence of any operation easy to assert in unit
tests, with no database and no event loop.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypeVar

from privata_mongo.core.audit import AuditRecord
from privata_mongo.core.failures import WriteFailure
from privata_mongo.core.schema import Side

__all__ = [
    "Aggregate",
    "AppendAudit",
    "Count",
    "CreateIndex",
    "Delete",
    "Distinct",
    "Document",
    "Drop",
    "DropIndex",
    "Emit",
    "EstimatedCount",
    "Explain",
    "FetchAll",
    "Find",
    "FindAndModify",
    "FindErased",
    "Flow",
    "IndexInformation",
    "Insert",
    "InsertOutcome",
    "KeyOp",
    "LoadKeys",
    "NextBatch",
    "Op",
    "Query",
    "ReadPeer",
    "Replace",
    "ReplaceKeys",
    "ReplaceMany",
    "ResolveAccess",
    "ShredKeys",
    "StoreKeys",
    "Update",
    "UpdateOutcome",
]

T = TypeVar("T")
Document: TypeAlias = dict[str, Any]
Flow: TypeAlias = Generator["Op", Any, T]
"""A flow yields ``Op`` requests, receives their results, and returns a ``T``."""

_EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Query:
    """A server-side find on one physical collection.

    ``options`` carries what the core does not interpret (hint, collation, comment,
    max_time_ms, allow_disk_use, no_cursor_timeout, session …) unchanged to the driver.
    """

    filter: Mapping[str, Any]
    projection: Mapping[str, Any] | None = None
    sort: tuple[tuple[str, Any], ...] = ()
    skip: int = 0
    limit: int = 0
    batch_size: int = 0
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Find:
    """Open a server cursor; the result is an opaque handle for ``NextBatch``."""

    side: Side
    query: Query


@dataclass(frozen=True, slots=True)
class NextBatch:
    """Read up to ``size`` documents from a cursor; fewer means it is exhausted."""

    handle: object
    size: int


@dataclass(frozen=True, slots=True)
class FetchAll:
    """Run a find and return every document (for bounded reads: by id lists or limits)."""

    side: Side
    query: Query


@dataclass(frozen=True, slots=True)
class ReadPeer:
    """Read another logical collection of the same database, joined as the application sees it.

    Used for ``$lookup`` into a split collection, which the server cannot join.
    """

    collection: str
    filter: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Explain:
    """The server's query plan for a find."""

    side: Side
    query: Query


@dataclass(frozen=True, slots=True)
class Count:
    """``count_documents``; ``options`` may carry skip, limit, hint, collation."""

    side: Side
    filter: Mapping[str, Any]
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class EstimatedCount:
    """``estimated_document_count``."""

    side: Side
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Distinct:
    """Server-side ``distinct`` of a key over a filter."""

    side: Side
    key: str
    filter: Mapping[str, Any]
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Aggregate:
    """Run a pipeline server-side; the result is a handle for ``NextBatch``."""

    side: Side
    pipeline: tuple[Mapping[str, Any], ...]
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class InsertOutcome:
    """Which documents of an insert failed (indexes into the request), and why."""

    failures: tuple[WriteFailure, ...] = ()

    def failed(self) -> frozenset[int]:
        """Indexes of the documents that were not written."""
        return frozenset(f.index for f in self.failures)


@dataclass(frozen=True, slots=True)
class Insert:
    """Insert documents; per-document failures come back in an ``InsertOutcome``."""

    side: Side
    documents: tuple[Mapping[str, Any], ...]
    ordered: bool = True


@dataclass(frozen=True, slots=True)
class UpdateOutcome:
    """The counts pymongo's ``UpdateResult`` reports.

    ``raw`` is the server's own reply when one server operation produced the whole outcome;
    returning it unchanged keeps ``full_result`` native on every backend.
    """

    matched: int
    modified: int
    upserted_id: Any = None
    raw: Mapping[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Update:
    """Server-side ``update_one``/``update_many`` with an operator document or pipeline."""

    side: Side
    filter: Mapping[str, Any]
    update: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    multi: bool
    upsert: bool = False
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Replace:
    """Server-side ``replace_one``."""

    side: Side
    filter: Mapping[str, Any]
    document: Mapping[str, Any]
    upsert: bool = False
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class ReplaceMany:
    """Unordered bulk of ``(filter, replacement)`` pairs; the result is the matched count."""

    side: Side
    pairs: tuple[tuple[Mapping[str, Any], Mapping[str, Any]], ...]


@dataclass(frozen=True, slots=True)
class Delete:
    """``delete_one``/``delete_many``; the result is the deleted count."""

    side: Side
    filter: Mapping[str, Any]
    multi: bool
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class FindAndModify:
    """Server-side ``find_one_and_update``/``_replace``/``_delete``; returns a document or None."""

    side: Side
    action: Literal["update", "replace", "delete"]
    filter: Mapping[str, Any]
    document: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    sort: tuple[tuple[str, Any], ...] = ()
    upsert: bool = False
    return_new: bool = False
    projection: Mapping[str, Any] | None = None
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class CreateIndex:
    """Create an index; the result is its name."""

    side: Side
    keys: tuple[tuple[str, Any], ...]
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class DropIndex:
    """Drop an index by name."""

    side: Side
    name: str


@dataclass(frozen=True, slots=True)
class IndexInformation:
    """``index_information()`` of one side."""

    side: Side


@dataclass(frozen=True, slots=True)
class Drop:
    """Drop one side's collection."""

    side: Side


@dataclass(frozen=True, slots=True)
class Emit:
    """Hand a batch of finished, native-shaped documents to the consumer of a stream."""

    documents: tuple[Document, ...]


@dataclass(frozen=True, slots=True)
class ResolveAccess:
    """The access context of the operation: who acts, and why.

    Asked once, when an audited operation starts; in strict mode, a missing context raises
    ``MissingAccessContext`` into the flow.
    """


@dataclass(frozen=True, slots=True)
class AppendAudit:
    """Append audit records; a failure raises ``AuditUnavailable`` into the flow."""

    records: tuple[AuditRecord, ...]


@dataclass(frozen=True, slots=True)
class LoadKeys:
    """Read data key documents from the key vault by ``keyAltName`` (every key when ``None``).

    The result is the list of key documents found, wrapped as stored.
    """

    names: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class StoreKeys:
    """Insert new data key documents into the key vault (a name already taken is skipped)."""

    documents: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ReplaceKeys:
    """Write re-wrapped key material (``masterKey``, ``keyMaterial``) of existing data keys."""

    documents: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ShredKeys:
    """Destroy the data keys named ``names`` (crypto-shredding); the result is the count."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FindErased:
    """Which of ``names`` had their data key shredded; the result is a list of names."""

    names: tuple[str, ...]


KeyOp: TypeAlias = LoadKeys | StoreKeys | ReplaceKeys | ShredKeys | FindErased
"""The requests served by the key vault and the key shredder rather than a collection."""

Op: TypeAlias = (
    Find
    | NextBatch
    | FetchAll
    | ReadPeer
    | Count
    | EstimatedCount
    | Explain
    | Distinct
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
    | Emit
    | ResolveAccess
    | AppendAudit
    | KeyOp
)
