"""Every I/O request a flow may yield, as frozen data typed by its result, and ``Flow``.

A flow is a generator: it yields one of these requests, a driver executes it against the ports
and sends the result back (or throws the error in). Each request is an ``Op[R]``: its result is
an ``R``, and a flow asks for it with ``value = yield from Find(...)``, which yields the request
and returns the driver's answer typed ``R`` — so mypy checks every value flowing back into a
flow, and this module is the only place where an untyped ``yield`` meets a typed result.
Requests that only tell (``Emit``, ``AppendAudit``, ``Touched``) are yielded as statements.

What an operation does to personal data is part of this vocabulary too: a flow states which
data subjects and identity fields it has reached (``Touched``, and the subjects of each batch it
``Emit``s) at the point where it knows them, so the audit never has to work it out from the
shape of the other requests.

Each storage request names the side (identity or clinical collection) it targets; the driver
knows which physical collection that is. Keeping the whole vocabulary in one module makes the
op sequence of any operation easy to assert in unit tests, with no database and no event loop.
"""

from __future__ import annotations

import datetime
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeAlias, TypeVar, cast

from privata_mongo.core.audit.intents import Intent
from privata_mongo.core.audit.records import AccessContext, AuditRecord
from privata_mongo.core.failures import WriteFailure
from privata_mongo.core.schema import Side

__all__ = [
    "Aggregate",
    "Among",
    "AnyOp",
    "AppendAudit",
    "CacheGet",
    "CacheInvalidate",
    "CacheOp",
    "CachePut",
    "CloseKms",
    "ConnectKms",
    "Count",
    "CreateIndex",
    "Delete",
    "DiscardKeys",
    "Distinct",
    "Document",
    "Drop",
    "DropIndex",
    "Effect",
    "Emit",
    "EstimatedCount",
    "Explain",
    "FetchAll",
    "Find",
    "FindAndModify",
    "FindErased",
    "Flow",
    "Gather",
    "Handle",
    "InRegion",
    "IndexInformation",
    "Insert",
    "InsertOutcome",
    "Intends",
    "IntentKey",
    "KeyOp",
    "KmsOp",
    "LoadKeys",
    "Locate",
    "Located",
    "NextBatch",
    "Op",
    "OpenIntent",
    "Pause",
    "PendingIntents",
    "Query",
    "ReadPeer",
    "ReceiveKms",
    "Replace",
    "ReplaceKeys",
    "ReplaceMany",
    "ResolveAccess",
    "SendKms",
    "SettleIntents",
    "ShredKeys",
    "Steps",
    "StoreKeys",
    "Touched",
    "Unfinished",
    "Update",
    "UpdateOutcome",
]

T = TypeVar("T")
R = TypeVar("R", covariant=True)
Document: TypeAlias = dict[str, Any]
Effect: TypeAlias = Literal["read", "write"]
"""How an operation reached a data subject: it only read the subject's data, or changed it."""


class Op(Generic[R]):
    """A request whose result is an ``R``; ``yield from op`` asks for it and returns it typed."""

    __slots__ = ()

    def __iter__(self) -> Generator[AnyOp, Any, R]:
        result: R = yield cast("AnyOp", self)
        return result


Flow: TypeAlias = Generator["AnyOp", Any, T]
"""A flow yields ``Op`` requests, receives their results, and returns a ``T``."""

Handle: TypeAlias = object
"""An open server cursor as a driver hands it back: opaque to the core, read by ``NextBatch``."""

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
class Find(Op[Handle]):
    """Open a server cursor; the result is an opaque handle for ``NextBatch``."""

    side: Side
    query: Query


@dataclass(frozen=True, slots=True)
class NextBatch(Op[list[Document]]):
    """Read up to ``size`` documents from a cursor; fewer means it is exhausted."""

    handle: object
    size: int


@dataclass(frozen=True, slots=True)
class FetchAll(Op[list[Document]]):
    """Run a find and return every document (for bounded reads: by id lists or limits)."""

    side: Side
    query: Query


@dataclass(frozen=True, slots=True)
class ReadPeer(Op[list[Document]]):
    """Read another logical collection of the same database, joined as the application sees it.

    Used for ``$lookup`` into a split collection, which the server cannot join.
    """

    collection: str
    filter: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Explain(Op[Document]):
    """The server's query plan for a find."""

    side: Side
    query: Query


