"""Internal. Which pymongo collection call serves each storage request: the table both stores use.

pymongo's ``Collection`` and ``AsyncCollection`` take the same arguments and raise the same
errors; they differ only in which calls are awaited. So each request (``core.ops``) maps here,
once, to a ``PymongoCall`` — method, arguments, how the result becomes the request's result type,
what a server error turns into — and ``PymongoStore`` and ``AsyncPymongoStore`` only make the
call, awaiting it or not. Write errors become the core's plain failures (so flows can
compensate); for an identity collection their messages and details are rewritten so that no
stored value (a duplicate e-mail address, say) reaches an error, a log line or an audit record.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, cast

from bson.errors import InvalidDocument
from pymongo import DeleteMany, DeleteOne, ReplaceOne, ReturnDocument
from pymongo.errors import (
    BulkWriteError,
    ExecutionTimeout,
    OperationFailure,
    WriteConcernError,
    WriteError,
)
from typing_extensions import assert_never

from privata_mongo.core.failures import DUPLICATE_KEY, NativeFailure, WriteFailed, WriteFailure
from privata_mongo.core.mql.narrow import narrowed
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
    FetchAll,
    Find,
    FindAndModify,
    IndexInformation,
    Insert,
    InsertOutcome,
    Op,
    Query,
    Replace,
    ReplaceMany,
    Update,
    UpdateOutcome,
)
from privata_mongo.core.schema import BLIND_FIELD
from privata_mongo.ports.storage import STORE_OPS, StoreOp

__all__ = ["IdentityRedaction", "PymongoCall", "StoreErrors", "call_for", "refused"]


def refused(error: BaseException) -> bool:
    """Whether ``error``, raised by a write, proves that the write was not applied.

    A command the server answered with an error (``OperationFailure``: a duplicate key, a
    document it rejects) and a document the driver would not encode (``InvalidDocument``,
    ``DocumentTooLarge``) were refused as a whole. Everything else leaves the write's fate
    unknown: a network error (``AutoReconnect``, ``NetworkTimeout``, server selection) may come
    after the server received the request, which it may apply later still; a write-concern
    error comes after the write was applied; a time limit may cut a write part-way; a bulk
    error may follow writes that were applied.
    """
    if isinstance(error, NativeFailure | InvalidDocument):
        return True
    return isinstance(error, OperationFailure) and not isinstance(
        error, WriteConcernError | ExecutionTimeout | BulkWriteError
    )


_COLLECTION_IN_MESSAGE = re.compile(r"collection: \S+")
_DUP_KEY_IN_MESSAGE = re.compile(r"dup key: .*\Z", re.DOTALL)


def _logical(stored: str) -> str:
    """The application's name of an identity field from its stored (blind index) path."""
    prefix = f"{BLIND_FIELD}."
    return stored[len(prefix) :] if stored.startswith(prefix) else stored


Arguments = tuple[tuple[Any, ...], Mapping[str, Any]]


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
        """A value-free message and details for one write error.

        A duplicate key keeps the backend's own shape, as the application would see it on the
        logical collection: its message with the logical namespace and the ``dup key`` values
        replaced by ``<redacted>``; ``keyPattern`` and ``keyValue`` only when the backend
        reports them, under the application's field names (``keyValue`` redacted).
        """
        if code == DUPLICATE_KEY:
            out: dict[str, Any] = {"code": code}
            pattern = details.get("keyPattern")
            fields = [_logical(k) for k in pattern] if isinstance(pattern, Mapping) else []
            text = _COLLECTION_IN_MESSAGE.sub(f"collection: {self.namespace}", message, count=1)
            if _DUP_KEY_IN_MESSAGE.search(text):
                shown = ", ".join(f"{k}: <redacted>" for k in fields) or "<redacted>"
                text = _DUP_KEY_IN_MESSAGE.sub(f"dup key: {{ {shown} }}", text)
            out["errmsg"] = text
            if isinstance(pattern, Mapping):
                out["keyPattern"] = {_logical(k): v for k, v in pattern.items()}
            value = details.get("keyValue")
            if isinstance(value, Mapping):
                out["keyValue"] = {_logical(k): "<redacted>" for k in value}
            return text, out
        name = details.get("codeName") or "error"
        text = f"{name} on identity data of {self.model} (code {code}); values are not reported"
        return text, {"code": code, "errmsg": text}

    def operation(self, exc: OperationFailure) -> OperationFailure:
        """The same failure type and code, without the server's text."""
        code = exc.code if exc.code is not None else 8
        text, details = self.failure(code, str(exc), exc.details or {})
        return type(exc)(text, code, {**details, "ok": 0.0})


