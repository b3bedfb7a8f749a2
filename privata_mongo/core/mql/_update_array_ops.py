"""Internal. The update engine's leaves on arrays: ``$push``, ``$addToSet``, ``$pop``, ``$pull``.

They follow the ``Leaf`` protocol of ``_update_ops`` (validate once in the constructor, then
``new_value``/``update`` returning ``NOOP`` for no modification) and are kept apart from the
single-value operators because they carry most of the weight: ``$push`` with its ``$each``,
``$position``, ``$sort`` and ``$slice`` clauses (``performPush``), the set semantics of
``$addToSet`` under MongoDB equality, and the condition of ``$pull``, which is a filter compiled
by the matcher. Messages name operators, paths and types, never a value of the document or of
the update.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from privata_mongo.core.failures import (
    BAD_VALUE,
    FAILED_TO_PARSE,
    TYPE_MISMATCH,
    OperationFailed,
    WriteFailed,
)
from privata_mongo.core.mql._bson_types import type_name
from privata_mongo.core.mql._numbers import number_kind, parse_long
from privata_mongo.core.mql._update_ops import NOOP, Leaf
from privata_mongo.core.mql._update_values import array_index, copy_value, fail
from privata_mongo.core.mql.match import Matcher, compile_filter
from privata_mongo.core.mql.values import compare, equal

__all__ = ["ARRAY_LEAVES"]


class _Push(Leaf):
    __slots__ = ("items", "position", "slice", "sort")

    def __init__(self, op: str, path: str, spec: Any) -> None:
        super().__init__(op, path)
        self.position: int | None = None
        self.slice: int | None = None
        self.sort: Callable[[list[Any]], list[Any]] | None = None
        if not (isinstance(spec, Mapping) and "$each" in spec):
            self.items = [copy_value(spec)]
            return
        for clause in spec:
            if clause not in ("$each", "$slice", "$sort", "$position"):
                raise fail(f"Unrecognized clause in $push: {clause}", BAD_VALUE)
        each = spec["$each"]
        if not isinstance(each, (list, tuple)):
            raise fail(
                "The argument to $each in $push must be an array but it was of type: "
                + type_name(each),
                BAD_VALUE,
            )
        self.items = [copy_value(item) for item in each]
        if "$slice" in spec:
            self.slice = self._integer(spec["$slice"], "$slice", " but was given type")
        if "$sort" in spec:
            self.sort = _sorter(spec["$sort"])
        if "$position" in spec:
            self.position = self._integer(spec["$position"], "$position", ", not of type")

    @staticmethod
    def _integer(value: Any, clause: str, wording: str) -> int:
        try:
            return parse_long(value, clause)
        except WriteFailed:
            raise fail(
                f"The value for {clause} must be an integer value{wording}: " + type_name(value),
                BAD_VALUE,
            ) from None

    def new_value(self, now: datetime.datetime) -> Any:
        result = self._push([])
        return result[0] if result is not NOOP else []

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        if type(value) is not list:
            raise fail(
                f"The field '{path}' must be an array but is of type {type_name(value)}",
                BAD_VALUE,
            )
        result = self._push(value)
        return NOOP if result is NOOP else result[0]

    def _push(self, array: list[Any]) -> Any:
        """``performPush``: insert, sort, slice; NOOP when the array is left as it was."""
        changed = bool(self.items)
        array = list(array)
        if self.items:
            size, position = len(array), self.position
            if position is None or size == 0 or position > size:
                at = size
            elif position > 0:
                at = position
            elif position < 0 and -position < size:
                at = size + position
            else:
                at = 0
            array[at:at] = [copy_value(item) for item in self.items]
        if self.sort is not None:
            changed = True
            array = self.sort(array)
        if self.slice is not None and len(array) > abs(self.slice):
            changed = True
            keep = abs(self.slice)
            array = array[:keep] if self.slice >= 0 else array[len(array) - keep :]
        return (array,) if changed else NOOP


def _sorter(spec: Any) -> Callable[[list[Any]], list[Any]]:
    """The ``$sort`` of ``$push``: the whole element (1/-1) or fields of embedded documents."""
    if number_kind(spec) is not None:
        if spec not in (1, -1):
            raise fail("The $sort element value must be either 1 or -1", BAD_VALUE)
        reverse = spec < 0
        key = functools.cmp_to_key(compare)
        return lambda array: sorted(array, key=key, reverse=reverse)
    if not isinstance(spec, Mapping):
        raise fail(
            "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort "
            "embedded fields",
            BAD_VALUE,
        )
    if not spec:
        raise fail("The $sort pattern is empty when it should be a set of fields.", BAD_VALUE)
    fields: list[tuple[list[str], int]] = []
    for field, direction in spec.items():
        if number_kind(direction) is None or direction not in (1, -1):
            raise fail("The $sort element value must be either 1 or -1", BAD_VALUE)
        if field == "":
            raise fail("The $sort field cannot be empty", BAD_VALUE)
        if "" in field.split("."):
            raise fail(
                f"The $sort field is a dotted field but has an empty part: {field}", BAD_VALUE
            )
        fields.append((field.split("."), -1 if direction < 0 else 1))

    def sort_key(element: Any) -> list[Any]:
        document = element if type(element) is dict else {"": element}
        return [_dotted(document, parts) for parts, _ in fields]

    def ordering(a: list[Any], b: list[Any]) -> int:
        for (_, direction), x, y in zip(fields, a, b, strict=True):
            c = compare(x, y)
            if c:
                return c * direction
        return 0

    by_key = functools.cmp_to_key(ordering)
    return lambda array: sorted(array, key=lambda element: by_key(sort_key(element)))


def _dotted(document: Any, parts: Sequence[str]) -> Any:
    """``getFieldDotted`` (no array traversal, numeric parts index arrays); null if missing."""
    value = document
    for part in parts:
        if type(value) is dict:
            value = value.get(part, _ABSENT)
        elif type(value) is list:
            index = array_index(part)
            value = value[index] if index is not None and index < len(value) else _ABSENT
        else:
            value = _ABSENT
        if value is _ABSENT:
            return None
    return value


_ABSENT: Final = object()


class _AddToSet(Leaf):
    __slots__ = ("items",)

    def __init__(self, op: str, path: str, spec: Any) -> None:
        super().__init__(op, path)
        values: Sequence[Any] = [spec]
        if isinstance(spec, Mapping) and next(iter(spec), None) == "$each":
            each = spec["$each"]
            if not isinstance(each, (list, tuple)):
                raise fail(
                    "The argument to $each in $addToSet must be an array but it was of type "
                    + type_name(each),
                    TYPE_MISMATCH,
                )
            if len(spec) > 1:
                raise fail("Found unexpected fields after $each in $addToSet", BAD_VALUE)
            values = each
        self.items: list[Any] = []
        for item in values:
            if not any(equal(item, kept) for kept in self.items):
                self.items.append(copy_value(item))

    def new_value(self, now: datetime.datetime) -> Any:
        return [copy_value(item) for item in self.items]

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        if type(value) is not list:
            field = path.rsplit(".", 1)[-1]
            raise fail(
                f"Cannot apply $addToSet to non-array field. Field named '{field}' has "
                f"non-array type {type_name(value)}",
                BAD_VALUE,
            )
        added = [item for item in self.items if not any(equal(old, item) for old in value)]
        if not added:
            return NOOP
        return value + [copy_value(item) for item in added]


class _Pop(Leaf):
    __slots__ = ("front",)
    creates = False

    def __init__(self, op: str, path: str, spec: Any) -> None:
        super().__init__(op, path)
        number = parse_long(spec, path)
        if number not in (1, -1):
            raise fail(f"$pop expects 1 or -1 for the path {path}", FAILED_TO_PARSE)
        self.front = number == -1

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        if type(value) is not list:
            raise fail(
                f"Path '{path}' contains an element of non-array type '{type_name(value)}'",
                TYPE_MISMATCH,
            )
        if not value:
            return NOOP
        return value[1:] if self.front else value[:-1]


class _Cull(Leaf):
    """``$pull`` and ``$pullAll`` (the server's ``ArrayCullingNode``)."""

    __slots__ = ("test",)
    creates = False

    def __init__(self, op: str, path: str, spec: Any) -> None:
        super().__init__(op, path)
        self.test: Callable[[Any], bool]
        if op == "$pullAll":
            if not isinstance(spec, (list, tuple)):
                raise fail(
                    f"$pullAll requires an array argument but was given a {type_name(spec)}",
                    BAD_VALUE,
                )
            items = [copy_value(item) for item in spec]
            self.test = lambda element: any(equal(element, item) for item in items)
        else:
            self.test = _pull_test(spec)

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        if type(value) is not list:
            raise fail(f"Cannot apply {self.op} to a non-array value", BAD_VALUE)
        kept = [element for element in value if not self.test(element)]
        return NOOP if len(kept) == len(value) else kept


# MatchExpressionParser::parsePathAcceptingKeyword: an object starting with one of these is a
# condition on the element itself; any other object is a query on embedded documents.
_PATH_KEYWORDS: Final = frozenset(
    {"$all", "$bitsAllClear", "$bitsAllSet", "$bitsAnyClear", "$bitsAnySet", "$elemMatch"}
    | {"$eq", "$exists", "$geoIntersects", "$geoWithin", "$gt", "$gte", "$in", "$lt", "$lte"}
    | {"$maxDistance", "$minDistance", "$mod", "$ne", "$near", "$nearSphere", "$nin", "$not"}
    | {"$options", "$regex", "$size", "$type", "$within"}
)


def _pull_test(spec: Any) -> Callable[[Any], bool]:
    """The condition of ``$pull``: a query on embedded documents, a condition, or a value."""
    first = next(iter(spec), None) if isinstance(spec, Mapping) else None
    is_keyword = isinstance(first, str) and (
        first in _PATH_KEYWORDS or first.startswith("$_internal")
    )
    if isinstance(spec, Mapping) and not is_keyword:
        matcher = _compiled(spec)
        return lambda element: type(element) is dict and matcher(element)
    if isinstance(spec, Mapping) or type_name(spec) == "regex":
        wrapped = _compiled({"": spec})
        return lambda element: wrapped({"": element})
    target = copy_value(spec)
    return lambda element: equal(element, target)


def _compiled(filter: Mapping[str, Any]) -> Matcher:
    """A filter compiled by the matcher; its parse errors become write errors."""
    try:
        return compile_filter(filter)
    except OperationFailed as failure:
        raise fail(failure.message, failure.code) from None


ARRAY_LEAVES: Final[dict[str, Callable[[str, str, Any], Leaf]]] = {
    "$push": _Push,
    "$addToSet": _AddToSet,
    "$pop": _Pop,
    "$pull": _Cull,
    "$pullAll": _Cull,
}
"""The array operators, by name, for the parser's operator table."""
