"""Audit any flow from what it declares: records appended before the application sees a result.

``audited`` runs a flow of ``read``, ``write``, ``modify``, ``aggregate`` or ``bulk`` with a
``Context`` marked ``audit``. A flow so marked states what it reaches where it knows it, and
this wrapper only collects the statements; it never looks at the flow's other requests or
their results, so changing how a flow queries (a filter's shape, an extra read) cannot change
whom its records name. The statements are:

* ``Emit(documents, subjects)``: a batch handed to the consumer of a stream, and the subjects
  whose data it holds (the flow that joined it read them with its rows);
* ``Touched(subjects, fields, written, effect)``: subjects and identity field names the
  operation created, changed or erased (``write``: identity rows inserted, swapped or deleted,
  clinical rows a server-side update is about to change, the document a ``find_one_and_*``
  modified) or only read for a result that has no batches (``read``: the document a
  ``find_one_and_*`` returns, every value a ``distinct`` of an identity field compared), and the
  count of documents written when the result carries none.

The wrapper asks for the access context first (``ResolveAccess``). Before each ``Emit`` it
yields ``AppendAudit`` with the batch's record (its subjects, the identity fields its documents
hold, the fields the request names, its size), and before returning, the operation's record.
If an append fails the driver throws ``AuditUnavailable`` here, which propagates: the batch or
result is never handed over (fail closed). A stream whose batches were all recorded and that
declared nothing else leaves no final record; an empty one leaves one (count 0).

Writes are announced first. A write flow states whom it will write (``Intends``) before its
first write request; with ``AuditSpec.intents`` the wrapper stores that as an intent
(``OpenIntent``, ``core.audit.intents``) before the flow goes on, and removes it
(``SettleIntents``) once the operation's record is stored. An intent that cannot be stored
fails the operation before it wrote anything (``AuditUnavailable``, or the backend's own error
when the database is unreachable), so a retry is safe. An outcome record that cannot be stored
after the write applied is *not* raised to the application: the change happened and its intent
names its subjects, and an error would make the application retry it (a second document, a
second ``$inc``). It is logged (no values) and the
intent stays pending for the recovery sweeper, which appends the record. A failed operation
settles its intents when its error is one the flow has accounted for (a write error, a privata
error) and its error record is stored; after anything else (a network error: did the write
apply?) they stay for the sweeper, which looks at the stored rows; so they do after a flow
said ``Unfinished`` (a delete whose clinical rows went and whose identity rows did not).

A flow that fails is audited with the outcome ``error:<type>``, the subjects it had written and
the fields it had changed; read-only statements are left out, since nothing was handed over. A
flow that fails before writing anyone processed no personal data for the application and leaves
no record. If the error record cannot be stored either, the operation's own error is raised: it
returned nothing, and applications handle their driver's errors, an outage included. A missing
context in strict mode is audited as ``denied``. Records are cut into parts of at most
``max_subjects`` pseudonyms (``records_for``). Nothing here keeps a value: only pseudonyms,
field names and counts.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from privata_mongo.core.audit.intents import Intent
from privata_mongo.core.audit.records import (
    MAX_SUBJECTS,
    AccessContext,
    AuditRecord,
    records_for,
)
from privata_mongo.core.flows.bulk import BulkOutcome
from privata_mongo.core.flows.context import Context
from privata_mongo.core.ops import (
    AppendAudit,
    Emit,
    Flow,
    Intends,
    OpenIntent,
    ResolveAccess,
    SettleIntents,
    Steps,
    Touched,
    Unfinished,
    UpdateOutcome,
)
from privata_mongo.core.schema import Side
from privata_mongo.errors import AuditUnavailable, MissingAccessContext, PrivataError

__all__ = ["AuditSpec", "audited"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AuditSpec:
    """What the caller knows of an operation before it runs.

    Attributes:
        operation: the audited operation's name (``read``, ``update`` …).
        fields: identity fields the request itself names (filter, update, pipeline): every
            record of the operation lists them.
        max_subjects: most pseudonyms per record.
        intents: store what a write flow ``Intends`` as an intent before it writes (off in
            buffered mode, whose records are not stored when the operation ends anyway).
    """

    operation: str
    fields: frozenset[str] = frozenset()
    max_subjects: int = MAX_SUBJECTS
    intents: bool = False


@dataclass
class _Reached:
    """Subjects and field names stated with one effect, in the order they were stated."""

    subjects: list[str] = field(default_factory=list)
    fields: set[str] = field(default_factory=set)

    def add(self, declared: Touched) -> None:
        self.subjects.extend(declared.subjects)
        self.fields |= declared.fields


@dataclass
class _Collected:
    """What one operation has declared so far (pseudonyms, names and counts only)."""

    ctx: Context
    spec: AuditSpec
    access: AccessContext = field(default_factory=AccessContext)
    wrote: _Reached = field(default_factory=_Reached)
    read: _Reached = field(default_factory=_Reached)
    written: int = 0
    batches: int = 0
    unfinished: bool = False  # the flow said its intents must stay if it fails (``Unfinished``)

    def add(self, declared: Touched) -> None:
        (self.wrote if declared.effect == "write" else self.read).add(declared)
        self.written += declared.written

    def records(
        self, subjects: Sequence[str], fields: Iterable[str], count: int, outcome: str = "ok"
    ) -> tuple[AuditRecord, ...]:
        return records_for(
            at=self.ctx.now(),
            access=self.access,
            operation=self.spec.operation,
            model=self.ctx.schema.model,
            subjects=subjects,
            fields={*fields, *self.spec.fields},
            count=count,
            outcome=outcome,
            max_subjects=self.spec.max_subjects,
        )

    def revealed(self, document: Mapping[str, Any]) -> set[str]:
        """The identity fields a document handed over holds (names, from its keys)."""
        schema = self.ctx.schema
        return {k for k in document if k != "_id" and schema.side_of(k) is Side.IDENTITY}

    def emitted(self, batch: Emit) -> tuple[AuditRecord, ...]:
        self.batches += 1
        fields = {name for document in batch.documents for name in self.revealed(document)}
        return self.records(batch.subjects, fields, len(batch.documents))

    def finished(self, value: Any) -> tuple[AuditRecord, ...]:
        subjects = [*self.wrote.subjects, *self.read.subjects]
        fields = self.wrote.fields | self.read.fields
        if isinstance(value, Mapping):
            fields |= self.revealed(value)
        if self.batches and value is None and not subjects:
            return ()  # a stream: every batch was recorded when it was emitted
        return self.records(subjects, fields, _count(value, self.written))

    def intent(self, declared: Intends) -> Intent:
        schema = self.ctx.schema
        return Intent(
            id=self.ctx.new_revision(),
            at=self.ctx.now(),
            access=self.access,
            operation=self.spec.operation,
            kind=declared.kind,
            model=schema.model,
            collection=schema.collection,
            subjects=tuple(dict.fromkeys(declared.subjects)),
            fields=tuple(sorted(declared.fields | self.spec.fields)),
        )

    def failed(self, error: BaseException) -> tuple[AuditRecord, ...]:
        outcome = f"error:{type(error).__name__}"
        return self.records(self.wrote.subjects, self.wrote.fields, self.written, outcome)


def _count(value: Any, written: int) -> int:
    """How many documents a result returned, matched or counted (``written`` if it says not)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        return len(value)
    if isinstance(value, UpdateOutcome):
        return value.matched + (value.upserted_id is not None)
    if isinstance(value, BulkOutcome):
        return value.inserted + value.matched + value.removed + len(value.upserted)
    if isinstance(value, Mapping):
        return 1
    return written


