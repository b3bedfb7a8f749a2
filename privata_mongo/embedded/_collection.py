"""Internal. ``AsyncMockCollection``: pymongo's ``AsyncCollection`` API over a mongomock collection.

Every method keeps pymongo 4's async signature and return type and calls mongomock directly:
mongomock is in-process and synchronous, so there is nothing to wait for. Results are pymongo's
own result classes and errors are pymongo's own error classes (mongomock raises them), so callers
written against pymongo -- Beanie, privata's ``AsyncPymongoStore`` -- cannot tell the difference.

The methods that only pass a call on are rows of one table (``forward``: pymongo's method, what
mongomock is given, what is refused); the others -- cursors, ``aggregate``, ``bulk_write``, the
index methods -- are written out. The fidelity is mongomock's: options mongomock accepts are
passed on (it may ignore some, as it does for synchronous callers); options it would silently
drop although they change the result (``let``, ``array_filters`` and ``collation`` on
``find_one_and_*``) raise ``NotImplementedError``; ``sort`` on ``update_one``/``replace_one``,
which mongomock lacks, is emulated. Options that only concern a server (``comment``,
``max_time_ms``, ``bypass_document_validation`` -- mongomock has no validators) are accepted and
have no effect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pymongo.cursor_shared import CursorType
from pymongo.results import BulkWriteResult
from pymongo.write_concern import WriteConcern

from privata_mongo.embedded._bulk import first_in_order, run_bulk
from privata_mongo.embedded._cursor import AsyncMockCommandCursor, AsyncMockCursor
from privata_mongo.embedded._forward import (
    COLLECTION,
    KEYWORDS,
    Document,
    SortSpec,
    forward,
    no_session,
    unsupported,
)
from privata_mongo.embedded._indexes import Indexes
from privata_mongo.embedded._options import Child

if TYPE_CHECKING:
    from pymongo.collation import Collation

    from privata_mongo.embedded._database import AsyncMockDatabase

__all__ = ["AsyncMockCollection"]


def _first_by_sort(inner: Any, arguments: dict[str, Any]) -> None:
    """A sort for ``update_one`` and ``replace_one``, which mongomock lacks: narrow the filter."""
    arguments["filter"] = first_in_order(inner, arguments["filter"], arguments.get("sort"))


def _listed(inner: Any, arguments: dict[str, Any]) -> None:
    """``insert_many``'s documents as a list, refused as pymongo refuses them before any I/O."""
    documents: object = arguments["documents"]
    if not isinstance(documents, Iterable) or isinstance(documents, Mapping) or not documents:
        raise TypeError("documents must be a non-empty list")
    arguments["documents"] = list(documents)


def _named(inner: Any, arguments: dict[str, Any]) -> None:
    """``rename``'s new name is a string, as pymongo checks before any I/O."""
    new_name = arguments["new_name"]
    if not isinstance(new_name, str):
        raise TypeError(f"new_name must be an instance of str, not {type(new_name)}")


class AsyncMockCollection(Child["AsyncMockDatabase"], Indexes):
    """One mongomock collection behind pymongo's ``AsyncCollection`` API.

    Identity, ``name`` and ``with_options`` come from ``Child``, the index methods from
    ``Indexes``.

    Args:
        parent: the database this collection belongs to.
        inner: the ``mongomock.Collection`` that holds the data.
    """

    @property
    def full_name(self) -> str:
        """``database.collection``."""
        return f"{self._parent.name}.{self.name}"

    @property
    def database(self) -> AsyncMockDatabase:
        """The database this collection belongs to."""
        return self._parent

    @property
    def write_concern(self) -> WriteConcern:
        """The write concern this collection was given, as pymongo's type."""
        return WriteConcern(**self._inner.write_concern.document)

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

    count_documents = forward(COLLECTION.count_documents, "filter", KEYWORDS)
    estimated_document_count = forward(COLLECTION.estimated_document_count, KEYWORDS)
    distinct = forward(COLLECTION.distinct, "key", "filter", refused=("collation",))

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

    # writes: mongomock's update_one and update_many apply let, collation and hint themselves

    insert_one = forward(COLLECTION.insert_one, "document")
    insert_many = forward(COLLECTION.insert_many, "documents", "ordered", prepare=_listed)
    update_one = forward(
        COLLECTION.update_one,
        *("filter", "update", "upsert", "collation", "array_filters", "hint", "let"),
        prepare=_first_by_sort,
    )
    update_many = forward(
        COLLECTION.update_many,
        *("filter", "update", "upsert", "array_filters", "collation", "hint", "let"),
    )
    replace_one = forward(
        COLLECTION.replace_one,
        *("filter", "replacement", "upsert", "hint"),
        refused=("collation", "let"),
        prepare=_first_by_sort,
    )
    delete_one = forward(COLLECTION.delete_one, "filter", "collation", "hint", refused=("let",))
    delete_many = forward(COLLECTION.delete_many, "filter", "collation", "hint", refused=("let",))

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

    # find-and-modify: mongomock's versions would ignore array_filters, let and collation

    find_one_and_update = forward(
        COLLECTION.find_one_and_update,
        *("filter", "update", "projection", "sort", "upsert", "return_document"),
        refused=("array_filters", "let", "collation"),
    )
    find_one_and_replace = forward(
        COLLECTION.find_one_and_replace,
        *("filter", "replacement", "projection", "sort", "upsert", "return_document"),
        refused=("let", "collation"),
    )
    find_one_and_delete = forward(
        COLLECTION.find_one_and_delete,
        *("filter", "projection", "sort"),
        refused=("let", "collation"),
    )

    # the collection itself

    drop = forward(COLLECTION.drop, refused=("encrypted_fields",))
    rename = forward(COLLECTION.rename, "new_name", KEYWORDS, prepare=_named)
