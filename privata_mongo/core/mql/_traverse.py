"""Internal. How the server walks a dotted path through embedded documents and arrays.

Two walks reach the values at a path, and they differ: the matcher's (``BSONElementIterator``,
``matcher/path.cpp``), which searches every array it meets and records the array index the
positional ``$`` of an update uses, and the index key generator's (``BtreeKeyGenerator``),
which the sort uses to order documents as a multikey index over the sort pattern would. Both
live here, apart from the value order in ``values``, because neither compares values: they only
decide which values are compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from privata_mongo.core.failures import BAD_VALUE, OperationFailed
from privata_mongo.core.mql._bson_types import ARRAY_TYPES, EMPTY_ARRAY_KEY, MISSING, as_object


def collect(
    document: Mapping[str, Any],
    parts: Sequence[str],
    traverse_leaf: bool,
    values: list[Any],
    offsets: list[int | None] | None = None,
) -> None:
    """Append every value the query engine considers at the dotted path ``parts``.

    This is the server's ``BSONElementIterator``: arrays met before the last component are
    traversed (their embedded documents are searched, other elements skipped, a numeric
    component also indexes the array); ``MISSING`` is yielded where a document lacks the path;
    an array at the end of the path yields its elements then itself (``traverse_leaf``) or only
    itself. ``offsets`` receives, for each value, the index in the outermost array traversed to
    reach it (None when no array was traversed): the positional ``$`` of an update.
    """
    _Walk(parts, traverse_leaf, values, offsets).document(document, 0, None)


def array_index(piece: str) -> int:
    """A path component as an array index: canonical digits (no leading zero), else -1."""
    if piece.isascii() and piece.isdigit() and (piece == "0" or piece[0] != "0"):
        return int(piece)
    return -1


class _Walk:
    __slots__ = ("leaf", "offsets", "parts", "values")

    def __init__(
        self, parts: Sequence[str], leaf: bool, values: list[Any], offsets: list[int | None] | None
    ) -> None:
        self.parts, self.leaf, self.values, self.offsets = parts, leaf, values, offsets

    def emit(self, value: Any, offset: int | None) -> None:
        self.values.append(value)
        if self.offsets is not None:
            self.offsets.append(offset)

    def document(self, document: Mapping[str, Any], start: int, outer: int | None) -> None:
        parts, last = self.parts, len(self.parts) - 1
        current, i = document, start
        while True:
            value = current.get(parts[i], MISSING)
            if isinstance(value, ARRAY_TYPES):
                break
            sub = as_object(value) if i < last and value is not MISSING else None
            if sub is None:
                self.emit(value if i == last else MISSING, outer)
                return
            current, i = sub, i + 1
        self.array(value, i + 1, outer)

    def array(self, array: Sequence[Any], k: int, outer: int | None) -> None:
        if k == len(self.parts):
            if self.leaf:
                for j, element in enumerate(array):
                    self.emit(element, j if outer is None else outer)
            self.emit(array, outer)
            return
        index, more = array_index(self.parts[k]), k + 1 < len(self.parts)
        for j, element in enumerate(array):
            sub = as_object(element)
            if sub is not None:
                self.document(sub, k, j if outer is None else outer)
            if j != index:
                continue
            if not more:
                self.emit(element, outer)
            elif sub is not None:
                self.document(sub, k + 1, outer)
            elif isinstance(element, ARRAY_TYPES):
                self.array(element, k + 1, outer)


def lookup(document: Mapping[str, Any], path: str) -> list[Any]:
    """Every value reachable at a dotted path, as the query engine reaches them.

    Arrays along the path are traversed (``a.b`` over ``a: [{b: 1}, {b: [2, 3]}]`` gives
    ``[1, 2, 3, [2, 3]]``); a numeric component also indexes an array; an array at the end of
    the path contributes its elements and then itself. Places where the path does not exist
    contribute nothing, so the result is ``[]`` when nothing is reachable.
    """
    values: list[Any] = []
    collect(document, path.split("."), True, values)
    return [value for value in values if value is not MISSING]


def index_keys(document: Mapping[str, Any], paths: Sequence[tuple[str, ...]]) -> list[list[Any]]:
    """The keys a multikey index over ``paths`` holds for ``document`` (``BtreeKeyGenerator``)."""
    fixed: list[Any] = [None] * len(paths)
    arrays: dict[tuple[str, ...], tuple[Sequence[Any], list[tuple[int, tuple[str, ...]]]]] = {}
    for field, parts in enumerate(paths):
        value: Any = document
        i = 0
        while i < len(parts):
            if isinstance(value, ARRAY_TYPES):
                index = array_index(parts[i])
                if index < 0:
                    arrays.setdefault(parts[:i], (value, []))[1].append((field, parts[i:]))
                    value = MISSING
                    break
                value = value[index] if index < len(value) else MISSING
            else:
                sub = as_object(value)
                value = MISSING if sub is None else sub.get(parts[i], MISSING)
            if value is MISSING:
                break
            i += 1
        if isinstance(value, ARRAY_TYPES):
            arrays.setdefault(parts, (value, []))[1].append((field, ()))
        elif value is not MISSING:
            fixed[field] = value
    if not arrays:
        return [fixed]
    if len(arrays) > 1:
        raise OperationFailed("cannot sort with keys that are parallel arrays", BAD_VALUE)
    ((array, members),) = arrays.values()
    keys: list[list[Any]] = []
    for element in array or (EMPTY_ARRAY_KEY,):
        key = list(fixed)
        deeper = [(field, rest) for field, rest in members if rest]
        for field, rest in members:
            if not rest:
                key[field] = element
        if not deeper:
            keys.append(key)
            continue
        sub = as_object(element) or {}
        for sub_key in index_keys(sub, [rest for _, rest in deeper]):
            combined = list(key)
            for (field, _), value in zip(deeper, sub_key, strict=True):
                combined[field] = value
            keys.append(combined)
    return keys
