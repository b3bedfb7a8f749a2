"""Audit any flow: watch its I/O, append the records before the application sees a result.

``audited`` wraps a flow of ``read``, ``write``, ``modify``, ``aggregate`` or ``bulk`` without
changing it. It asks for the access context first (``ResolveAccess``), forwards every request,
and learns from the requests and their results which data subjects are concerned:

* clinical rows read (``NextBatch``, ``FetchAll``) give ``_id`` → pseudonym, so each emitted
  batch is attributed to the subjects whose documents it holds;
* identity rows written (``Insert``, ``ReplaceMany``) and deleted (``Delete``) name their
  subjects by their ``_id``; the fields written are the identity rows' keys (names only);
* a server-side ``Update`` of clinical rows names nobody, so the wrapper first reads the
  pseudonyms its filter selects (one extra read, the price of an exact subject list), unless
  the filter pins ``_id`` values whose rows the flow has already read.

Before each ``Emit`` and before returning, it yields ``AppendAudit``: the driver appends the
records, and if that fails it throws ``AuditUnavailable`` here, which propagates — the batch or
result is never handed over (fail closed). A flow that fails is audited with the outcome
``error:<type>`` and the subjects it had already written, if any (a flow that fails before
touching anyone processed no personal data and leaves no record; if the error record cannot be
stored either, the operation's own error is raised: it returned nothing, and applications handle
their driver's errors, an outage included); a missing context in strict mode is audited as
``denied``. Nothing here keeps a value: only pseudonyms, field names and counts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from privata_mongo.core.audit import AccessContext, AuditRecord, records_for
from privata_mongo.core.group_split import groups_by_subject, subject_of
from privata_mongo.core.ops import (
    Aggregate,
    AnyOp,
    AppendAudit,
    Delete,
    Document,
    Emit,
    FetchAll,
    Find,
    FindAndModify,
    Flow,
    Insert,
    InsertOutcome,
    NextBatch,
    Query,
    Replace,
    ReplaceMany,
    ResolveAccess,
    Steps,
    Update,
    UpdateOutcome,
)
from privata_mongo.core.schema import PSEUDONYM_FIELD, REVISION_FIELD, Side
from privata_mongo.errors import AuditUnavailable, MissingAccessContext

from .bulk import BulkOutcome
from .context import Context

__all__ = ["AuditSpec", "audited"]

T = TypeVar("T")


def _internal(key: str) -> bool:
    """Storage fields (``_id``, ``_rev``, the sealed ``_enc``/``_idx`` …), not identity fields."""
    return key.startswith("_") or key == REVISION_FIELD


@dataclass(frozen=True, slots=True)
class AuditSpec:
    """What the caller knows of an operation before it runs.

    Attributes:
        operation: the audited operation's name (``read``, ``update`` …).
        fields: identity fields the request itself names (filter, update, pipeline).
        scanned_are_subjects: the identity values of every clinical row read are revealed
            (``distinct`` of an identity field), not only those of emitted documents.
        max_subjects: most pseudonyms per record.
    """

    operation: str
    fields: frozenset[str] = frozenset()
    scanned_are_subjects: bool = False
    max_subjects: int = 10_000


@dataclass
class _Observer:
    """What one operation has touched so far (pseudonyms and names only)."""

    ctx: Context
    spec: AuditSpec
    access: AccessContext = field(default_factory=AccessContext)
    subjects: list[str] = field(default_factory=list)
    fields: set[str] = field(default_factory=set)
    written: int = 0
    by_id: dict[Any, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    identities: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    cursors: set[int] = field(default_factory=set)
    partial_groups: set[int] = field(default_factory=set)
    parts: int = 0

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

    def rows(self, rows: Iterable[Mapping[str, Any]], partial_groups: bool = False) -> None:
        for row in rows:
            pseudonym = row.get(PSEUDONYM_FIELD)
            if pseudonym is None and partial_groups:
                pseudonym = subject_of(row)  # one subject's documents, grouped by the server
            if not isinstance(pseudonym, str):
                continue
            self.pending.append(pseudonym)
            if "_id" in row:
                self.by_id[_key(row["_id"])] = pseudonym

    def known(self, selector: Mapping[str, Any]) -> list[Any] | None:
        """The pseudonyms of the rows a selector pins by ``_id``, if the flow read them all."""
        if list(selector) == ["$and"] and selector["$and"]:
            selector = selector["$and"][0]
        if list(selector) != ["_id"]:
            return None
        value = selector["_id"]
        if isinstance(value, Mapping):
            if list(value) != ["$in"]:
                return None
            value = value["$in"]
        ids = value if isinstance(value, (list, tuple)) else [value]
        keys = [_key(i) for i in ids]
        if not all(k in self.by_id for k in keys):
            return None
        return [self.by_id[k] for k in keys]

    def identity_names(self, document: Mapping[str, Any]) -> set[str]:
        schema = self.ctx.schema
        return {k for k in document if k != "_id" and schema.side_of(k) is Side.IDENTITY}

    def emitted(self, documents: Sequence[Document]) -> tuple[AuditRecord, ...]:
        subjects: list[str] = []
        fields: set[str] = set()
        unattributed = False
        for document in documents:
            pseudonym = self.by_id.get(_key(document["_id"])) if "_id" in document else None
            if pseudonym is None:
                unattributed = True
            else:
                subjects.append(pseudonym)
            fields |= self.identity_names(document)
        if unattributed:
            subjects.extend(self.pending)  # at least every subject the batch came from
        self.by_id.clear()
        self.pending.clear()
        self.parts += 1
        return self.records(subjects, fields, len(documents))

    def saw(self, op: AnyOp, result: Any) -> None:
        """Learn from one request and its result."""
        if isinstance(op, (Find, Aggregate)) and op.side is Side.CLINICAL:
            self.cursors.add(id(result))
            if isinstance(op, Aggregate) and groups_by_subject(op.pipeline):
                self.partial_groups.add(id(result))
        elif isinstance(op, NextBatch) and id(op.handle) in self.cursors:
            self.rows(result, id(op.handle) in self.partial_groups)
        elif isinstance(op, FetchAll):
            if op.side is Side.CLINICAL:
                self.rows(result)
            elif self.spec.operation not in ("read", "aggregate", "count", "distinct"):
                self.identities.update({r["_id"]: r for r in result if "_id" in r})
        elif isinstance(op, Insert) and isinstance(result, InsertOutcome):
            self._inserted(op, result)
        elif isinstance(op, ReplaceMany) and op.side is Side.IDENTITY:
            for selector, row in op.pairs:
                self.subjects.append(selector["_id"])
                self.fields |= _changed(self.identities.get(selector["_id"]), row)
        elif isinstance(op, Replace) and op.side is Side.CLINICAL:
            pseudonym = op.document.get(PSEUDONYM_FIELD)
            if isinstance(pseudonym, str):
                self.subjects.append(pseudonym)
        elif isinstance(op, Delete) and op.side is Side.IDENTITY:
            self.subjects.extend(_ids_in(op.filter))
            if self.spec.operation == "delete":
                self.fields |= self.ctx.schema.identity_fields
        elif isinstance(op, FindAndModify) and isinstance(result, Mapping):
            pseudonym = result.get(PSEUDONYM_FIELD)
            if isinstance(pseudonym, str):
                self.subjects.append(pseudonym)
            self.rows([result])

    def _inserted(self, op: Insert, outcome: InsertOutcome) -> None:
        failed = outcome.failed()
        if op.ordered and failed:
            written = [d for i, d in enumerate(op.documents) if i < min(failed)]
        else:
            written = [d for i, d in enumerate(op.documents) if i not in failed]
        for document in written:
            if op.side is Side.IDENTITY:
                self.subjects.append(document["_id"])
                self.fields |= {k for k in document if not _internal(k)}
            else:
                pseudonym = document.get(PSEUDONYM_FIELD)
                if isinstance(pseudonym, str):
                    self.subjects.append(pseudonym)
        if op.side is Side.CLINICAL:
            self.written += len(written)

    def finished(self, value: Any, outcome: str = "ok") -> tuple[AuditRecord, ...]:
        subjects = list(self.subjects)
        fields = set(self.fields)
        if self.spec.scanned_are_subjects:
            subjects.extend(self.pending)
        count = _count(value, self.written)
        if isinstance(value, Mapping):
            pseudonym = self.by_id.get(_key(value["_id"])) if "_id" in value else None
            subjects.extend([pseudonym] if pseudonym else self.pending)
            fields |= self.identity_names(value)
        if self.parts and value is None and not subjects and outcome == "ok":
            return ()  # a stream: every batch was recorded when it was emitted
        return self.records(subjects, fields, count, outcome)


def _key(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return (type(value).__name__, value)


def _ids_in(selector: Mapping[str, Any]) -> list[str]:
    value = selector.get("_id")
    if isinstance(value, Mapping):
        value = value.get("$in", [])
    values = value if isinstance(value, (list, tuple)) else [value]
    return [v for v in values if isinstance(v, str)]


def _changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> set[str]:
    """Names of the identity fields whose stored form differs (all of them if unknown).

    Encrypted rows keep every value in one sealed field: their names come from the request.
    """
    if old is None:
        return {k for k in new if not _internal(k)}
    keys = {k for k in set(old) | set(new) if not _internal(k)}
    return {k for k in keys if k not in old or k not in new or old[k] != new[k]}


def _count(value: Any, written: int) -> int:
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


def _subjects_of(op: Update) -> FetchAll:
    """The read that names the subjects a server-side update will touch."""
    options = {k: op.options[k] for k in ("hint", "collation", "session") if k in op.options}
    return FetchAll(
        Side.CLINICAL,
        Query(
            op.filter,
            projection={PSEUDONYM_FIELD: 1, "_id": 0},
            limit=0 if op.multi else 1,
            options=options,
        ),
    )


def audited(ctx: Context, flow: Flow[T], spec: AuditSpec) -> Flow[T]:
    """Run ``flow``, appending its audit records before each batch and before its result.

    Raises:
        MissingAccessContext: strict mode and no access context (audited as ``denied``).
        AuditUnavailable: the records could not be appended; nothing more is handed over.
    """
    observer = _Observer(ctx, spec)
    steps = Steps(flow)
    try:
        try:
            observer.access = yield from ResolveAccess()
        except MissingAccessContext:
            yield AppendAudit(observer.records((), (), 0, "denied"))
            raise
        result: Any = None
        error: BaseException | None = None
        while True:
            try:
                op = steps.advance(result, error)
            except Exception as exc:
                if not observer.subjects:
                    raise  # failed before touching any data subject: nothing to account for
                # the operation failed and returned nothing: its own error is the news
                with contextlib.suppress(AuditUnavailable):
                    yield AppendAudit(observer.finished(None, f"error:{type(exc).__name__}"))
                raise
            if op is None:
                break
            result, error = None, None
            if isinstance(op, Emit):
                yield AppendAudit(observer.emitted(op.documents))
                yield op
                continue
            try:
                if isinstance(op, Update) and op.side is Side.CLINICAL:
                    known = observer.known(op.filter)
                    if known is None:
                        targets = yield from _subjects_of(op)
                        known = [t.get(PSEUDONYM_FIELD) for t in targets]
                    observer.subjects.extend(p for p in known if isinstance(p, str))
                result = yield from op
            except Exception as exc:  # handed back into the flow, which decides
                error = exc
                continue
            observer.saw(op, result)
        value = steps.value
        records = observer.finished(value)
        if records:
            yield AppendAudit(records)
        return value
    finally:
        steps.close()