@dataclass(frozen=True, slots=True)
class Count(Op[int]):
    """``count_documents``; ``options`` may carry skip, limit, hint, collation."""

    side: Side
    filter: Mapping[str, Any]
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class EstimatedCount(Op[int]):
    """``estimated_document_count``."""

    side: Side
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Distinct(Op[list[Any]]):
    """Server-side ``distinct`` of a key over a filter."""

    side: Side
    key: str
    filter: Mapping[str, Any]
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Aggregate(Op[Handle]):
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
class Insert(Op[InsertOutcome]):
    """Insert documents; per-document failures come back in an ``InsertOutcome``."""

    side: Side
    documents: tuple[Mapping[str, Any], ...]
    ordered: bool = True
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


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
class Update(Op[UpdateOutcome]):
    """Server-side ``update_one``/``update_many`` with an operator document or pipeline."""

    side: Side
    filter: Mapping[str, Any]
    update: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    multi: bool
    upsert: bool = False
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Replace(Op[UpdateOutcome]):
    """Server-side ``replace_one``."""

    side: Side
    filter: Mapping[str, Any]
    document: Mapping[str, Any]
    upsert: bool = False
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class ReplaceMany(Op[int]):
    """Unordered bulk of ``(filter, replacement)`` pairs; the result is the matched count."""

    side: Side
    pairs: tuple[tuple[Mapping[str, Any], Mapping[str, Any]], ...]
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Delete(Op[int]):
    """``delete_one``/``delete_many``; the result is the deleted count."""

    side: Side
    filter: Mapping[str, Any]
    multi: bool
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class FindAndModify(Op["Document | None"]):
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
class CreateIndex(Op[str]):
    """Create an index; the result is its name."""

    side: Side
    keys: tuple[tuple[str, Any], ...]
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class DropIndex(Op[None]):
    """Drop an index by name."""

    side: Side
    name: str
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class IndexInformation(Op[dict[str, Any]]):
    """``index_information()`` of one side."""

    side: Side
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Drop(Op[None]):
    """Drop one side's collection."""

    side: Side
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Emit(Op[None]):
    """Hand a batch of finished, native-shaped documents to the consumer of a stream.

    ``subjects`` are the pseudonyms of the data subjects whose data the batch holds: the flow
    that joined the batch read them with its rows (the documents themselves no longer carry
    the link). They are required, so a new way of emitting cannot forget to say whom it
    concerns; a batch that holds nobody's data (a server-side ``$group``) says ``()``.
    """

    documents: tuple[Document, ...]
    subjects: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Touched(Op[None]):
    """What an audited operation has reached: data subjects and identity fields (names only).

    A flow yields it where it knows (after a write succeeded, before a server-side update
    whose subjects it has just read, once a scan has read identity values) and only when its
    ``Context`` says the operation is audited; the audit wrapper consumes it and no driver
    serves it, so an unaudited operation's requests are exactly its I/O.

    Attributes:
        subjects: pseudonyms of the data subjects reached.
        fields: names of the identity fields read, written or erased.
        written: logical documents written, for an operation whose result has no count.
        effect: ``write`` (created, changed or deleted: recorded even if the operation then
            fails) or ``read`` (recorded with the result that reveals it, not on a failure,
            which hands nothing over).
    """

    subjects: tuple[str, ...] = ()
    fields: frozenset[str] = frozenset()
    written: int = 0
    effect: Effect = "write"


@dataclass(frozen=True, slots=True)
class Intends(Op[None]):
    """Whom an audited operation is about to write, stated before its first write request.

    The audit wrapper stores it as an intent (``OpenIntent``) before the flow goes on, so that
    every change the operation may apply has a record naming its subjects even if the process
    dies or the outcome record cannot be stored; a flow yields it only when its ``Context``
    says the operation is audited, and no driver serves it. If the intent cannot be stored,
    ``AuditUnavailable`` is thrown into the flow here: nothing has been written yet.

    Attributes:
        subjects: pseudonyms the operation will write (new ones for an insert, read targets
            for an update or a delete).
        fields: identity field names it may change.
        kind: ``create``, ``update`` or ``delete``: what the recovery sweeper checks for.
    """

    subjects: tuple[str, ...]
    fields: frozenset[str] = frozenset()
    kind: Literal["create", "update", "delete"] = "update"


@dataclass(frozen=True, slots=True)
class Unfinished(Op[None]):
    """Statement: the operation fails part-way through writes only the sweeper can complete.

    An audited operation that fails with an error proving its last write was not applied (a
    write error the server reported) normally settles its intents: it knows what it left.
    A delete whose clinical rows are gone but whose identity rows or keys are not has left
    rows no read reaches and no retry finds (a retry selects from the clinical rows): its
    intents must stay for the recovery sweeper, which completes the delete. The flow says so
    with this statement before it raises; like ``Intends`` it is yielded only when the
    ``Context`` is audited, and no driver serves it.
    """


