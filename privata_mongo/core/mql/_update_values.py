"""Internal. The update engine's view of values and paths, shared by all of its modules.

The parser (``update``, ``_update_tree``), the leaves (``_update_ops``, ``_update_array_ops``)
and the applier (``_update_apply``) must agree on a few server rules that are not about any one
operator: how an error is raised (``fail``, always a ``WriteFailed`` with the server's code),
the type names that error messages use (``typeName``), when a value is unchanged (the binary
identity behind the no-op rule and ``nModified``), how a value is copied into the new document,
which path components are array indexes or array filter identifiers, and the order in which
sibling fields are applied. They live here, below the others, so that none of those modules has
to import another only for a helper.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, Final

import bson

from privata_mongo.core.failures import WriteFailed

DOLLAR_PREFIXED_FIELD_NAME: Final = 52  # ErrorCodes::DollarPrefixedFieldName


def fail(message: str, code: int) -> WriteFailed:
    """A WriteFailed to raise at the call site, so that the flow of each check stays visible."""
    return WriteFailed(message, code)


# ---- types, copies, identity ---------------------------------------------------------------


def copy_value(value: Any) -> Any:
    """A copy of ``value`` whose documents are dicts and arrays lists; scalars are shared."""
    kind = type(value)
    if kind is dict or (kind is not list and kind is not tuple and isinstance(value, Mapping)):
        return {key: copy_value(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [copy_value(item) for item in value]
    return value


def identical(a: Any, b: Any) -> bool:
    """The server's ``binaryEqualValues``: same BSON type and the same bytes.

    ``1`` and ``1.0`` differ, ``0.0`` and ``-0.0`` differ, embedded documents must have the same
    fields in the same order with identical values.
    """
    kind = type(a)
    if kind is not type(b):
        return _encoded_equal(a, b)
    if kind is str or kind is bool or a is None or kind is int:
        return bool(a == b)
    if kind is float:
        return struct.pack("<d", a) == struct.pack("<d", b)
    return _encoded_equal(a, b)


def _encoded_equal(a: Any, b: Any) -> bool:
    try:
        return bson.encode({"": a}) == bson.encode({"": b})
    except Exception:  # a value the default codec cannot encode (a native UUID …)
        return type(a) is type(b) and bool(a == b)


def array_index(part: str) -> int | None:
    """The server's ``parseUnsignedBase10Integer``: digits only (leading zeros allowed)."""
    if part and part.isascii() and part.isdigit():
        return int(part)
    return None


def _index_like(name: str) -> bool:
    """A leading ASCII digit and no zero padding: compared as a number by ``path_compare``."""
    return bool(name) and name[0] in "0123456789" and not (name[0] == "0" and len(name) > 1)


def path_compare(a: str, b: str) -> int:
    """``pathsupport::cmpPathsAndArrayIndexes``: the order update children are applied in.

    Field names compare as strings, except that two names that both look like array indexes
    (a leading digit, no zero padding) compare shorter first, so ``"9"`` precedes ``"10"``.
    """
    if _index_like(a) and _index_like(b) and len(a) != len(b):
        return -1 if len(a) < len(b) else 1
    return -1 if a < b else (1 if a > b else 0)


def is_identifier(part: str) -> bool:
    """Whether a path component is an array filter identifier: ``$[]`` or ``$[<id>]``."""
    return len(part) >= 3 and part.startswith("$[") and part.endswith("]")
