"""The server's size limit on documents, enforced before anything of a split write is stored.

A logical document is stored as two rows, so neither the driver nor the server sees the
document the application sent: a 17 MiB document whose identity and clinical halves are each
below the limit would be accepted, and a half that is too large could fail after the other
half was written. So sizes are measured here, in the process, before the first write: the
application's document as it would have been stored, then each stored row (identity rows as
sealed, which encryption makes larger). A document past ``max_bson_size`` fails as the server
fails it: an insert with ``BSONObjectTooLarge`` (10334) for that document, so an ordered
``insert_many`` still stores the documents before it; a replacement or an update whose result
is too large with code 17419. The driver's own check, before it sends a single-document write
(``DocumentTooLarge``), is the proxy's (``check_sent``).

An update of clinical fields only runs on the server, which measures the clinical half alone;
``flows.size_gate`` asks the server, before the update, which documents it could take past the
limit together with their identity rows: ``growth_bound`` is how much an update can add to any
one document, and ``ServerSizes`` remembers whether the server can measure documents at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import bson
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from bson.errors import InvalidDocument

from privata_mongo.core.failures import WriteFailed, WriteFailure

__all__ = [
    "BSON_OBJECT_TOO_LARGE",
    "COMMAND_OVERHEAD",
    "DOCUMENT_GREW_TOO_LARGE",
    "MAX_BSON_SIZE",
    "UNMEASURED",
    "ServerSizes",
    "grew_too_large",
    "growth_bound",
    "size_of",
    "too_large_to_insert",
]

MAX_BSON_SIZE: Final = 16 * 1024 * 1024
"""The server's ``maxBsonObjectSize`` (every MongoDB since 1.8; FerretDB reports it too)."""

COMMAND_OVERHEAD: Final = 16 * 1024 - 2
"""What a write command may add to a document (pymongo's ``_COMMAND_OVERHEAD``, SERVER-10643)."""

BSON_OBJECT_TOO_LARGE: Final = 10334
DOCUMENT_GREW_TOO_LARGE: Final = 17419

# Only for measuring: UUIDs take 16 bytes in either binary representation
_MEASURE: Final[CodecOptions[Any]] = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)


def size_of(document: Mapping[str, Any]) -> int | None:
    """The BSON size of ``document``, or ``None`` when only the store's codecs can encode it."""
    try:
        return len(bson.encode(document, codec_options=_MEASURE))
    except (InvalidDocument, TypeError, ValueError, OverflowError):
        return None  # a custom type: the store's driver measures it when it is written


def _largest(*documents: Mapping[str, Any]) -> int:
    return max((size_of(d) or 0) for d in documents)


def too_large_to_insert(index: int, *forms: Mapping[str, Any]) -> WriteFailure | None:
    """The server's write error for an inserted document any of whose ``forms`` is too large.

    ``forms``: the application's document and the rows it is stored as.
    """
    size = _largest(*forms)
    if size <= MAX_BSON_SIZE:
        return None
    message = f"object to insert too large. size in bytes: {size}, max size: {MAX_BSON_SIZE}"
    return WriteFailure(index, BSON_OBJECT_TOO_LARGE, message, {"codeName": "BSONObjectTooLarge"})


def grew_too_large(*forms: Mapping[str, Any]) -> WriteFailed | None:
    """The server's failure for a write whose resulting document is too large, or ``None``."""
    if _largest(*forms) <= MAX_BSON_SIZE:
        return None
    return WriteFailed(
        f"Resulting document after update is larger than {MAX_BSON_SIZE}",
        DOCUMENT_GREW_TOO_LARGE,
    )


UNMEASURED: Final = frozenset({168, 238})
"""Codes of a server that cannot measure documents: ``$bsonSize`` is unknown before MongoDB 4.4
(InvalidPipelineOperator, 168) and not implemented by FerretDB 1.x (NotImplemented, 238)."""

# Operators that never make a document larger; every other one may, by at most its operand.
_SHRINKING: Final = frozenset({"$unset", "$pop", "$pull", "$pullAll"})
_ALL_ELEMENTS = re.compile(r"\.\$\[[^\]]*\]")  # $[] and $[<identifier>]: every element matched
_SLACK: Final = 1024  # type changes ($inc to a wider number, $currentDate), created parents


@dataclass(slots=True)
class ServerSizes:
    """Whether the server measures documents (``$bsonSize``); learned once per connection.

    A server that cannot enforces no 16 MiB limit of its own either (FerretDB 1.x stores
    larger documents), so an update there is not measured, as natively.
    """

    available: bool = True


def growth_bound(update: Mapping[str, Any]) -> int | None:
    """The most bytes ``update`` (operator form) can add to any one document it changes.

    Twice the operand's own size (an array element's index key may be longer than the one it
    had in the update), plus the nulls a numeric path component pads an array with, plus a
    margin for type changes; ``0`` when every operator only removes; ``None`` when an update of
    every array element (``$[]``, ``$[<id>]``) makes the growth depend on the document.
    """
    grows = {op: fields for op, fields in update.items() if op not in _SHRINKING}
    if not grows:
        return 0
    padding = 0
    for fields in grows.values():
        for path in fields if isinstance(fields, Mapping) else ():
            if _ALL_ELEMENTS.search(str(path)):
                return None
            for part in str(path).split("."):
                if part.isdigit():
                    padding += (int(part) + 1) * (len(part) + 2)  # type, key, NUL per null
    return 2 * (size_of(grows) or MAX_BSON_SIZE) + padding + _SLACK
