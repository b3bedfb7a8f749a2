"""Data-subject rights over the models of the application, sync and async (``docs/rights.md``).

``Rights`` serves the mongoengine models of this process, ``AsyncRights`` the Beanie models
given to ``init_beanie``. Both run the same flows of ``core.rights``: a flow names what it needs
(documents by id, a subject's pseudonym, the audit trail, a record to append, a change to
save) and ``_answer`` answers each request once, for both facades, through the models' own
privata collections (so identity values are decrypted and every read is audited like any other
read), the real collections for the pseudonym link and the audit trail (no personal data), and
the ODM's own validation for changes. A right spans every model of the map, each collection
with its own stores, so requests are answered here rather than by one binding of the core
drivers; what differs between the ODMs is the ``_Facade`` below: how a model's collection is
reached, how a cursor is read, how a change is validated and saved. Each call ``_answer``
makes is yielded, so ``Rights`` takes its value and ``AsyncRights`` awaits it.
"""

from __future__ import annotations

import datetime
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterable, Mapping, MutableMapping
from dataclasses import replace
from typing import IO, Any

from privata_mongo import consent as consents
from privata_mongo import erasure, residence, restriction, transfer
from privata_mongo.context import subject_request
from privata_mongo.core.audit import records_for
from privata_mongo.core.ops import Steps
from privata_mongo.core.rights import access as flows
from privata_mongo.core.rights import erasure as erasure_flows
from privata_mongo.core.rights.access import Access, Subject
from privata_mongo.core.rights.consent import CONSENT, WITHDRAW_CONSENT, ConsentEvent, text
from privata_mongo.core.rights.datamap import DataMap, Edge, Lookup, ModelEntry, SubjectMap, walk
from privata_mongo.core.rights.erasure import ReplayedErasure
from privata_mongo.core.rights.export import writer
from privata_mongo.core.rights.receipt import ErasureReceipt, ModelErasure, verify_receipt
from privata_mongo.core.rights.restriction import (
    LIFT_RESTRICTION,
    OBJECT,
    RESTRICT,
    RESTRICTION_FIELD,
    WITHDRAW_OBJECTION,
)
from privata_mongo.core.rights.retention import enforce
from privata_mongo.core.rights.spread import Mark, Markers, spread
from privata_mongo.core.rights.storage import Storage, Where
from privata_mongo.core.rights.transfer import MoveSubject, Transfer
from privata_mongo.core.rights.transfer import transfer as transfer_flow
from privata_mongo.core.schema import PSEUDONYM_FIELD
from privata_mongo.errors import ConfigurationError
from privata_mongo.runtime.answering import (
    PARTIAL_RIGHTS,
    answering,
    closing_records,
    left_out_now,
    partially,
)
from privata_mongo.runtime.regions import clinical_collections

TRANSFER = "transfer_region"
"""The right ``transfer_region`` answers, as the access context names it."""

__all__ = [
    "Access",
    "AsyncRights",
    "ErasureReceipt",
    "ModelErasure",
    "ReplayedErasure",
    "Rights",
    "Storage",
    "Subject",
    "Transfer",
    "data_map",
    "verify_receipt",
]

Answer = Generator[Any, Any, Any]
"""An answer to one request: each value yielded is a call made, its result or its awaitable."""


def data_map() -> DataMap:
    """The whole schema: every registered model (mongoengine and Beanie), fields, references."""
    import sys

    models: list[ModelEntry] = []
    edges: list[Edge] = []
    if "mongoengine" in sys.modules:
        from privata_mongo.mongoengine._datamap import data_map as mongoengine_map

        found = mongoengine_map()
        models.extend(found.models)
        edges.extend(found.edges)
    if "beanie" in sys.modules:
        from privata_mongo.beanie._datamap import data_map as beanie_map

        found = beanie_map()
        models.extend(found.models)
        edges.extend(found.edges)
    return DataMap(tuple(models), tuple(edges))


def _subject(subject: str | Subject) -> Subject:
    return Subject(pseudonym=subject) if isinstance(subject, str) else subject


