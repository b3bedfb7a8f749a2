"""Internal. The update engine's leaves: one operator on one path, each parsed once.

A leaf is what the server calls a ``ModifierNode``: ``$set``, ``$inc``, ``$push`` … on one path.
Its constructor validates the argument as the server's ``init`` does (same codes), and at apply
time it either builds the value of a field that does not exist yet (``new_value``) or computes
the new value of an existing one (``update``), returning ``NOOP`` when the server would count no
modification. This module holds the ``Leaf`` protocol and the operators on single values
(``$set``, ``$setOnInsert``, ``$unset``, ``$inc``, ``$mul``, ``$min``, ``$max``,
``$currentDate``, ``$bit``, both sides of ``$rename``); the operators on arrays are in
``_update_array_ops``. Number arithmetic follows the server's ``SafeNum`` (``_numbers``), and
equality/order come from ``values``. Messages name operators, paths and types, never a value of
the document or of the update.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any, Final

from bson.int64 import Int64
from bson.timestamp import Timestamp

from privata_mongo.core.failures import BAD_VALUE, TYPE_MISMATCH
from privata_mongo.core.mql._bson_types import date_millis, type_name
from privata_mongo.core.mql._numbers import INT32, INT64, arithmetic, number_kind, numbers_identical
from privata_mongo.core.mql._update_values import (
    copy_value,
    fail,
    identical,
    is_identifier,
)
from privata_mongo.core.mql.values import compare

__all__ = ["NOOP", "VALUE_LEAVES", "Leaf", "Placeholder", "Rename"]

NOOP: Final = object()
"""Returned by ``Leaf.update`` when the field keeps its value (the server's ``kNoOp``)."""


class Leaf:
    """One operator on one path; subclasses override ``update`` and ``new_value``."""

    __slots__ = ("op", "path")

    creates: bool = True  # the server's allowCreation()
    insert_only: bool = False  # $setOnInsert
    unsets: bool = False  # $unset: removes the field instead of replacing it
    non_viable_ok: bool = False  # allowNonViablePath(): a missing path is never an error

    def __init__(self, op: str, path: str) -> None:
        self.op = op
        self.path = path

    def new_value(self, now: datetime.datetime) -> Any:
        """The value of the field this leaf creates (``setValueForNewElement``)."""
        raise NotImplementedError

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        """The field's new value, or ``NOOP`` (``updateExistingElement``)."""
        raise NotImplementedError


class _Set(Leaf):
    __slots__ = ("value",)

    def __init__(self, op: str, path: str, value: Any) -> None:
        super().__init__(op, path)
        self.value = copy_value(value)

    def new_value(self, now: datetime.datetime) -> Any:
        return copy_value(self.value)

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        return NOOP if identical(value, self.value) else copy_value(self.value)


class _SetOnInsert(_Set):
    __slots__ = ()
    insert_only = True


class _Unset(Leaf):
    __slots__ = ()
    creates = False
    unsets = True
    non_viable_ok = True


class _Arithmetic(Leaf):
    __slots__ = ("operand",)

    def __init__(self, op: str, path: str, operand: Any) -> None:
        super().__init__(op, path)
        if number_kind(operand) is None:
            verb = "increment" if op == "$inc" else "multiply"
            raise fail(
                f"Cannot {verb} with non-numeric argument: {{{path}: <{type_name(operand)}>}}",
                TYPE_MISMATCH,
            )
        self.operand = operand

    def new_value(self, now: datetime.datetime) -> Any:
        if self.op == "$inc":
            return self.operand
        return arithmetic("$mul", self.operand, 0)

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        if number_kind(value) is None:
            field = path.rsplit(".", 1)[-1]
            raise fail(
                f"Cannot apply {self.op} to a value of non-numeric type. The field '{field}' "
                f"has non-numeric type {type_name(value)}",
                TYPE_MISMATCH,
            )
        result = arithmetic(self.op, self.operand, value)
        if result is not None and numbers_identical(result, value):
            return NOOP
        if result is None:
            raise fail(
                f"Failed to apply {self.op} operations to the current value of field '{path}'",
                BAD_VALUE,
            )
        return result


class _Compare(_Set):
    """``$min``/``$max``: a missing field is set as ``$set`` would; an existing one compared."""

    __slots__ = ()

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        order = compare(value, self.value)
        if order == 0 or (order > 0 if self.op == "$max" else order < 0):
            return NOOP
        return copy_value(self.value)


class _CurrentDate(Leaf):
    __slots__ = ("date",)

    def __init__(self, op: str, path: str, spec: Any) -> None:
        super().__init__(op, path)
        if isinstance(spec, bool):
            self.date = True
        elif isinstance(spec, Mapping):
            found = False
            for key, kind in spec.items():
                if key != "$type":
                    raise fail(f"Unrecognized $currentDate option: {key}", BAD_VALUE)
                if kind in ("date", "timestamp"):
                    self.date, found = kind == "date", True
            if not found:
                raise fail(
                    "The '$type' string field is required to be 'date' or 'timestamp': "
                    "{$currentDate: {field : {$type: 'date'}}}",
                    BAD_VALUE,
                )
        else:
            raise fail(
                f"{type_name(spec)} is not valid type for $currentDate. Please use a boolean "
                "('true') or a $type expression ({$type: 'timestamp/date'}).",
                BAD_VALUE,
            )

    def new_value(self, now: datetime.datetime) -> Any:
        if self.date:  # BSON dates hold milliseconds
            return now.replace(microsecond=now.microsecond // 1000 * 1000)
        return Timestamp(date_millis(now) // 1000, 1)

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        return self.new_value(now)


class _Bit(Leaf):
    __slots__ = ("ops",)

    def __init__(self, op: str, path: str, spec: Any) -> None:
        super().__init__(op, path)
        if not isinstance(spec, Mapping):
            raise fail(
                f"The $bit modifier is not compatible with a {type_name(spec)}. You must pass "
                "in an embedded document: {$bit: {field: {and/or/xor: #}}",
                BAD_VALUE,
            )
        self.ops: list[tuple[str, Any]] = []
        for name, operand in spec.items():
            if name not in ("and", "or", "xor"):
                raise fail(
                    f"The $bit modifier only supports 'and', 'or', and 'xor', not '{name}' "
                    "which is an unknown operator",
                    BAD_VALUE,
                )
            if number_kind(operand) not in (INT32, INT64):
                raise fail(
                    "The $bit modifier field must be an Integer(32/64 bit); a "
                    f"'{type_name(operand)}' is not supported here",
                    BAD_VALUE,
                )
            self.ops.append((name, operand))
        if not self.ops:
            raise fail(
                "You must pass in at least one bitwise operation. The format is: "
                "{$bit: {field: {and/or/xor: #}}",
                BAD_VALUE,
            )

    def _apply(self, value: Any) -> Any:
        for name, operand in self.ops:
            both32 = number_kind(value) == INT32 and number_kind(operand) == INT32
            a, b = int(value), int(operand)
            result = a & b if name == "and" else (a | b if name == "or" else a ^ b)
            value = result if both32 else Int64(result)
        return value

    def new_value(self, now: datetime.datetime) -> Any:
        return self._apply(0)

    def update(self, value: Any, path: str, now: datetime.datetime) -> Any:
        if number_kind(value) not in (INT32, INT64):
            field = path.rsplit(".", 1)[-1]
            raise fail(
                "Cannot apply $bit to a value of non-integral type. The field "
                f"{field} has non-integer type {type_name(value)}",
                BAD_VALUE,
            )
        result = self._apply(value)
        return NOOP if numbers_identical(result, value) else result


class Rename(Leaf):
    """The destination of ``$rename``; its source is found in the document when applied."""

    __slots__ = ("source",)

    def __init__(self, op: str, path: str, source: str) -> None:
        super().__init__(op, path)
        self.source = source
        if "\0" in path:
            raise fail("The 'to' field for $rename cannot contain an embedded null byte", BAD_VALUE)
        src, dst = source.split("."), path.split(".")
        if src == dst:
            raise fail("The source and target field for $rename must differ", BAD_VALUE)
        shorter = min(len(src), len(dst))
        if src[:shorter] == dst[:shorter]:
            raise fail(
                "The source and target field for $rename must not be on the same path",
                BAD_VALUE,
            )
        for side, parts, name in (("source", src, source), ("destination", dst, path)):
            if any(part == "$" or is_identifier(part) for part in parts):
                raise fail(f"The {side} field for $rename may not be dynamic: {name}", BAD_VALUE)


class Placeholder(Leaf):
    """The source of ``$rename``: only there so that other operators conflict with it."""

    __slots__ = ()
    creates = False
    non_viable_ok = True


VALUE_LEAVES: Final[dict[str, Callable[[str, str, Any], Leaf]]] = {
    "$set": _Set,
    "$setOnInsert": _SetOnInsert,
    "$unset": lambda op, path, value: _Unset(op, path),
    "$inc": _Arithmetic,
    "$mul": _Arithmetic,
    "$min": _Compare,
    "$max": _Compare,
    "$currentDate": _CurrentDate,
    "$bit": _Bit,
}
"""The single-value operators, by name, for the parser's operator table (``$rename`` aside)."""
