"""The storage port over a pymongo-shaped collection: pymongo itself, or mongomock.

mongomock mirrors pymongo's ``Collection`` API and raises pymongo's own error classes, so one
adapter serves both. Write errors become the core's plain failures (so flows can compensate);
for an identity collection their messages and details are rewritten so that no stored value
(a duplicate e-mail address, say) reaches an error, a log line or an audit record.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from pymongo import ReplaceOne, ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, OperationFailure, WriteError

from privata_mongo.core.failures import DUPLICATE_KEY, WriteFailed, WriteFailure
from privata_mongo.core.ops import Document, InsertOutcome, Query, UpdateOutcome

__all__ = [
    "IdentityRedaction",
    "PymongoCursor",
    "PymongoStore",
    "StoreErrors",
    "find_and_modify_arguments",
    "find_arguments",
]

_INDEX_IN_MESSAGE = re.compile(r"index: (\S+)")


class PymongoCursor:
    """A pymongo (or mongomock) cursor read in batches."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self._iterator: Iterator[Document] = iter(cursor)

    def next_batch(self, size: int, /) -> list[Document]:
        """Up to ``size`` documents; fewer means the cursor is exhausted."""
        return list(itertools.islice(self._iterator, size))

    def close(self) -> None:
        """Release the server cursor."""
        close = getattr(self._cursor, "close", None)
        if close is not None:
            close()