def _known(model: str, names: Mapping[str, Any], fields: Iterable[str]) -> None:
    unknown = sorted(set(names) - set(fields))
    if unknown:
        raise ConfigurationError(f"{model} has no field {', '.join(unknown)}: nothing changed")


class _Facade(ABC):
    """What the two ODMs do differently for the rights: everything else is shared."""

    def __init__(self, models: Iterable[Any] | None) -> None:
        self.only = None if models is None else tuple(models)

    @abstractmethod
    def data_map(self) -> DataMap:
        """The map of the served models."""

    @abstractmethod
    def classes(self) -> dict[str, Any]:
        """The served model classes by name."""

    @abstractmethod
    def collection(self, cls: Any) -> Any:
        """The model's privata collection, as the ODM reaches it."""

    @abstractmethod
    def fields(self, cls: Any) -> Iterable[str]:
        """The model's field names (a rectification may name no other)."""

    @abstractmethod
    def rows(self, cursor: Any) -> Any:
        """Every document of ``cursor`` (a list, or an awaitable of one)."""

    @abstractmethod
    def ids(self, cursor: Any) -> Any:
        """The ``_id`` of every document of ``cursor``, keeping no document (or an awaitable)."""

    @abstractmethod
    def save(self, cls: Any, id: Any, changes: Mapping[str, Any]) -> Any:
        """Apply ``changes`` to one document through the ODM's validation, and save it."""

    def databases(self, classes: Mapping[str, Any]) -> list[Any]:
        """The distinct privata databases of the served models, in model order."""
        seen: dict[str, Any] = {}
        for cls in classes.values():
            database = self.collection(cls).database
            seen.setdefault(database.name, database)
        return list(seen.values())


def _stored(collection: Any) -> list[Any]:
    """The real collections holding ``collection``'s stored rows (regions' clinical stores too)."""
    raw = collection.database.inner[collection.name]
    settings = collection.database.client.runtime.settings()
    return [stored for _, stored in clinical_collections(settings, raw)]


def _answer(
    facade: _Facade, classes: Mapping[str, Any], request: Any, memo: MutableMapping[str, Any]
) -> Answer:
    """Answer one request of a rights flow (``core.rights``), for either facade.

    ``memo`` lives for one right: what it learned of the subject (its region) is read once.
    """
    if isinstance(request, erasure.REQUESTS):
        return (yield from erasure.answer(facade, classes, request, memo))
    if isinstance(request, MoveSubject):
        return (yield from transfer.answer(facade, classes, request))
    if isinstance(request, Where):
        return (yield from residence.where(facade, classes, request, memo))
    cls: Any = classes[request.model] if hasattr(request, "model") else None
    collection: Any = facade.collection(cls) if cls is not None else None
    if isinstance(request, Lookup):
        if not request.raw:
            return (yield facade.ids(collection.find(dict(request.filter), {"_id": 1})))
        found: list[Any] = []
        for raw in _stored(collection):
            found.extend((yield facade.ids(raw.find(dict(request.filter), {"_id": 1}))))
        return found
    if isinstance(request, Markers):  # the stored rows: bookkeeping only, no personal data
        projection = {"_id": 1, PSEUDONYM_FIELD: 1, RESTRICTION_FIELD: 1}
        rows: list[Any] = []
        for raw in _stored(collection):
            rows.extend((yield facade.rows(raw.find(dict(request.filter), projection))))
        return rows
    if isinstance(request, Mark):
        matched = 0
        for raw in _stored(collection):
            changed = yield raw.update_many(dict(request.filter), dict(request.update))
            matched += changed.matched_count
        return matched
    if isinstance(request, flows.Read):
        return (yield facade.rows(collection.find({"_id": {"$in": list(request.ids)}})))
    if isinstance(request, flows.FindSubject):
        found_one = yield collection.find_one(dict(request.filter), {"_id": 1})
        if found_one is None:
            return None
        for raw in _stored(collection):
            row = yield raw.find_one({"_id": found_one["_id"]}, {PSEUDONYM_FIELD: 1})
            if row:
                return row.get(PSEUDONYM_FIELD)
        return None
    if isinstance(request, flows.History):
        return (yield from _history(facade, classes, request.pseudonym))
    if isinstance(request, flows.Record):
        runtime = collection.database.client.runtime
        trail = runtime.trail(collection.database.inner)
        if trail is not None:
            regions = yield from residence.subject_regions(facade, classes, request.pseudonym, memo)
            yield trail.append(_records(runtime, request, regions))
        return None
    if isinstance(request, flows.Rectify):
        _known(request.model, request.changes, facade.fields(cls))
        # saved through the model: its write flow invalidates the cached identity row
        yield facade.save(cls, request.id, request.changes)
        return None
    raise TypeError(f"unknown request {type(request).__name__}")