@dataclass(frozen=True, slots=True)
class OpenIntent(Op[None]):
    """Store an intent (a pending operation, names and pseudonyms only) in the journal."""

    intent: Intent


@dataclass(frozen=True, slots=True)
class SettleIntents(Op[None]):
    """Remove the intents ``ids`` from the journal: their outcome is recorded in the trail."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IntentKey(Op[bytes | None]):
    """The key the journal's intents are sealed with: the chain key of the audit destination.

    The sweeper asks for it to check each intent's MAC before acting on it
    (``core.audit.intents.intent_holds``); ``None`` when nothing is audited, so no intent can
    be checked.
    """


@dataclass(frozen=True, slots=True)
class PendingIntents(Op[list[Document]]):
    """Intents of ``collection`` stored at or before ``before``: ends nobody saw."""

    collection: str
    before: datetime.datetime
    limit: int = 0


@dataclass(frozen=True, slots=True)
class Pause(Op[None]):
    """Wait ``seconds`` before the next request.

    The back-off of a writer that found the document it must change held by another writer:
    the core has no clock to sleep on, so the driver waits (blocking, or awaited).
    """

    seconds: float


@dataclass(frozen=True, slots=True)
class ResolveAccess(Op[AccessContext]):
    """The access context of the operation: who acts, and why.

    Asked once, when an audited operation starts; in strict mode, a missing context raises
    ``MissingAccessContext`` into the flow.
    """


@dataclass(frozen=True, slots=True)
class AppendAudit(Op[None]):
    """Append audit records; a failure raises ``AuditUnavailable`` into the flow."""

    records: tuple[AuditRecord, ...]


@dataclass(frozen=True, slots=True)
class LoadKeys(Op[list[Document]]):
    """Read data key documents from the key vault by ``keyAltName`` (every key when ``None``).

    The result is the list of key documents found, wrapped as stored.
    """

    names: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class StoreKeys(Op[None]):
    """Insert new data key documents into the key vault (a name already taken is skipped)."""

    documents: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ReplaceKeys(Op[None]):
    """Write re-wrapped key material (``masterKey``, ``keyMaterial``) of existing data keys."""

    documents: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ShredKeys(Op[int]):
    """Destroy the data keys named ``names`` (crypto-shredding); the result is the count."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FindErased(Op[list[str]]):
    """Which of ``names`` had their data key shredded; the result is a list of names."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DiscardKeys(Op[None]):
    """Delete data keys no stored row uses, made for a write that failed (no tombstone).

    Only keys of fresh pseudonyms are discarded: nothing else can reference them, and a
    tombstone would count an erasure that never happened.
    """

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CacheGet(Op[dict[str, bytes]]):
    """The cached entries among ``keys``: entry name → bytes (an absent or held name is left out).

    Only ``core.cache`` names entries, and only for what may be cached: identity rows as
    stored (BSON with the ciphertext) and data key documents as the key vault stores them
    (wrapped). A flow reads the store behind a name it did not get back.
    """

    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CachePut(Op[None]):
    """Store ``entries`` in the cache unless their name is present (or held by an invalidation).

    Adding only where absent is what keeps a reader that read a row before a write from
    putting the old row back after the writer's ``CacheInvalidate``: the hold is still there.
    Values are bytes the core encoded from what is stored; never a plaintext, never a key
    in the clear. The bytes are left out of ``repr``.
    """

    entries: tuple[tuple[str, bytes], ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class CacheInvalidate(Op[None]):
    """Replace the entries ``keys`` by a hold of ``hold`` seconds: absent, and not refillable.

    Yielded after every write that changes what a name stands for (an identity row written
    or deleted, a data key shredded or re-wrapped), in every process's view at once when the
    cache is shared.
    """

    keys: tuple[str, ...]
    hold: float


CacheOp: TypeAlias = CacheGet | CachePut | CacheInvalidate
"""The requests served by the cache port (``ports.cache``)."""


KeyOp: TypeAlias = LoadKeys | StoreKeys | ReplaceKeys | ShredKeys | FindErased | DiscardKeys
"""The requests served by the key vault and the key shredder rather than a collection."""


@dataclass(frozen=True, slots=True)
class ConnectKms(Op[Handle]):
    """Open a TLS connection to a KMS for libmongocrypt; the result is a connection handle.

    ``endpoint`` is ``host[:port]`` (port 443 by default) as libmongocrypt names it;
    ``provider`` (``aws``, ``azure``, ``gcp``, ``kmip`` or a named ``aws:name``) selects the TLS
    options; ``delay`` is the back-off in seconds libmongocrypt asks for before a retry.
    """

    provider: str
    endpoint: str
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class SendKms(Op[None]):
    """Send libmongocrypt's request on a KMS connection.

    The message is left out of ``repr``: it may carry credentials (an OAuth token) or, for a
    key creation, the new data key itself, which only the KMS may see.
    """

    handle: object
    message: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ReceiveKms(Op[bytes]):
    """Read at most ``size`` bytes of the KMS reply (a closed connection raises ``OSError``)."""

    handle: object
    size: int


@dataclass(frozen=True, slots=True)
class CloseKms(Op[None]):
    """Close a KMS connection (closing twice is harmless)."""

    handle: object


KmsOp: TypeAlias = ConnectKms | SendKms | ReceiveKms | CloseKms
"""The requests served by the KMS transport: libmongocrypt's traffic to a remote master key."""


