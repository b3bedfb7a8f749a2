"""Data-subject rights: the data map, access, portability and rectification (Art. 15, 20, 16).

``Rights`` serves the mongoengine models of this process, ``AsyncRights`` the Beanie models
given to ``init_beanie``. Both run the same flows of ``core.rights`` and differ only in
whether the reads are awaited: each answers the flows' requests through the models' own
privata collections (so identity values are decrypted and every read is audited like any
other), reads the pseudonym link and the audit trail from the real collections (no personal
data), and appends the right's own record (``access``, ``export``, ``rectify``) under the
access context in force. See ``docs/rights.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from typing import IO, Any

from privata_mongo.core.audit import records_for
from privata_mongo.core.rights import access as flows
from privata_mongo.core.rights.access import Access, Subject
from privata_mongo.core.rights.datamap import DataMap, Edge, Lookup, ModelEntry, SubjectMap, walk
from privata_mongo.core.rights.export import writer
from privata_mongo.core.schema import PSEUDONYM_FIELD
from privata_mongo.errors import ConfigurationError

__all__ = ["Access", "AsyncRights", "Rights", "Subject", "data_map"]


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


def _record(database: Any, request: flows.Record) -> tuple[Any, tuple[Any, ...]]:
    """The trail of ``database`` (``None``: auditing off) and the records of ``request``."""
    runtime = database.client.runtime
    trail = runtime.trail(database.inner)
    records = records_for(
        at=runtime.clock.now(),
        access=runtime.access(),
        operation=request.operation,
        model=request.model,
        subjects=[request.pseudonym],
        fields=request.fields,
        count=request.count,
    )
    return trail, records


def _history_query(pseudonym: str) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    return {"subjects": pseudonym}, [("at", 1), ("stream", 1), ("seq", 1)]


def _known(cls: Any, model: str, names: Mapping[str, Any], fields: Any) -> None:
    unknown = sorted(set(names) - set(fields))
    if unknown:
        raise ConfigurationError(f"{model} has no field {', '.join(unknown)}: nothing changed")


class Rights:
    """The rights of data subjects over the mongoengine models (sync)."""

    def __init__(self, models: Iterable[Any] | None = None) -> None:
        """Serve the rights over ``models`` (default: every registered model class)."""
        from privata_mongo.mongoengine._datamap import data_map, model_classes

        only = None if models is None else tuple(models)
        self._build: Callable[[], DataMap] = lambda: data_map(only)
        self._classes: Callable[[], dict[str, Any]] = lambda: model_classes(only)

    def data_map(self) -> DataMap:
        """The mongoengine models, their classified fields and their reference edges."""
        return self._build()

    def _run(self, flow: Generator[Any, Any, Any]) -> Any:
        classes = self._classes()
        result: Any = None
        while True:
            try:
                request = flow.send(result)
            except StopIteration as done:
                return done.value
            result = self._answer(classes, request)

    def _answer(self, classes: Mapping[str, Any], request: Any) -> Any:
        cls: Any = classes[request.model] if hasattr(request, "model") else None
        collection: Any = cls._get_collection() if cls is not None else None
        if isinstance(request, Lookup):
            source = collection.database.inner[collection.name] if request.raw else collection
            return [d["_id"] for d in source.find(dict(request.filter), {"_id": 1})]
        if isinstance(request, flows.Read):
            return list(collection.find({"_id": {"$in": list(request.ids)}}))
        if isinstance(request, flows.FindSubject):
            found = collection.find_one(dict(request.filter), {"_id": 1})
            if found is None:
                return None
            raw = collection.database.inner[collection.name]
            row = raw.find_one({"_id": found["_id"]}, {PSEUDONYM_FIELD: 1})
            return row.get(PSEUDONYM_FIELD) if row else None
        if isinstance(request, flows.History):
            return self._history(classes, request.pseudonym)
        if isinstance(request, flows.Record):
            trail, records = _record(collection.database, request)
            if trail is not None:
                trail.append(records)
            return None
        if isinstance(request, flows.Rectify):
            _known(cls, request.model, request.changes, cls._fields)
            document = cls.objects.get(pk=request.id)
            for name, value in request.changes.items():
                setattr(document, name, value)
            document.save()  # mongoengine's own validation; ValidationError as natively
            self._invalidate(request.model, request.id)
            return None
        raise TypeError(f"unknown request {type(request).__name__}")

    def _history(self, classes: Mapping[str, Any], pseudonym: str) -> list[Any]:
        from privata_mongo.audit import audit_collection

        seen: set[str] = set()
        records: list[Any] = []
        for cls in classes.values():
            database = cls._get_collection().database
            if database.name in seen:
                continue
            seen.add(database.name)
            query, sort = _history_query(pseudonym)
            records.extend(audit_collection(database).find(query, sort=sort))
        return records

    def _invalidate(self, model: str, id: Any) -> None:
        """Drop cached copies of a rectified document (the seam for a read cache; none yet)."""

    def map(self, subject: str | Subject) -> SubjectMap:
        """The ids of every document of ``subject``, by model (reads ids only)."""
        pseudonym = self._run(flows.locate(self.data_map(), _subject(subject)))
        return self._run(walk(self.data_map(), pseudonym))  # type: ignore[no-any-return]

    def access(self, subject: str | Subject) -> Access:
        """Everything held about ``subject`` (Art. 15), with its processing record.

        Raises:
            UnknownSubject: nothing belongs to the subject as named.
            AuditUnavailable: the ``access`` record could not be stored; nothing is returned.
        """
        return self._run(flows.access(self.data_map(), _subject(subject)))  # type: ignore[no-any-return]

    def export(
        self, subject: str | Subject, out: IO[bytes], format: str = "json"
    ) -> dict[str, int]:
        """Write everything held about ``subject`` to ``out`` (Art. 20); documents per model.

        ``format`` is ``json``, ``csv`` (a zip with one file per model) or ``xml``. The export
        is streamed: memory holds one batch of documents.
        """
        pseudonym = self._run(flows.locate(self.data_map(), _subject(subject)))
        flow = flows.export(self.data_map(), Subject(pseudonym), writer(format, out, pseudonym))
        return self._run(flow)  # type: ignore[no-any-return]

    def rectify(
        self, subject: str | Subject, model: Any, changes: Mapping[str, Any], *, id: Any = None
    ) -> Any:
        """Correct fields of the subject's document of ``model`` (Art. 16); returns its id.

        The change is validated and saved by mongoengine as ``document.save()`` would; the
        ``rectify`` record names the fields, never the values.
        """
        name = model if isinstance(model, str) else model.__name__
        return self._run(flows.rectify(self.data_map(), _subject(subject), name, changes, id))


class AsyncRights:
    """The rights of data subjects over the Beanie models given to ``init_beanie`` (async)."""

    def __init__(self, models: Iterable[Any] | None = None) -> None:
        """Serve the rights over ``models`` (default: every registered model class)."""
        from privata_mongo.beanie._datamap import data_map, model_classes

        only = None if models is None else tuple(models)
        self._build: Callable[[], DataMap] = lambda: data_map(only)
        self._classes: Callable[[], dict[str, Any]] = lambda: model_classes(only)

    def data_map(self) -> DataMap:
        """The Beanie models, their classified fields and their links."""
        return self._build()

    async def _run(self, flow: Generator[Any, Any, Any]) -> Any:
        classes = self._classes()
        result: Any = None
        while True:
            try:
                request = flow.send(result)
            except StopIteration as done:
                return done.value
            result = await self._answer(classes, request)

    async def _answer(self, classes: Mapping[str, Any], request: Any) -> Any:
        cls: Any = classes[request.model] if hasattr(request, "model") else None
        collection: Any = cls.get_pymongo_collection() if cls is not None else None
        if isinstance(request, Lookup):
            source = collection.database.inner[collection.name] if request.raw else collection
            rows = await source.find(dict(request.filter), {"_id": 1}).to_list(None)
            return [d["_id"] for d in rows]
        if isinstance(request, flows.Read):
            return await collection.find({"_id": {"$in": list(request.ids)}}).to_list(None)
        if isinstance(request, flows.FindSubject):
            found = await collection.find_one(dict(request.filter), {"_id": 1})
            if found is None:
                return None
            raw = collection.database.inner[collection.name]
            row = await raw.find_one({"_id": found["_id"]}, {PSEUDONYM_FIELD: 1})
            return row.get(PSEUDONYM_FIELD) if row else None
        if isinstance(request, flows.History):
            return await self._history(classes, request.pseudonym)
        if isinstance(request, flows.Record):
            trail, records = _record(collection.database, request)
            if trail is not None:
                await trail.append(records)
            return None
        if isinstance(request, flows.Rectify):
            _known(cls, request.model, request.changes, cls.model_fields)
            document = await cls.get(request.id)
            for name, value in request.changes.items():
                # pydantic's own validation of the assignment (ValidationError as natively)
                cls.__pydantic_validator__.validate_assignment(document, name, value)
            await document.save()
            self._invalidate(request.model, request.id)
            return None
        raise TypeError(f"unknown request {type(request).__name__}")

    async def _history(self, classes: Mapping[str, Any], pseudonym: str) -> list[Any]:
        from privata_mongo.config import current

        seen: set[str] = set()
        records: list[Any] = []
        for cls in classes.values():
            database = cls.get_pymongo_collection().database
            if database.name in seen:
                continue
            seen.add(database.name)
            query, sort = _history_query(pseudonym)
            trail = database.inner[current().audit_collection]
            records.extend(await trail.find(query, sort=sort).to_list(None))
        return records

    def _invalidate(self, model: str, id: Any) -> None:
        """Drop cached copies of a rectified document (the seam for a read cache; none yet)."""

    async def map(self, subject: str | Subject) -> SubjectMap:
        """The ids of every document of ``subject``, by model (reads ids only)."""
        pseudonym = await self._run(flows.locate(self.data_map(), _subject(subject)))
        return await self._run(walk(self.data_map(), pseudonym))  # type: ignore[no-any-return]

    async def access(self, subject: str | Subject) -> Access:
        """``Rights.access`` for the Beanie models."""
        return await self._run(flows.access(self.data_map(), _subject(subject)))  # type: ignore[no-any-return]

    async def export(
        self, subject: str | Subject, out: IO[bytes], format: str = "json"
    ) -> dict[str, int]:
        """``Rights.export`` for the Beanie models."""
        pseudonym = await self._run(flows.locate(self.data_map(), _subject(subject)))
        flow = flows.export(self.data_map(), Subject(pseudonym), writer(format, out, pseudonym))
        return await self._run(flow)  # type: ignore[no-any-return]

    async def rectify(
        self, subject: str | Subject, model: Any, changes: Mapping[str, Any], *, id: Any = None
    ) -> Any:
        """``Rights.rectify`` for the Beanie models (pydantic validates each assignment)."""
        name = model if isinstance(model, str) else model.__name__
        return await self._run(flows.rectify(self.data_map(), _subject(subject), name, changes, id))