def audited(ctx: Context, build: Callable[[Context], Flow[T]], spec: AuditSpec) -> Flow[T]:
    """Run the flow ``build`` makes, appending its records before each batch and its result.

    ``build`` receives ``ctx`` marked ``audit``: the wrapper is the only place that marks it,
    so a flow states what it reaches exactly when something collects the statements.

    Raises:
        MissingAccessContext: strict mode and no access context (audited as ``denied``).
        AuditUnavailable: the records could not be appended; nothing more is handed over.
    """
    collected = _Collected(ctx, spec)
    opened: list[str] = []  # ids of the intents stored for this operation
    steps = Steps(build(replace(ctx, audit=True)))
    try:
        try:
            collected.access = yield from ResolveAccess()
        except MissingAccessContext:
            yield AppendAudit(collected.records((), (), 0, "denied"))
            raise
        result: Any = None
        error: BaseException | None = None
        while True:
            try:
                op = steps.advance(result, error)
            except Exception as exc:
                recorded = not collected.wrote.subjects
                if collected.wrote.subjects:
                    # the operation failed and returned nothing: its own error is the news
                    with contextlib.suppress(AuditUnavailable):
                        yield AppendAudit(collected.failed(exc))
                        recorded = True
                if opened and recorded and not collected.unfinished and _accounted_for(ctx, exc):
                    yield from _settle(ctx, opened)
                raise
            if op is None:
                break
            result, error = None, None
            if isinstance(op, Touched):
                collected.add(op)
                continue
            if isinstance(op, Unfinished):
                collected.unfinished = True
                continue
            if isinstance(op, Intends):
                if spec.intents and op.subjects:
                    error = yield from _open(collected.intent(op), opened)
                continue
            if isinstance(op, Emit):
                yield AppendAudit(collected.emitted(op))
                yield op
                continue
            try:
                result = yield from op
            except Exception as exc:  # handed back into the flow, which decides
                error = exc
        value = steps.value
        records = collected.finished(value)
        if records:
            try:
                yield AppendAudit(records)
            except AuditUnavailable:
                if not (opened and collected.wrote.subjects):
                    raise
                logger.warning(
                    "%s: the record of a %s that was applied could not be stored; its intent "
                    "stays pending for the recovery sweeper (privata_mongo.recovery.sweep)",
                    ctx.schema.model,
                    spec.operation,
                )
                return value
        if opened:
            yield from _settle(ctx, opened)
        return value
    finally:
        steps.close()


def _open(intent: Intent, opened: list[str]) -> Flow[Exception | None]:
    """Store ``intent``; the error to throw into the flow if it could not be stored.

    The journal's port says why: ``AuditUnavailable`` when the journal refused the intent, the
    backend's own error when the database could not be reached (the error the write itself
    would have raised, which the application handles as it does natively). Either way nothing
    was written.
    """
    try:
        yield from OpenIntent(intent)
    except Exception as exc:
        return exc
    opened.append(intent.id)
    return None


def _settle(ctx: Context, opened: list[str]) -> Flow[None]:
    """Remove the operation's intents; if that fails they stay for the sweeper, harmlessly."""
    try:
        yield SettleIntents(tuple(opened))
    except Exception as exc:
        logger.warning(
            "%s: %d settled intent(s) could not be removed (%s); the recovery sweeper will",
            ctx.schema.model,
            len(opened),
            type(exc).__name__,
        )


def _accounted_for(ctx: Context, error: BaseException) -> bool:
    """Whether a failed flow knows what it left written: a refused write or a privata error.

    A write the server or driver refused (``Context.refused``: a write error, a document that
    cannot be encoded) applied nothing. Any other error (a connection lost, a reply that never
    came) may have hidden a write that applied; its intents stay for the sweeper to check.
    """
    return ctx.refused(error) or isinstance(error, PrivataError)
