"""Internal. ``AsyncMockCollection``: pymongo's ``AsyncCollection`` API over a mongomock collection.

Every method keeps pymongo 4's async signature and return type and calls mongomock directly:
mongomock is in-process and synchronous, so there is nothing to wait for. Results are pymongo's
own result classes and errors are pymongo's own error classes (mongomock raises them), so callers
written against pymongo -- Beanie, privata's ``AsyncPymongoStore`` -- cannot tell the difference.

The fidelity is mongomock's: options mongomock accepts are passed on (it may ignore some, as it
does for synchronous callers); options it would silently drop although they change the result
(``let``, ``array_filters`` on ``find_one_and_update``) raise ``NotImplementedError``; ``sort`` on
``update_one``/``replace_one``, which mongomock lacks, is emulated. Options that only concern a
server (``comment``, ``max_time_ms``, ``bypass_document_validation`` -- mongomock has no
validators) are accepted and have no effect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from bson.codec_options import CodecOptions
from pymongo.cursor_shared import CursorType
from pymongo.read_concern import ReadConcern
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)
from pymongo.write_concern import WriteConcern

from privata_mongo.embedded._bulk import first_in_order, run_bulk
from privata_mongo.embedded._cursor import (
    AsyncMockCommandCursor,
    AsyncMockCursor,
    Document,
    SortSpec,
    UpdateSpec,
    no_session,
    unsupported,
)
from privata_mongo.embedded._indexes import Indexes
from privata_mongo.embedded._modify import FindAndModify
from privata_mongo.embedded._options import MockOptions

if TYPE_CHECKING:
    from pymongo.collation import Collation
    from pymongo.read_preferences import _ServerMode

    from privata_mongo.embedded._database import AsyncMockDatabase

__all__ = ["AsyncMockCollection"]


class AsyncMockCollection(MockOptions, FindAndModify, Indexes):
    """One mongomock collection behind pymongo's ``AsyncCollection`` API.

    The ``find_one_and_*`` methods come from ``FindAndModify``, the index methods from
    ``Indexes``.

    Args:
        database: the database this collection belongs to.
        inner: the ``mongomock.Collection`` that holds the data.
    """

    def __init__(self, database: AsyncMockDatabase, inner: Any) -> None:
        self._database = database
        self._inner = inner

    def __repr__(self) -> str:
        return f"AsyncMockCollection({self._database!r}, {self.name!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AsyncMockCollection):
            return (self._database, self.name) == (other._database, other.name)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._database, self.name))

    @property
    def inner(self) -> Any:
        """The mongomock collection (untyped)."""
        return self._inner

    @property
    def name(self) -> str:
        """The collection's name."""
        return str(self._inner.name)

    @property
    def full_name(self) -> str:
        """``database.collection``."""
        return f"{self._database.name}.{self.name}"

    @property
    def database(self) -> AsyncMockDatabase:
        """The database this collection belongs to."""
        return self._database

    @property
    def write_concern(self) -> WriteConcern:
        """The write concern this collection was given, as pymongo's type."""
        return WriteConcern(**self._inner.write_concern.document)

    def with_options(
        self,
        codec_options: CodecOptions[Any] | None = None,
        read_preference: _ServerMode | None = None,
        write_concern: WriteConcern | None = None,
        read_concern: ReadConcern | None = None,
    ) -> AsyncMockCollection:
        """The same collection with other options."""
        inner = self._inner.with_options(
            codec_options=codec_options,
            read_preference=read_preference,
            write_concern=write_concern,
            read_concern=read_concern,
        )
        return AsyncMockCollection(self._database, inner)

    # reads

    def find(
        self,
        filter: Mapping[str, Any] | None = None,
        projection: Mapping[str, Any] | Iterable[str] | None = None,
        skip: int = 0,
        limit: int = 0,
        no_cursor_timeout: bool = False,
        cursor_type: int = CursorType.NON_TAILABLE,
        sort: SortSpec | None = None,
        allow_partial_results: bool = False,
        oplog_replay: bool = False,
        batch_size: int = 0,
        collation: Mapping[str, Any] | Collation | None = None,
        hint: Any = None,
        max_scan: int | None = None,
        max_time_ms: int | None = None,
        max: SortSpec | None = None,
        min: SortSpec | None = None,
        return_key: bool | None = None,
        show_record_id: bool | None = None,
        snapshot: bool | None = None,
        comment: Any = None,
        session: Any = None,
        allow_disk_use: bool | None = None,
        let: Mapping[str, Any] | None = None,
    ) -> AsyncMockCursor:
        """A cursor over the matching documents (returned at once, read when awaited)."""
        no_session(session)
        unsupported("a tailable or exhaust cursor_type", cursor_type != CursorType.NON_TAILABLE)
        for option, value in (
            ("max_scan", max_scan),
            ("max", max),
            ("min", min),
            ("return_key", return_key),
            ("show_record_id", show_record_id),
            ("snapshot", snapshot),
            ("let", let),
        ):
            unsupported(option, value)
        return AsyncMockCursor(
            self,
            filter,
            projection,
            skip=skip,
            limit=limit,
            sort=sort,
            batch_size=batch_size,
            collation=collation,
            hint=hint,
            max_time_ms=max_time_ms,
            allow_disk_use=allow_disk_use,
            comment=comment,
        )

    async def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> Document | None:
        """The first matching document, or ``None``; a non-mapping filter is an ``_id``."""
        if filter is not None and not isinstance(filter, Mapping):
            filter = {"_id": filter}
        found = await self.find(filter, *args, **kwargs).limit(-1).to_list(1)
        return found[0] if found else None

    async def count_documents(
        self,
        filter: Mapping[str, Any],
        session: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> int:
        """How many documents match (``skip``, ``limit``, ``hint``, ``maxTimeMS`` accepted)."""
        no_session(session)
        return int(self._inner.count_documents(filter, **kwargs))

    async def estimated_document_count(self, comment: Any = None, **kwargs: Any) -> int:
        """How many documents the collection holds."""
        return int(self._inner.estimated_document_count(**kwargs))

    async def distinct(
        self,
        key: str,
        filter: Mapping[str, Any] | None = None,
        session: Any = None,
        comment: Any = None,
        hint: Any = None,
        **kwargs: Any,
    ) -> list[Any]:
        """The distinct values of ``key`` among the matching documents."""
        no_session(session)
        unsupported("collation", kwargs.pop("collation", None))
        values: list[Any] = self._inner.distinct(key, filter)
        return values

    async def aggregate(
        self,
        pipeline: Sequence[Mapping[str, Any]],
        session: Any = None,
        let: Mapping[str, Any] | None = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> AsyncMockCommandCursor:
        """Run a pipeline; like pymongo 4's async API, a coroutine returning a cursor."""
        if not isinstance(pipeline, list):
            raise TypeError("pipeline must be a list")
        no_session(session)
        unsupported("let", let)
        return AsyncMockCommandCursor(self._inner.aggregate(pipeline, **kwargs))

    # writes

    async def insert_one(
        self,
        document: MutableMapping[str, Any],
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
    ) -> InsertOneResult:
        """Insert one document (its ``_id`` is set in place when missing)."""
        no_session(session)
        result: InsertOneResult = self._inner.insert_one(document)
        return result

    async def insert_many(
        self,
        documents: Iterable[MutableMapping[str, Any]],
        ordered: bool = True,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
    ) -> InsertManyResult:
        """Insert documents; failures raise ``BulkWriteError`` with per-document details."""
        given: object = documents  # checked at run time, as pymongo does
        if not isinstance(given, Iterable) or isinstance(given, Mapping) or not given:
            raise TypeError("documents must be a non-empty list")
        no_session(session)
        result: InsertManyResult = self._inner.insert_many(list(documents), ordered=ordered)
        return result

    async def update_one(
        self,
        filter: Mapping[str, Any],
        update: UpdateSpec,
        upsert: bool = False,
        bypass_document_validation: bool | None = None,
        collation: Mapping[str, Any] | Collation | None = None,
        array_filters: Sequence[Mapping[str, Any]] | None = None,
        hint: Any = None,
        session: Any = None,
        let: Mapping[str, Any] | None = None,
        sort: SortSpec | None = None,
        comment: Any = None,
    ) -> UpdateResult:
        """Update the first match (the first in ``sort`` order when given)."""
        no_session(session)
        result: UpdateResult = self._inner.update_one(
            first_in_order(self._inner, filter, sort),
            update,
            upsert=upsert,
            collation=collation,
            array_filters=array_filters,
            hint=hint,
            let=let,
        )
        return result

    async def update_many(
        self,
        filter: Mapping[str, Any],
        update: UpdateSpec,
        upsert: bool = False,
        array_filters: Sequence[Mapping[str, Any]] | None = None,
        bypass_document_validation: bool | None = None,
        collation: Mapping[str, Any] | Collation | None = None,
        hint: Any = None,
        session: Any = None,
        let: Mapping[str, Any] | None = None,
        comment: Any = None,
    ) -> UpdateResult:
        """Update every match."""
        no_session(session)
        result: UpdateResult = self._inner.update_many(
            filter,
            update,
            upsert=upsert,
            array_filters=array_filters,
            collation=collation,
            hint=hint,
            let=let,
        )
        return result

    async def replace_one(
        self,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        upsert: bool = False,
        bypass_document_validation: bool | None = None,
        collation: Mapping[str, Any] | Collation | None = None,
        hint: Any = None,
        session: Any = None,
        let: Mapping[str, Any] | None = None,
        sort: SortSpec | None = None,
        comment: Any = None,
    ) -> UpdateResult:
        """Replace the first match (the first in ``sort`` order when given)."""
        no_session(session)
        unsupported("collation", collation)
        unsupported("let", let)
        result: UpdateResult = self._inner.replace_one(
            first_in_order(self._inner, filter, sort), replacement, upsert=upsert, hint=hint
        )
        return result

    async def delete_one(
        self,
        filter: Mapping[str, Any],
        collation: Mapping[str, Any] | Collation | None = None,
        hint: Any = None,
        session: Any = None,
        let: Mapping[str, Any] | None = None,
        comment: Any = None,
    ) -> DeleteResult:
        """Delete the first match."""
        no_session(session)
        unsupported("let", let)
        result: DeleteResult = self._inner.delete_one(filter, collation=collation, hint=hint)
        return result

    async def delete_many(
        self,
        filter: Mapping[str, Any],
        collation: Mapping[str, Any] | Collation | None = None,
        hint: Any = None,
        session: Any = None,
        let: Mapping[str, Any] | None = None,
        comment: Any = None,
    ) -> DeleteResult:
        """Delete every match."""
        no_session(session)
        unsupported("let", let)
        result: DeleteResult = self._inner.delete_many(filter, collation=collation, hint=hint)
        return result

    async def bulk_write(
        self,
        requests: Sequence[Any],
        ordered: bool = True,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
        let: Mapping[str, Any] | None = None,
    ) -> BulkWriteResult:
        """Run pymongo's write requests one by one; counts and errors as pymongo reports them."""
        no_session(session)
        unsupported("let", let)
        return run_bulk(self._inner, requests, ordered=ordered)

    # the collection itself

    async def drop(
        self,
        session: Any = None,
        comment: Any = None,
        encrypted_fields: Mapping[str, Any] | None = None,
    ) -> None:
        """Drop the collection and its indexes."""
        no_session(session)
        unsupported("encrypted_fields", encrypted_fields)
        self._inner.drop()

    async def rename(
        self, new_name: str, session: Any = None, comment: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Rename the collection (``dropTarget=True`` replaces an existing one)."""
        if not isinstance(new_name, str):
            raise TypeError(f"new_name must be an instance of str, not {type(new_name)}")
        no_session(session)
        return dict(self._inner.rename(new_name, **kwargs))
