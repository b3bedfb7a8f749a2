"""Failures the server itself would have reported, raised by work the core does in the process.

When the core evaluates a filter or applies an update in the process (because the values live
encrypted or in the identity collection), a malformed filter or an impossible update must fail
exactly as the server would have failed it: same error code, same kind. The core cannot import
pymongo, so it raises these plain exceptions; the proxy turns them into pymongo's own types
(``OperationFailure``, ``WriteError``, ``DuplicateKeyError``, ``BulkWriteError``) so that the ODM
above reacts as it does natively.

Messages follow the server's wording but never contain a value of a document: the server's
messages sometimes quote values, ours name only the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BAD_VALUE",
    "CONFLICTING_UPDATE_OPERATORS",
    "DUPLICATE_KEY",
    "FAILED_TO_PARSE",
    "IMMUTABLE_FIELD",
    "PATH_NOT_VIABLE",
    "TYPE_MISMATCH",
    "BulkWriteFailed",
    "NativeFailure",
    "OperationFailed",
    "WriteFailed",
    "WriteFailure",
]

BAD_VALUE = 2
FAILED_TO_PARSE = 9
TYPE_MISMATCH = 14
PATH_NOT_VIABLE = 28
CONFLICTING_UPDATE_OPERATORS = 40
IMMUTABLE_FIELD = 66
DUPLICATE_KEY = 11000


class NativeFailure(Exception):
    """A failure with a server error code; the proxy re-raises it as the matching pymongo type."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class OperationFailed(NativeFailure):
    """What the server reports as a command failure (a bad filter, an unknown operator)."""


class WriteFailed(NativeFailure):
    """What the server reports as a write error for a single-document write."""

    def __init__(self, message: str, code: int, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message, code)
        self.details: Mapping[str, Any] = dict(details or {})


@dataclass(frozen=True, slots=True)
class WriteFailure:
    """One failed document of a bulk write, indexed in the caller's list of documents."""

    index: int
    code: int
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


class BulkWriteFailed(NativeFailure):
    """A multi-document write that stopped (ordered) or skipped documents (unordered).

    ``inserted`` counts the logical documents written in full; every other document was
    written to neither collection.
    """

    def __init__(self, failures: tuple[WriteFailure, ...], inserted: int) -> None:
        super().__init__("batch op errors occurred", 65)
        self.failures = failures
        self.inserted = inserted