def _records(runtime: Any, request: flows.Record, regions: tuple[str, ...]) -> Any:
    """The records of a right on one model, naming the subject's region when there are some."""
    made = records_for(
        at=runtime.clock.now(),
        access=runtime.access(),
        operation=request.operation,
        model=request.model,
        subjects=[request.pseudonym],
        fields=request.fields,
        count=request.count,
    )
    if regions:
        made = tuple(replace(r, regions=regions) for r in made)
    missing = left_out_now()
    return tuple(replace(r, missing_regions=missing) for r in made) if missing else made


def _history(facade: _Facade, classes: Mapping[str, Any], pseudonym: str) -> Answer:
    """The audit records naming ``pseudonym`` in every database of the served models."""
    from privata_mongo.config import current

    records: list[Any] = []
    for database in facade.databases(classes):
        trail = database.inner[current().audit_collection]
        found = trail.find({"subjects": pseudonym}, sort=[("at", 1), ("stream", 1), ("seq", 1)])
        records.extend((yield facade.rows(found)))
    return records


def _run_sync(facade: _Facade, flow: Generator[Any, Any, Any]) -> Any:
    classes = facade.classes()
    memo: dict[str, Any] = {}
    steps: Steps[Any] = Steps(flow)
    request = steps.advance()
    while not steps.finished:
        answer: Steps[Any] = Steps(_answer(facade, classes, request, memo))
        made: Any = answer.advance()
        while not answer.finished:  # each call was made when it was yielded
            made = answer.advance(made)
        request = steps.advance(answer.value)
    return steps.value


async def _run_async(facade: _Facade, flow: Generator[Any, Any, Any]) -> Any:
    classes = facade.classes()
    memo: dict[str, Any] = {}
    steps: Steps[Any] = Steps(flow)
    request = steps.advance()
    while not steps.finished:
        answer: Steps[Any] = Steps(_answer(facade, classes, request, memo))
        made: Any = answer.advance()
        while not answer.finished:
            if not inspect.isawaitable(made):
                made = answer.advance(made)
                continue
            try:
                done = await made
            except Exception as exc:  # the answer sees its call fail, as the sync one does
                made = answer.advance(error=exc)
            else:
                made = answer.advance(done)
        request = steps.advance(answer.value)
    return steps.value


class _Mongoengine(_Facade):
    def data_map(self) -> DataMap:
        from privata_mongo.mongoengine._datamap import data_map

        return data_map(self.only)

    def classes(self) -> dict[str, Any]:
        from privata_mongo.mongoengine._datamap import model_classes

        return model_classes(self.only)

    def collection(self, cls: Any) -> Any:
        return cls._get_collection()

    def fields(self, cls: Any) -> Iterable[str]:
        return cls._fields  # type: ignore[no-any-return]

    def rows(self, cursor: Any) -> Any:
        return list(cursor)

    def ids(self, cursor: Any) -> Any:
        return [d["_id"] for d in cursor]

    def save(self, cls: Any, id: Any, changes: Mapping[str, Any]) -> Any:
        document = cls.objects.get(pk=id)
        for name, value in changes.items():
            setattr(document, name, value)
        document.save()  # mongoengine's own validation; ValidationError as natively


