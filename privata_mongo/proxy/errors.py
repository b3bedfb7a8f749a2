"""Turn the core's plain failures into pymongo's own exception types.

The ODM above catches ``DuplicateKeyError``, ``WriteError``, ``BulkWriteError`` and
``OperationFailure`` and maps them to its own errors (``NotUniqueError`` …); raising exactly
those types with the server's codes keeps that behaviour native.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from pymongo.errors import (
    BulkWriteError,
    DocumentTooLarge,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    WriteError,
)

from privata_mongo.core.failures import (
    DUPLICATE_KEY,
    BulkWriteFailed,
    NativeFailure,
    OperationFailed,
    WriteFailed,
    WriteFailure,
)
from privata_mongo.core.flows.bulk import BulkOutcome, BulkRequestsFailed
from privata_mongo.core.limits import COMMAND_OVERHEAD, MAX_BSON_SIZE, size_of
from privata_mongo.core.mql.budget import EXCEEDED_TIME_LIMIT

__all__ = ["bulk_counts", "bulk_error", "check_sent", "native_errors", "single_error"]

TIME_LIMIT = "MaxTimeMSExpired"
_DUPLICATE_CODES = frozenset({DUPLICATE_KEY, 11001, 12582})


def check_sent(document: Mapping[str, Any], operation: str) -> None:
    """Pymongo's own check before it sends a single-document write, in its words.

    ``operation``: ``insert`` (the message names the sizes) or ``update`` (a replacement or an
    update document: the message says only that the command is too large).

    Raises:
        DocumentTooLarge: the document exceeds ``max_bson_size`` plus a command's allowance.
    """
    limit = MAX_BSON_SIZE + COMMAND_OVERHEAD
    size = size_of(document)
    if size is None or size <= limit:
        return
    if operation == "insert":
        raise DocumentTooLarge(
            f"BSON document too large ({size} bytes) - the connected server supports BSON "
            f"document sizes up to {limit} bytes."
        )
    raise DocumentTooLarge(f"{operation} command document too large")


def bulk_counts(outcome: BulkOutcome) -> dict[str, Any]:
    """The counts of a bulk in the server's bulk API shape."""
    return {
        "nInserted": outcome.inserted,
        "nUpserted": len(outcome.upserted),
        "nMatched": outcome.matched,
        "nModified": outcome.modified,
        "nRemoved": outcome.removed,
        "upserted": [{"index": i, "_id": u} for i, u in outcome.upserted],
    }


def single_error(
    code: int, message: str, details: Mapping[str, Any], terse: bool = False
) -> WriteError:
    """The error pymongo raises for a failed single-document write.

    ``terse``: the backend is mongomock, which raises single write errors with the bare
    message and no details (pymongo appends a server's details to the message).
    """
    kind = DuplicateKeyError if code in _DUPLICATE_CODES else WriteError
    if terse:
        return kind(message, code)
    return kind(message, code, {"index": 0, "code": code, "errmsg": message, **details})


def bulk_error(
    failures: Sequence[WriteFailure],
    inserted: int,
    documents: Sequence[Mapping[str, Any]] = (),
    counts: Mapping[str, Any] | None = None,
) -> BulkWriteError:
    """The error pymongo raises for a bulk insert, in its native details shape.

    ``documents`` are what the application may see of each failed document (``op``).
    """
    errors = []
    for f in failures:
        error: dict[str, Any] = {"index": f.index, "code": f.code, "errmsg": f.message, **f.details}
        if f.index < len(documents):
            error["op"] = documents[f.index]
        errors.append(error)
    details: dict[str, Any] = {
        "writeErrors": errors,
        "writeConcernErrors": [],
        "nInserted": inserted,
        "nUpserted": 0,
        "nMatched": 0,
        "nModified": 0,
        "nRemoved": 0,
        "upserted": [],
    }
    details.update(counts or {})
    return BulkWriteError(details)


@contextmanager
def native_errors(
    single: bool = True,
    documents: Sequence[Mapping[str, Any]] | None = None,
    terse: bool = False,
) -> Iterator[None]:
    """Re-raise core failures as pymongo errors.

    ``single``: a failed one-document insert is a ``WriteError`` (or ``DuplicateKeyError``),
    as ``insert_one`` raises it, rather than a ``BulkWriteError``. ``documents``: what a
    ``BulkWriteError`` may show of each document (its ``op``). ``terse``: single write errors
    in mongomock's shape (``single_error``).
    """
    try:
        yield
    except BulkRequestsFailed as exc:
        raise bulk_error(exc.failures, exc.inserted, (), bulk_counts(exc.outcome)) from None
    except BulkWriteFailed as exc:
        if single and len(exc.failures) == 1:
            f = exc.failures[0]
            raise single_error(f.code, f.message, f.details, terse) from None
        raise bulk_error(exc.failures, exc.inserted, documents or ()) from None
    except WriteFailed as exc:
        raise single_error(exc.code, exc.message, exc.details, terse) from None
    except OperationFailed as exc:
        if exc.code == EXCEEDED_TIME_LIMIT:  # pymongo's type for the server's MaxTimeMSExpired
            raise ExecutionTimeout(
                exc.message,
                exc.code,
                {"ok": 0.0, "errmsg": exc.message, "code": exc.code, "codeName": TIME_LIMIT},
            ) from None
        raise OperationFailure(
            exc.message, exc.code, {"ok": 0.0, "errmsg": exc.message, "code": exc.code}
        ) from None
    except NativeFailure as exc:
        raise OperationFailure(exc.message, exc.code) from None
