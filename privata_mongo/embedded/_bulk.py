"""Internal. ``bulk_write`` for the embedded backend: pymongo's requests, run one by one.

mongomock's own bulk builder rejects the ``sort`` that pymongo 4.10+ puts on ``ReplaceOne`` and
``UpdateOne``, and tallies results in its own shape. Here each request is read through the hook
pymongo's own bulk object uses (``_add_to_bulk``), validated as pymongo validates it, executed as
the matching single-document mongomock call, and tallied into pymongo's full bulk result:
``BulkWriteResult`` on success, ``BulkWriteError`` carrying every write error (an ordered bulk
stops at the first) otherwise. Unordered bulks run inserts, then updates, then deletes, in the
order pymongo sends them to a server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bson import ObjectId
from bson.raw_bson import RawBSONDocument
from pymongo.common import (
    validate_is_document_type,
    validate_ok_for_replace,
    validate_ok_for_update,
)
from pymongo.errors import BulkWriteError, InvalidOperation, OperationFailure
from pymongo.results import BulkWriteResult

from privata_mongo.embedded._forward import SortSpec, sort_list, unsupported

__all__ = ["first_in_order", "run_bulk"]

_UNKNOWN_ERROR = 8
_GROUPS = {"insert": 0, "update": 1, "replace": 1, "delete": 2}


def first_in_order(
    inner: Any, filter: Mapping[str, Any], sort: SortSpec | None
) -> Mapping[str, Any]:
    """``filter`` narrowed to its first match in ``sort`` order (mongomock updates lack sort)."""
    if not sort or "_id" in filter:
        return filter
    first = inner.find_one(filter, {"_id": 1}, sort=sort_list(sort))
    return filter if first is None else {**filter, "_id": first["_id"]}


@dataclass(frozen=True, slots=True)
class _Request:
    kind: Literal["insert", "update", "replace", "delete"]
    op: Mapping[str, Any]
    """The request as a server reports it in ``writeErrors``."""
    run: Callable[[], Any]


class _Requests:
    """Stands in for pymongo's bulk object: each request adds itself via ``_add_to_bulk``."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.requests: list[_Request] = []

    def add_insert(self, document: MutableMapping[str, Any]) -> None:
        validate_is_document_type("document", document)
        if not (isinstance(document, RawBSONDocument) or "_id" in document):
            document["_id"] = ObjectId()
        self.requests.append(_Request("insert", document, lambda: self._inner.insert_one(document)))

    def add_update(
        self,
        selector: Mapping[str, Any],
        update: Any,
        multi: bool,
        upsert: bool | None,
        collation: Mapping[str, Any] | None = None,
        array_filters: list[Mapping[str, Any]] | None = None,
        hint: Any = None,
        sort: Mapping[str, Any] | None = None,
    ) -> None:
        validate_ok_for_update(update)
        op = _op({"q": selector, "u": update, "multi": multi}, upsert, collation, hint, sort)
        if array_filters is not None:
            op["arrayFilters"] = array_filters
        method = self._inner.update_many if multi else self._inner.update_one

        def run() -> Any:
            return method(
                first_in_order(self._inner, selector, sort),
                update,
                upsert=bool(upsert),
                collation=collation,
                array_filters=array_filters,
                hint=hint,
            )

        self.requests.append(_Request("update", op, run))

    def add_replace(
        self,
        selector: Mapping[str, Any],
        replacement: Mapping[str, Any],
        upsert: bool | None,
        collation: Mapping[str, Any] | None = None,
        hint: Any = None,
        sort: Mapping[str, Any] | None = None,
    ) -> None:
        validate_ok_for_replace(replacement)
        unsupported("collation", collation)
        op = _op({"q": selector, "u": replacement}, upsert, collation, hint, sort)

        def run() -> Any:
            target = first_in_order(self._inner, selector, sort)
            return self._inner.replace_one(target, replacement, upsert=bool(upsert), hint=hint)

        self.requests.append(_Request("replace", op, run))

    def add_delete(
        self,
        selector: Mapping[str, Any],
        limit: int,
        collation: Mapping[str, Any] | None = None,
        hint: Any = None,
    ) -> None:
        op = _op({"q": selector, "limit": limit}, None, collation, hint, None)
        method = self._inner.delete_one if limit == 1 else self._inner.delete_many
        self.requests.append(
            _Request("delete", op, lambda: method(selector, collation=collation, hint=hint))
        )


def _op(
    op: dict[str, Any],
    upsert: bool | None,
    collation: Mapping[str, Any] | None,
    hint: Any,
    sort: Mapping[str, Any] | None,
) -> dict[str, Any]:
    options = {"upsert": upsert, "collation": collation, "hint": hint, "sort": sort}
    op.update({key: value for key, value in options.items() if value is not None})
    return op


def run_bulk(inner: Any, requests: Sequence[Any], *, ordered: bool) -> BulkWriteResult:
    """Execute pymongo write requests on a mongomock collection, as pymongo's bulk would."""
    if not isinstance(requests, list):
        raise TypeError(f"requests must be an instance of list, not {type(requests)}")
    collected = _Requests(inner)
    for request in requests:
        _collect(collected, request)
    if not collected.requests:
        raise InvalidOperation("No operations to execute")

    result: dict[str, Any] = {
        "writeErrors": [],
        "writeConcernErrors": [],
        "nInserted": 0,
        "nUpserted": 0,
        "nMatched": 0,
        "nModified": 0,
        "nRemoved": 0,
        "upserted": [],
    }
    order = list(enumerate(collected.requests))
    if not ordered:
        order.sort(key=lambda item: _GROUPS[item[1].kind])
    for index, request in order:
        try:
            outcome = request.run()
        except OperationFailure as exc:
            result["writeErrors"].append(_write_error(index, request, exc))
            if ordered:
                break
            continue
        _tally(result, index, request, outcome)
    if result["writeErrors"]:
        result["writeErrors"].sort(key=lambda error: error["index"])
        raise BulkWriteError(result)
    return BulkWriteResult(result, acknowledged=True)


def _collect(collected: _Requests, request: Any) -> None:
    try:
        request._add_to_bulk(collected)
    except AttributeError:
        raise TypeError(f"{request!r} is not a valid request") from None


def _tally(result: dict[str, Any], index: int, request: _Request, outcome: Any) -> None:
    if request.kind == "insert":
        result["nInserted"] += 1
    elif request.kind == "delete":
        result["nRemoved"] += outcome.deleted_count
    elif outcome.upserted_id is not None:
        result["nUpserted"] += 1
        result["upserted"].append({"index": index, "_id": outcome.upserted_id})
    else:
        result["nMatched"] += outcome.matched_count
        result["nModified"] += outcome.modified_count


def _write_error(index: int, request: _Request, exc: OperationFailure) -> dict[str, Any]:
    details = exc.details or {}
    error: dict[str, Any] = {
        "index": index,
        "code": exc.code if exc.code is not None else _UNKNOWN_ERROR,
        "errmsg": details.get("errmsg", str(exc)),
    }
    for key in ("keyPattern", "keyValue", "errInfo"):
        if key in details:
            error[key] = details[key]
    error["op"] = request.op
    return error