class IdentityRedaction:
    """Rewrites server errors about identity rows so that they carry no stored value.

    Args:
        model: the model named in messages.
        namespace: ``db.collection`` of the logical (clinical) collection, as natively reported.
    """

    def __init__(self, model: str, namespace: str) -> None:
        self.model = model
        self.namespace = namespace

    def failure(
        self, code: int, message: str, details: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """A value-free message and details for one write error."""
        if code == DUPLICATE_KEY:
            pattern = dict(details.get("keyPattern") or {})
            found = _INDEX_IN_MESSAGE.search(message)
            index = found.group(1) if found else "_".join(f"{k}_{v}" for k, v in pattern.items())
            fields = ", ".join(f"{k}: <redacted>" for k in pattern) or "<redacted>"
            where = f" index: {index}" if index else ""
            text = (
                f"E11000 duplicate key error collection: {self.namespace}{where} "
                f"dup key: {{ {fields} }}"
            )
            return text, {"code": code, "errmsg": text, "keyPattern": pattern}
        name = details.get("codeName") or "error"
        text = f"{name} on identity data of {self.model} (code {code}); values are not reported"
        return text, {"code": code, "errmsg": text}

    def operation(self, exc: OperationFailure) -> OperationFailure:
        """The same failure type and code, without the server's text."""
        code = exc.code if exc.code is not None else 8
        text, details = self.failure(code, str(exc), exc.details or {})
        return type(exc)(text, code, {**details, "ok": 0.0})


class StoreErrors:
    """Error translation shared by the sync and async stores.

    Args:
        redaction: set for identity collections.
    """

    def __init__(self, redaction: IdentityRedaction | None = None) -> None:
        self._redaction = redaction

    def _failure(
        self, index: int, code: int, message: str, details: Mapping[str, Any]
    ) -> WriteFailure:
        if self._redaction is not None:
            message, clean = self._redaction.failure(code, message, details)
            return WriteFailure(index, code, message, clean)
        kept = {k: v for k, v in details.items() if k not in ("op", "index")}
        return WriteFailure(index, code, message, kept)

    def _write_failed(self, exc: WriteError | BulkWriteError) -> WriteFailed:
        if isinstance(exc, BulkWriteError):
            first = (exc.details or {}).get("writeErrors") or [{}]
            details = first[0]
            code = int(details.get("code", exc.code or 8))
            message = str(details.get("errmsg", exc))
        else:
            details = exc.details or {}
            code = int(exc.code if exc.code is not None else details.get("code", 8))
            message = str(details.get("errmsg", exc))
        failure = self._failure(0, code, message, details)
        return WriteFailed(failure.message, failure.code, failure.details)

    def _operation(self, exc: OperationFailure) -> Exception:
        if isinstance(exc, (WriteError, BulkWriteError)):
            return self._write_failed(exc)
        if self._redaction is not None:
            return self._redaction.operation(exc)
        return exc

    def _insert_failures(self, exc: BulkWriteError | WriteError) -> InsertOutcome:
        if isinstance(exc, BulkWriteError):
            errors = (exc.details or {}).get("writeErrors", [])
            return InsertOutcome(
                tuple(
                    self._failure(
                        int(e.get("index", 0)), int(e.get("code", 8)), str(e.get("errmsg", "")), e
                    )
                    for e in errors
                )
            )
        failed = self._write_failed(exc)
        return InsertOutcome((WriteFailure(0, failed.code, failed.message, failed.details),))


def find_arguments(query: Query) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``Collection.find`` arguments for a ``Query`` (the same for sync and async)."""
    return (query.filter, query.projection), {
        "skip": query.skip,
        "limit": query.limit,
        "sort": list(query.sort) or None,
        "batch_size": query.batch_size,
        **query.options,
    }


def find_and_modify_arguments(
    sort: Sequence[tuple[str, Any]],
    return_new: bool,
    projection: Mapping[str, Any] | None,
    options: Mapping[str, Any],
) -> tuple[dict[str, Any], Any]:
    """Keyword arguments shared by the ``find_one_and_*`` calls, and the return choice."""
    common: dict[str, Any] = {"projection": projection, "sort": list(sort) or None, **options}
    return common, ReturnDocument.AFTER if return_new else ReturnDocument.BEFORE


class PymongoStore(StoreErrors):
    """``DocumentStore`` over one pymongo-shaped collection.

    Args:
        collection: a ``pymongo.collection.Collection`` or a ``mongomock.Collection``.
        redaction: set for identity collections.
    """

    def __init__(self, collection: Any, redaction: IdentityRedaction | None = None) -> None:
        super().__init__(redaction)
        self.collection = collection

    def __repr__(self) -> str:
        return f"PymongoStore({self.collection.full_name!r})"

    # DocumentReader

    def find(self, query: Query, /) -> PymongoCursor:
        """Open a cursor for ``query``."""
        try:
            return PymongoCursor(self._find(query))
        except OperationFailure as exc:
            raise self._operation(exc) from None

    def _find(self, query: Query) -> Any:
        args, kwargs = find_arguments(query)
        return self.collection.find(*args, **kwargs)

    def count(self, filter: Mapping[str, Any], options: Mapping[str, Any], /) -> int:
        """``count_documents``."""
        try:
            return int(self.collection.count_documents(filter, **options))
        except OperationFailure as exc:
            raise self._operation(exc) from None

    def distinct(
        self, key: str, filter: Mapping[str, Any], options: Mapping[str, Any], /
    ) -> list[Any]:
        """``distinct``."""
        try:
            return list(self.collection.distinct(key, filter, **options))
        except OperationFailure as exc:
            raise self._operation(exc) from None

    # DocumentAnalytics

    def aggregate(
        self, pipeline: Sequence[Mapping[str, Any]], options: Mapping[str, Any], /
    ) -> PymongoCursor:
        """Run a pipeline."""
        try:
            return PymongoCursor(self.collection.aggregate(list(pipeline), **options))
        except OperationFailure as exc:
            raise self._operation(exc) from None

    def estimated_count(self, options: Mapping[str, Any], /) -> int:
        """``estimated_document_count``."""
        return int(self.collection.estimated_document_count(**options))

    def explain(self, query: Query, /) -> Document:
        """The server's plan for ``query``."""
        plan: Document = self._find(query).explain()
        return plan

    # DocumentWriter

    def insert(self, documents: Sequence[Mapping[str, Any]], ordered: bool, /) -> InsertOutcome:
        """``insert_many``; per-document failures are returned, not raised."""
        if not documents:
            return InsertOutcome()
        try:
            self.collection.insert_many(list(documents), ordered=ordered)
        except BulkWriteError as exc:
            errors = (exc.details or {}).get("writeErrors", [])
            return InsertOutcome(
                tuple(
                    self._failure(
                        int(e.get("index", 0)), int(e.get("code", 8)), str(e.get("errmsg", "")), e
                    )
                    for e in errors
                )
            )
        except WriteError as exc:
            failed = self._write_failed(exc)
            return InsertOutcome((WriteFailure(0, failed.code, failed.message, failed.details),))
        return InsertOutcome()

    def update(
        self,
        filter: Mapping[str, Any],
        update: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        multi: bool,
        upsert: bool,
        options: Mapping[str, Any],
        /,
    ) -> UpdateOutcome:
        """``update_one``/``update_many``."""
        method = self.collection.update_many if multi else self.collection.update_one
        document = update if isinstance(update, Mapping) else list(update)
        try:
            result = method(filter, document, upsert=upsert, **options)
        except OperationFailure as exc:
            raise self._operation(exc) from None
        return UpdateOutcome(
            result.matched_count, result.modified_count or 0, result.upserted_id, result.raw_result
        )

    def delete(self, filter: Mapping[str, Any], multi: bool, options: Mapping[str, Any], /) -> int:
        """``delete_one``/``delete_many``; returns the deleted count."""
        method = self.collection.delete_many if multi else self.collection.delete_one
        try:
            return int(method(filter, **options).deleted_count)
        except OperationFailure as exc:
            raise self._operation(exc) from None

    # DocumentModifier

    def replace(
        self,
        filter: Mapping[str, Any],
        document: Mapping[str, Any],
        upsert: bool,
        options: Mapping[str, Any],
        /,
    ) -> UpdateOutcome:
        """``replace_one``."""
        try:
            result = self.collection.replace_one(filter, document, upsert=upsert, **options)
        except OperationFailure as exc:
            raise self._operation(exc) from None
        return UpdateOutcome(result.matched_count, result.modified_count or 0, result.upserted_id)

    def replace_many(self, pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], /) -> int:
        """Unordered bulk of replacements; returns how many filters matched."""
        if not pairs:
            return 0
        try:
            if not isinstance(self.collection, Collection):
                # In-process stores (mongomock) cost nothing per call, and mongomock's bulk
                # API does not accept the ReplaceOne that pymongo 4.20 builds.
                return sum(
                    self.collection.replace_one(dict(f), dict(d)).matched_count for f, d in pairs
                )
            result = self.collection.bulk_write(
                [ReplaceOne(dict(f), dict(d)) for f, d in pairs], ordered=False
            )
        except OperationFailure as exc:
            raise self._operation(exc) from None
        return int(result.matched_count)

    def find_and_modify(
        self,
        action: Literal["update", "replace", "delete"],
        filter: Mapping[str, Any],
        document: Any,
        sort: Sequence[tuple[str, Any]],
        upsert: bool,
        return_new: bool,
        projection: Mapping[str, Any] | None,
        options: Mapping[str, Any],
        /,
    ) -> Document | None:
        """``find_one_and_update``/``_replace``/``_delete``."""
        common, which = find_and_modify_arguments(sort, return_new, projection, options)
        try:
            if action == "delete":
                found: Document | None = self.collection.find_one_and_delete(filter, **common)
            elif action == "replace":
                found = self.collection.find_one_and_replace(
                    filter, document, upsert=upsert, return_document=which, **common
                )
            else:
                body = document if isinstance(document, Mapping) else list(document)
                found = self.collection.find_one_and_update(
                    filter, body, upsert=upsert, return_document=which, **common
                )
        except OperationFailure as exc:
            raise self._operation(exc) from None
        return found

    # CollectionAdmin

    def create_index(self, keys: Sequence[tuple[str, Any]], options: Mapping[str, Any], /) -> str:
        """Create an index."""
        try:
            return str(self.collection.create_index(list(keys), **options))
        except OperationFailure as exc:
            raise self._operation(exc) from None

    def drop_index(self, name: str, /) -> None:
        """Drop an index by name; ``"*"`` drops all but ``_id``."""
        if name == "*":
            self.collection.drop_indexes()
        else:
            self.collection.drop_index(name)

    def index_information(self) -> dict[str, Any]:
        """Indexes by name (empty for a collection that does not exist)."""
        try:
            return dict(self.collection.index_information())
        except OperationFailure:
            return {}

    def drop(self) -> None:
        """Drop the collection."""
        self.collection.drop()