class _Beanie(_Facade):
    def data_map(self) -> DataMap:
        from privata_mongo.beanie._datamap import data_map

        return data_map(self.only)

    def classes(self) -> dict[str, Any]:
        from privata_mongo.beanie._datamap import model_classes

        return model_classes(self.only)

    def collection(self, cls: Any) -> Any:
        return cls.get_pymongo_collection()

    def fields(self, cls: Any) -> Iterable[str]:
        return cls.model_fields  # type: ignore[no-any-return]

    def rows(self, cursor: Any) -> Any:
        return cursor.to_list(None)

    async def ids(self, cursor: Any) -> list[Any]:
        return [d["_id"] async for d in cursor]

    async def save(self, cls: Any, id: Any, changes: Mapping[str, Any]) -> None:
        document = await cls.get(id)
        for name, value in changes.items():
            # pydantic's own validation of the assignment (ValidationError as natively)
            cls.__pydantic_validator__.validate_assignment(document, name, value)
        await document.save()


class Rights:
    """The rights of data subjects over the mongoengine models (sync)."""

    def __init__(self, models: Iterable[Any] | None = None) -> None:
        """Serve the rights over ``models`` (default: every registered model class)."""
        self._facade: _Facade = _Mongoengine(models)

    def _run(self, right: str, flow: Generator[Any, Any, Any]) -> Any:
        with subject_request(right), answering(partial=right in PARTIAL_RIGHTS):
            return _run_sync(self._facade, flow)

    def data_map(self) -> DataMap:
        """The mongoengine models, their classified fields and their reference edges."""
        return self._facade.data_map()

    def pseudonym(self, subject: str | Subject) -> str:
        """The pseudonym of ``subject`` (``UnknownSubject`` if nothing belongs to it)."""
        return self._run("locate", flows.locate(self.data_map(), _subject(subject)))  # type: ignore[no-any-return]

    def map(self, subject: str | Subject) -> SubjectMap:
        """The ids of every document of ``subject``, by model (reads ids only)."""
        return self._run("map", walk(self.data_map(), self.pseudonym(subject)))  # type: ignore[no-any-return]

    def access(self, subject: str | Subject) -> Access:
        """Everything held about ``subject`` (Art. 15), with its processing record.

        Raises:
            UnknownSubject: nothing belongs to the subject as named.
            AuditUnavailable: the ``access`` record could not be stored; nothing is returned.
            RegionUnavailable: a region holding the subject's data cannot be reached (inside
                ``partial_results``: the answer leaves it out, naming it in
                ``missing_regions``, in the block's ``regions`` and in the ``access`` record).
        """
        with answering(partial=True) as scope:
            held = self._run(flows.ACCESS, flows.access(self.data_map(), _subject(subject)))
        return partially(held, scope)

    def export(
        self, subject: str | Subject, out: IO[bytes], format: str = "json"
    ) -> dict[str, int]:
        """Write everything held about ``subject`` to ``out`` (Art. 20); documents per model.

        ``format`` is ``json``, ``csv`` (a zip with one file per model) or ``xml``. The export
        is streamed: memory holds one batch of documents. Inside ``partial_results`` an
        unreachable region is left out (its documents without their identity fields) and
        named in the block's ``regions`` and in the ``export`` records.
        """
        with answering(partial=True) as scope:
            pseudonym = self.pseudonym(subject)
            flow = flows.export(self.data_map(), Subject(pseudonym), writer(format, out, pseudonym))
            counts: dict[str, int] = self._run(flows.EXPORT, flow)
            if scope is not None and scope.unrecorded:
                self._run(flows.EXPORT, closing_records(flows.EXPORT, pseudonym, counts))
        return counts

    def rectify(
        self, subject: str | Subject, model: Any, changes: Mapping[str, Any], *, id: Any = None
    ) -> Any:
        """Correct fields of the subject's document of ``model`` (Art. 16); returns its id.

        The change is validated and saved by mongoengine as ``document.save()`` would; the
        ``rectify`` record names the fields, never the values.
        """
        name = model if isinstance(model, str) else model.__name__
        return self._run(
            flows.RECTIFY, flows.rectify(self.data_map(), _subject(subject), name, changes, id)
        )

    def transfer_region(self, subject: str | Subject, region: str) -> Transfer:
        """Move ``subject``'s identity data and data key to ``region`` (``docs/residency.md``).

        The only way a subject changes region: an update never moves it. The data key is
        re-wrapped by the target region's master key; a ``transfer_region`` record names the
        subject and both regions, and the processing record lists it.

        Raises:
            UnknownSubject: the subject cannot be found.
            UnknownRegion: ``region`` is not configured.
        """
        return self._run(TRANSFER, transfer_flow(self.data_map(), _subject(subject), region))  # type: ignore[no-any-return]

    def erase(self, subject: str | Subject) -> ErasureReceipt:
        """Erase ``subject`` (Art. 17); returns the receipt (``docs/rights.md``, Erasure).

        In this order, each step idempotent: the erasure-log entry is written (pending), the
        data key is crypto-shredded (tombstone, then key), the identity rows are deleted with
        their blind index terms, each model's ``erasure`` policy is applied to its documents
        of the subject's map (``pseudonymise``, the default: kept, joining nothing;
        ``delete``: deleted, deepest first), the ``erase`` records are appended, and the
        entry is marked done. A crash part-way leaves a pending entry that ``erase`` again
        (or ``replay_erasures``) completes. Erasing again returns the first receipt.

        Raises:
            UnknownSubject: the subject cannot be found and no erasure of it is logged.
            AuditUnavailable: an ``erase`` record could not be stored; the entry stays
                pending and a second call completes it.
        """
        flow = erasure_flows.erase(self.data_map(), _subject(subject))
        return self._run(erasure_flows.ERASE, flow)  # type: ignore[no-any-return]

    def enforce_retention(self, now: datetime.datetime | None = None) -> list[ErasureReceipt]:
        """Erase or pseudonymise every subject past its model's retention period.

        Per model with ``privacy["retention"]``: a ``retention`` record naming the subjects
        due, then each one's erasure (``erase``; kept documents when ``then`` is
        ``pseudonymise``). Subjects already erased are left alone, so it is idempotent.
        Returns the receipts of the erasures this run made.
        """
        return self._run(erasure_flows.ERASE, enforce(self.data_map(), now))  # type: ignore[no-any-return]

    def replay_erasures(
        self, *, progress: Callable[[int, int], None] | None = None
    ) -> list[ReplayedErasure]:
        """Re-apply every logged erasure to the data as it is now (after a backup restore).

        Keys the key vault holds again are shredded again, identity rows and documents the
        erasures deleted are deleted again; pending erasures are completed. Idempotent; each
        subject gets ``erase`` records with outcome ``replay``. ``progress`` is called with
        the log entries done and their total as the replay goes.
        """
        flow = erasure_flows.replay(self.data_map(), progress=progress)
        return self._run(erasure_flows.ERASE, flow)  # type: ignore[no-any-return]

    def _mark(self, right: str, subject: str | Subject, change: Callable[[Any, str], int]) -> int:
        """Mark the subject's own rows, then every native document of its map (``spread``).

        Returns the subject's own documents marked, as ``privata_mongo.restriction`` does; the
        native documents are counted in their ``right`` records.
        """
        with answering(partial=False):  # a change: all or nothing
            pseudonym = self.pseudonym(subject)
            with subject_request(right):
                databases = self._facade.databases(self._facade.classes())
                own = sum(change(database, pseudonym) for database in databases)
            self._run(right, spread(self.data_map(), pseudonym, right))
        return own

    def restrict(self, subject: str | Subject, *, allowed_purposes: Iterable[str] = ()) -> int:
        """Restrict processing of ``subject`` (Art. 18) on every document of its data map.

        Its own rows are marked as ``privata_mongo.restriction`` marks them, then every native
        document of its map (``core.rights.spread``); returns its own documents marked.
        """
        allowed = tuple(allowed_purposes)
        return self._mark(
            RESTRICT, subject, lambda db, p: restriction.restrict(db, p, allowed_purposes=allowed)
        )

    def lift_restriction(self, subject: str | Subject) -> int:
        """Lift the restriction of ``subject``; its objections stay."""
        return self._mark(LIFT_RESTRICTION, subject, restriction.lift_restriction)

    def object(self, subject: str | Subject, purpose: str) -> int:
        """Record ``subject``'s objection (Art. 21) to processing for ``purpose``."""
        return self._mark(OBJECT, subject, lambda db, p: restriction.object(db, p, purpose))

    def withdraw_objection(self, subject: str | Subject, purpose: str) -> int:
        """Withdraw ``subject``'s objection to ``purpose``."""
        return self._mark(
            WITHDRAW_OBJECTION,
            subject,
            lambda db, p: restriction.withdraw_objection(db, p, purpose),
        )

    def consent(
        self, subject: str | Subject, purpose: str, *, source: str, notice_version: str
    ) -> int:
        """Record ``subject``'s consent to ``purpose`` (Art. 6(1)(a), 7); documents marked.

        The event (source, notice version, actor) is appended to the consent history of every
        database of the models, then the subject's documents are marked: from then on an
        operation under a consent-based legal basis and ``purpose`` sees the subject.

        Raises:
            ConfigurationError: an empty purpose, source or notice version.
            UnknownSubject: nothing belongs to the subject as named.
        """
        text(purpose, "purpose")
        return self._mark(
            CONSENT,
            subject,
            lambda db, p: consents.give(
                db, p, purpose, source=source, notice_version=notice_version
            ),
        )

    def withdraw_consent(
        self, subject: str | Subject, purpose: str, *, source: str | None = None
    ) -> int:
        """Withdraw ``subject``'s consent to ``purpose``; documents of the subject.

        The subject's documents are unmarked first, then the event is appended. A consent
        never given is recorded too and changes nothing else (``privata_mongo.consent``).
        """
        text(purpose, "purpose")
        return self._mark(
            WITHDRAW_CONSENT,
            subject,
            lambda db, p: consents.withdraw(db, p, purpose, source=source),
        )

    def consents(self, subject: str | Subject) -> list[ConsentEvent]:
        """The consent history of ``subject``, oldest first, in every database of the models."""
        pseudonym = self.pseudonym(subject)
        databases = self._facade.databases(self._facade.classes())
        found = [e for db in databases for e in consents.history(db, pseudonym)]
        return sorted(found, key=lambda e: e.at)