class StoreErrors:
    """A collection's server errors as the core expects them (redacted for identity rows).

    Args:
        redaction: set for identity collections.
    """

    def __init__(self, redaction: IdentityRedaction | None = None) -> None:
        self.redaction = redaction

    def _failure(
        self, index: int, code: int, message: str, details: Mapping[str, Any]
    ) -> WriteFailure:
        if self.redaction is not None:
            message, clean = self.redaction.failure(code, message, details)
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

    def translate(self, exc: OperationFailure) -> Exception:
        """The error a flow receives for ``exc``: a ``WriteFailed``, or ``exc`` (redacted)."""
        if isinstance(exc, (WriteError, BulkWriteError)):
            return self._write_failed(exc)
        if self.redaction is not None:
            return self.redaction.operation(exc)
        return exc

    def raise_(self, exc: OperationFailure) -> NoReturn:
        """Raise what ``translate`` makes of ``exc``."""
        raise self.translate(exc) from None

    def insert_failures(self, exc: OperationFailure) -> InsertOutcome:
        """An insert's write errors as data (the flow decides); other errors are raised."""
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
        if isinstance(exc, WriteError):
            failed = self._write_failed(exc)
            return InsertOutcome((WriteFailure(0, failed.code, failed.message, failed.details),))
        raise self.translate(exc) from None


def _first(results: list[Any]) -> Any:
    return results[0]


def _none(results: list[Any]) -> None:
    return None


def _empty(exc: OperationFailure) -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class PymongoCall:
    """The pymongo call(s) that serve one request, and how their results answer it.

    Attributes:
        method: the collection method.
        calls: positional and keyword arguments, once per call (several only where a backend
            has no bulk form); none at all answers ``finish([])`` without I/O.
        result: ``value`` (the call's return), ``cursor`` (an open cursor, wrapped by the
            store) or ``all`` (a cursor read to its end).
        awaited: whether pymongo's async API returns an awaitable (``find`` does not).
        then: a method of the result to call next, awaited on the async side (``explain``).
        finish: the request's result from the calls' results, in order.
        failed: what a server error (``OperationFailure``) becomes: raised, or an outcome.
    """

    method: str
    calls: tuple[Arguments, ...]
    finish: Callable[[list[Any]], Any] = _first
    failed: Callable[[OperationFailure], Any] | None = None
    result: Literal["value", "cursor", "all"] = "value"
    awaited: bool = True
    then: str | None = None


def _plain(filter: Mapping[str, Any], upsert: bool = False) -> Mapping[str, Any]:
    """The filter as sent: its plainest equivalent form (``core.mql.narrow``).

    An upsert's filter is sent as built: the document it inserts is made from its equalities.
    """
    return filter if upsert or not isinstance(filter, Mapping) else narrowed(filter)


def _find_arguments(query: Query) -> Arguments:
    return (_plain(query.filter), query.projection), {
        "skip": query.skip,
        "limit": query.limit,
        "sort": list(query.sort) or None,
        "batch_size": query.batch_size,
        **query.options,
    }


def _update_outcome(results: list[Any]) -> UpdateOutcome:
    result = results[0]
    return UpdateOutcome(
        result.matched_count, result.modified_count or 0, result.upserted_id, result.raw_result
    )


def _replace_outcome(results: list[Any]) -> UpdateOutcome:
    result = results[0]
    return UpdateOutcome(result.matched_count, result.modified_count or 0, result.upserted_id)


def _matched(results: list[Any]) -> int:
    return sum(int(r.matched_count) for r in results)


def _body(document: Any) -> Any:
    """An update document as given, an update pipeline as a list."""
    return document if isinstance(document, Mapping) else list(document)


_REQUEST_OPTIONS = ("collation", "hint")


def _bulk_delete(
    filter: Mapping[str, Any],
    multi: bool,
    options: Mapping[str, Any],
    raised: Callable[[OperationFailure], Any],
) -> PymongoCall:
    """A delete sent as pymongo's bulk sends it, with the bulk's own options."""
    request = (DeleteMany if multi else DeleteOne)(
        dict(filter), **{k: options[k] for k in _REQUEST_OPTIONS if k in options}
    )
    rest = {k: v for k, v in options.items() if k not in _REQUEST_OPTIONS}
    return PymongoCall(
        "bulk_write",
        ((([request],), {"ordered": True, **rest}),),
        lambda r: int(r[0].deleted_count),
        raised,
    )