@dataclass(frozen=True, slots=True)
class Located(Op[None]):
    """Where data subjects' identity data lives: pseudonym → region (``core.residency``).

    A flow states it where it decides (an insert, after resolving each new subject's region)
    and the residency router (``core.residency.regional``) consumes it, so later requests
    naming those pseudonyms go to their region's stores; no driver serves it, and a flow run
    without regions configured never yields it.
    """

    regions: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Locate(Op[dict[str, str]]):
    """The regions of existing subjects ``names`` (pseudonyms), as far as they are known.

    Asked by a flow about to create a data key for a subject it did not place itself (an
    update giving identity values to a document that had none), so the key is wrapped by the
    subject's region's master key. Served by the residency router (from what it has learned,
    or the subjects' clinical rows); a flow without regions never asks.
    """

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InRegion(Op[Any]):
    """Run ``op`` against the stores of ``region``; its result is ``op``'s.

    ``op`` is an identity-side store request, a key request, a cache request (the region's
    own cache, ``core.residency.caching``) or a cursor read. Only the
    residency router yields it: the drivers serve ``op`` with the region's ports and report
    an unreachable region as ``RegionUnavailable`` naming it.
    """

    region: str
    op: AnyOp


@dataclass(frozen=True, slots=True)
class Among(Op[Any]):
    """Ask only ``regions`` for ``op``, an identity-side read naming no subject; its result.

    A flow states it when the filter it resolves says where its documents can be (a condition
    on the region field that only some regions' subjects satisfy, ``FilterPlan.pin``), so a
    probe skips the identity stores that cannot hold a match; the residency router serves it,
    within the regions the operation may use. A flow without regions configured never yields it.
    """

    regions: tuple[str, ...]
    op: AnyOp


@dataclass(frozen=True, slots=True)
class Gather(Op[list[Any]]):
    """Run independent requests at once; the result is their results, in order.

    The residency router asks every region it fans a request out to with one ``Gather``:
    the async driver awaits the requests concurrently, so a query over N regions waits for
    the slowest region rather than for all of them in turn; the sync driver runs them one
    after the other. If any request fails, the first failure (in order) is raised.
    """

    ops: tuple[AnyOp, ...]


AnyOp: TypeAlias = (
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
    | Touched
    | Pause
    | ResolveAccess
    | AppendAudit
    | Intends
    | Unfinished
    | OpenIntent
    | SettleIntents
    | PendingIntents
    | IntentKey
    | KeyOp
    | KmsOp
    | CacheOp
    | Located
    | Locate
    | InRegion
    | Among
    | Gather
)


class Steps(Generic[T]):
    """A flow advanced one request at a time: the only send/throw loop there is.

    Drivers, the audit wrapper and the scripted test driver all run flows through this, so
    the protocol between a flow and whoever serves its requests is written once: send the
    result of the last request (or throw its error in), get the next request, or ``None`` once
    the flow has returned ``value``.
    """

    __slots__ = ("_flow", "_value", "finished")

    def __init__(self, flow: Flow[T]) -> None:
        self._flow = flow
        self._value: Any = None
        self.finished = False

    def advance(self, result: Any = None, error: BaseException | None = None) -> AnyOp | None:
        """The flow's next request after ``result`` (or ``error``); ``None`` once it returned."""
        try:
            op = self._flow.throw(error) if error is not None else self._flow.send(result)
        except StopIteration as done:
            self._value = done.value
            self.finished = True
            return None
        return op

    @property
    def value(self) -> T:
        """What the flow returned (only once ``finished``)."""
        if not self.finished:
            raise RuntimeError("the flow has not returned yet")
        value: T = self._value
        return value

    def close(self) -> None:
        """Close the flow (its ``finally`` blocks run; it may not yield any more)."""
        self._flow.close()