class AsyncRights:
    """The rights of data subjects over the Beanie models given to ``init_beanie`` (async)."""

    def __init__(self, models: Iterable[Any] | None = None) -> None:
        """Serve the rights over ``models`` (default: every registered model class)."""
        self._facade: _Facade = _Beanie(models)

    async def _run(self, right: str, flow: Generator[Any, Any, Any]) -> Any:
        with subject_request(right), answering(partial=right in PARTIAL_RIGHTS):
            return await _run_async(self._facade, flow)

    def data_map(self) -> DataMap:
        """The Beanie models, their classified fields and their links."""
        return self._facade.data_map()

    async def pseudonym(self, subject: str | Subject) -> str:
        """``Rights.pseudonym`` for the Beanie models."""
        return await self._run("locate", flows.locate(self.data_map(), _subject(subject)))  # type: ignore[no-any-return]

    async def map(self, subject: str | Subject) -> SubjectMap:
        """``Rights.map`` for the Beanie models."""
        pseudonym = await self.pseudonym(subject)
        return await self._run("map", walk(self.data_map(), pseudonym))  # type: ignore[no-any-return]

    async def access(self, subject: str | Subject) -> Access:
        """``Rights.access`` for the Beanie models."""
        with answering(partial=True) as scope:
            held = await self._run(flows.ACCESS, flows.access(self.data_map(), _subject(subject)))
        return partially(held, scope)

    async def export(
        self, subject: str | Subject, out: IO[bytes], format: str = "json"
    ) -> dict[str, int]:
        """``Rights.export`` for the Beanie models."""
        with answering(partial=True) as scope:
            pseudonym = await self.pseudonym(subject)
            flow = flows.export(self.data_map(), Subject(pseudonym), writer(format, out, pseudonym))
            counts: dict[str, int] = await self._run(flows.EXPORT, flow)
            if scope is not None and scope.unrecorded:
                await self._run(flows.EXPORT, closing_records(flows.EXPORT, pseudonym, counts))
        return counts

    async def rectify(
        self, subject: str | Subject, model: Any, changes: Mapping[str, Any], *, id: Any = None
    ) -> Any:
        """``Rights.rectify`` for the Beanie models (pydantic validates each assignment)."""
        name = model if isinstance(model, str) else model.__name__
        return await self._run(
            flows.RECTIFY, flows.rectify(self.data_map(), _subject(subject), name, changes, id)
        )

    async def transfer_region(self, subject: str | Subject, region: str) -> Transfer:
        """``Rights.transfer_region`` for the Beanie models."""
        flow = transfer_flow(self.data_map(), _subject(subject), region)
        return await self._run(TRANSFER, flow)  # type: ignore[no-any-return]

    async def erase(self, subject: str | Subject) -> ErasureReceipt:
        """``Rights.erase`` for the Beanie models."""
        flow = erasure_flows.erase(self.data_map(), _subject(subject))
        return await self._run(erasure_flows.ERASE, flow)  # type: ignore[no-any-return]

    async def enforce_retention(self, now: datetime.datetime | None = None) -> list[ErasureReceipt]:
        """``Rights.enforce_retention`` for the Beanie models."""
        return await self._run(erasure_flows.ERASE, enforce(self.data_map(), now))  # type: ignore[no-any-return]

    async def replay_erasures(
        self, *, progress: Callable[[int, int], None] | None = None
    ) -> list[ReplayedErasure]:
        """``Rights.replay_erasures`` for the Beanie models."""
        flow = erasure_flows.replay(self.data_map(), progress=progress)
        return await self._run(erasure_flows.ERASE, flow)  # type: ignore[no-any-return]

    async def _mark(
        self, right: str, subject: str | Subject, change: Callable[[Any, str], Any]
    ) -> int:
        with answering(partial=False):  # a change: all or nothing
            pseudonym = await self.pseudonym(subject)
            total = 0
            with subject_request(right):
                for database in self._facade.databases(self._facade.classes()):
                    total += await change(database, pseudonym)
            await self._run(right, spread(self.data_map(), pseudonym, right))
        return total

    async def restrict(
        self, subject: str | Subject, *, allowed_purposes: Iterable[str] = ()
    ) -> int:
        """``Rights.restrict`` for the Beanie models."""
        allowed = tuple(allowed_purposes)
        return await self._mark(
            RESTRICT,
            subject,
            lambda db, p: restriction.restrict_async(db, p, allowed_purposes=allowed),
        )

    async def lift_restriction(self, subject: str | Subject) -> int:
        """``Rights.lift_restriction`` for the Beanie models."""
        return await self._mark(LIFT_RESTRICTION, subject, restriction.lift_restriction_async)

    async def object(self, subject: str | Subject, purpose: str) -> int:
        """``Rights.object`` for the Beanie models."""
        return await self._mark(
            OBJECT, subject, lambda db, p: restriction.object_async(db, p, purpose)
        )

    async def withdraw_objection(self, subject: str | Subject, purpose: str) -> int:
        """``Rights.withdraw_objection`` for the Beanie models."""
        return await self._mark(
            WITHDRAW_OBJECTION,
            subject,
            lambda db, p: restriction.withdraw_objection_async(db, p, purpose),
        )

    async def consent(
        self, subject: str | Subject, purpose: str, *, source: str, notice_version: str
    ) -> int:
        """``Rights.consent`` for the Beanie models."""
        text(purpose, "purpose")
        return await self._mark(
            CONSENT,
            subject,
            lambda db, p: consents.give_async(
                db, p, purpose, source=source, notice_version=notice_version
            ),
        )

    async def withdraw_consent(
        self, subject: str | Subject, purpose: str, *, source: str | None = None
    ) -> int:
        """``Rights.withdraw_consent`` for the Beanie models."""
        text(purpose, "purpose")
        return await self._mark(
            WITHDRAW_CONSENT,
            subject,
            lambda db, p: consents.withdraw_async(db, p, purpose, source=source),
        )

    async def consents(self, subject: str | Subject) -> list[ConsentEvent]:
        """``Rights.consents`` for the Beanie models."""
        pseudonym = await self.pseudonym(subject)
        found: list[ConsentEvent] = []
        for db in self._facade.databases(self._facade.classes()):
            found.extend(await consents.history_async(db, pseudonym))
        return sorted(found, key=lambda e: e.at)