def call_for(op: Op[Any], errors: StoreErrors, *, bulk_replace: bool = True) -> PymongoCall:
    """The call that executes ``op`` (one of ``STORE_OPS``).

    ``bulk_replace``: the backend accepts pymongo's ``ReplaceOne`` in ``bulk_write``
    (mongomock does not accept the one pymongo 4.20 builds; it then gets one call per pair,
    which costs nothing in the process).
    """
    if not isinstance(op, STORE_OPS):
        raise TypeError(f"{type(op).__name__} is not a storage request")
    raised = errors.raise_
    store_op = cast(StoreOp, op)
    match store_op:
        case Find(_, query):
            return PymongoCall("find", (_find_arguments(query),), result="cursor", awaited=False)
        case FetchAll(_, query):
            return PymongoCall("find", (_find_arguments(query),), result="all", awaited=False)
        case Explain(_, query):
            return PymongoCall("find", (_find_arguments(query),), awaited=False, then="explain")
        case Aggregate(_, pipeline, options):
            return PymongoCall("aggregate", (((list(pipeline),), options),), result="cursor")
        case Count(_, filter, options):
            return PymongoCall(
                "count_documents", (((_plain(filter),), options),), lambda r: int(r[0]), raised
            )
        case EstimatedCount(_, options):
            return PymongoCall("estimated_document_count", (((), options),), lambda r: int(r[0]))
        case Distinct(_, key, filter, options):
            return PymongoCall(
                "distinct", (((key, _plain(filter)), options),), lambda r: list(r[0]), raised
            )
        case Insert(_, documents, ordered, options):
            return PymongoCall(
                "insert_many",
                (((list(documents),), {"ordered": ordered, **options}),) if documents else (),
                lambda _: InsertOutcome(),
                errors.insert_failures,
            )
        case Update(_, filter, update, multi, upsert, options):
            method = "update_many" if multi else "update_one"
            arguments = ((_plain(filter, upsert), _body(update)), {"upsert": upsert, **options})
            return PymongoCall(method, (arguments,), _update_outcome, raised)
        case Delete(_, filter, multi, options):
            filter = _plain(filter)
            if "bypass_document_validation" in options:
                # Only a bulk sends the option with a delete (pymongo's delete methods do not
                # take it): the same bulk command, so the server answers as it would natively.
                return _bulk_delete(filter, multi, options, raised)
            method = "delete_many" if multi else "delete_one"
            return PymongoCall(
                method, (((filter,), options),), lambda r: int(r[0].deleted_count), raised
            )
        case Replace(_, filter, document, upsert, options):
            arguments = ((_plain(filter, upsert), document), {"upsert": upsert, **options})
            return PymongoCall("replace_one", (arguments,), _replace_outcome, raised)
        case ReplaceMany(_, pairs, options):
            if not bulk_replace:
                each: tuple[Arguments, ...] = tuple(
                    ((dict(f), dict(d)), dict(options)) for f, d in pairs
                )
                return PymongoCall("replace_one", each, _matched, raised)
            requests = [ReplaceOne(dict(f), dict(d)) for f, d in pairs]
            bulk: tuple[Arguments, ...] = (
                (((requests,), {"ordered": False, **options}),) if pairs else ()
            )
            return PymongoCall("bulk_write", bulk, _matched, raised)
        case FindAndModify(_, action, filter, document, sort, upsert, new, projection, options):
            filter = _plain(filter, upsert)
            common: dict[str, Any] = {
                "projection": projection,
                "sort": list(sort) or None,
                **options,
            }
            if action == "delete":
                return PymongoCall("find_one_and_delete", (((filter,), common),), failed=raised)
            which = ReturnDocument.AFTER if new else ReturnDocument.BEFORE
            named = {"upsert": upsert, "return_document": which, **common}
            if action == "replace":
                return PymongoCall(
                    "find_one_and_replace", (((filter, document), named),), failed=raised
                )
            return PymongoCall(
                "find_one_and_update", (((filter, _body(document)), named),), failed=raised
            )
        case CreateIndex(_, keys, options):
            return PymongoCall(
                "create_index", (((list(keys),), options),), lambda r: str(r[0]), raised
            )
        case DropIndex(_, name, options):
            if name == "*":
                return PymongoCall("drop_indexes", (((), dict(options)),), _none, raised)
            return PymongoCall("drop_index", (((name,), dict(options)),), _none, raised)
        case IndexInformation(_, options):
            return PymongoCall(
                "index_information", (((), dict(options)),), lambda r: dict(r[0]), _empty
            )
        case Drop(_, options):
            return PymongoCall("drop", (((), dict(options)),), _none, raised)
        case _:
            assert_never(store_op)
