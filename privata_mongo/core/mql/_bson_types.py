"""Internal. Which BSON type a Python value is, and where that type stands in MongoDB's order.

Everything that evaluates MongoDB semantics in the process (the value order and sort in
``values``, path traversal in ``_traverse``, the matcher, the update engine) first has to ask
what the server would see: the canonical type of a value (``canonicalizeBSONType``), whether
it is a NaN, an embedded document, a date in milliseconds or a regex with its option letters,
and the type's name as the server's error messages and ``$type`` spell it (``type_name``).
Those answers live here, below every other module, so that the order, the traversal and the
number helpers can share them without importing one another. ``MISSING`` lives here for the
same reason; ``values`` re-exports it as public API.
"""

from __future__ import annotations

import calendar
import datetime
import decimal
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final

from bson.binary import Binary
from bson.code import Code
from bson.datetime_ms import DatetimeMS
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.son import SON
from bson.timestamp import Timestamp


class _Sentinel:
    """A named singleton: falsy, and the same object after copy or pickle."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return self._name


MISSING: Final = _Sentinel("MISSING")
"""No value at this path: distinct from ``None`` (null), which is a value."""
EMPTY_ARRAY_KEY: Final = _Sentinel("EMPTY_ARRAY_KEY")
"""The sort key of an empty array: the server's ``undefined``, below null."""

# canonicalizeBSONType() in bsontypes.h; missing/undefined is 0 and ranks with null in sort.
MINKEY, UNDEFINED, NULL, NUMBER, STRING, OBJECT, ARRAY = -1, 0, 5, 10, 15, 20, 25
BINDATA, OBJECTID, BOOL, DATE, TIMESTAMP, REGEX, CODE, CODE_WS, MAXKEY = (
    30, 35, 40, 45, 47, 50, 60, 65, 127,
)  # fmt: skip

ARRAY_TYPES: Final = (list, tuple)

_RANK_BY_TYPE: Final[dict[type, int]] = {
    kind: rank
    for rank, kinds in (
        (NULL, (type(None),)), (BOOL, (bool,)), (STRING, (str,)), (OBJECT, (dict, SON, DBRef)),
        (NUMBER, (int, float, Int64, Decimal128, decimal.Decimal)), (ARRAY, (list, tuple)),
        (BINDATA, (bytes, Binary, uuid.UUID)), (OBJECTID, (ObjectId,)), (TIMESTAMP, (Timestamp,)),
        (DATE, (datetime.datetime, DatetimeMS)), (REGEX, (Regex, re.Pattern)),
        (MINKEY, (MinKey,)), (MAXKEY, (MaxKey,)),
    )
    for kind in kinds
}  # fmt: skip


def type_rank(value: Any) -> int:
    """The canonical BSON type of ``value``: its place in MongoDB's comparison/sort order.

    MinKey < null < numbers < strings < objects < arrays < binary < ObjectId < booleans < dates
    < timestamps < regexes < code < MaxKey. Every numeric type shares one rank; ``MISSING``
    ranks as null, as it does in a sort.

    Raises:
        TypeError: for a Python type that has no BSON representation.
    """
    rank = _RANK_BY_TYPE.get(type(value))
    if rank is not None:
        return rank
    if value is MISSING:
        return NULL
    if value is EMPTY_ARRAY_KEY:
        return UNDEFINED
    if isinstance(value, Code):  # a str subclass: test it first
        return CODE if value.scope is None else CODE_WS
    for kind, kind_rank in _RANK_BY_TYPE.items():
        if isinstance(value, kind):
            return kind_rank
    if isinstance(value, Mapping):
        return OBJECT
    raise TypeError(f"values of type {type(value).__name__} have no BSON order")


def is_nan(value: Any) -> bool:
    """Whether ``value`` is a double or decimal NaN (the server's NaN, lowest of all numbers)."""
    if isinstance(value, float):
        return value != value
    if isinstance(value, Decimal128):
        return value.to_decimal().is_nan()
    return isinstance(value, decimal.Decimal) and value.is_nan()


def as_object(value: Any) -> Mapping[str, Any] | None:
    """``value`` as an embedded document, or None when it is not one (a DBRef is one)."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, DBRef):
        return value.as_doc()
    return None


def date_millis(value: datetime.datetime | DatetimeMS) -> int:
    """Milliseconds since the epoch, truncated as the driver encodes them (naive means UTC)."""
    if isinstance(value, DatetimeMS):
        return int(value)
    offset = value.utcoffset()
    if offset is not None:
        value = value - offset
    return calendar.timegm(value.timetuple()) * 1000 + value.microsecond // 1000


def regex_flags(value: Regex[Any] | re.Pattern[Any]) -> str:
    """The option letters the driver sends for a Python or BSON regex, in the driver's order."""
    flags = value.flags
    letters = (
        (re.IGNORECASE, "i"),
        (re.LOCALE, "l"),
        (re.MULTILINE, "m"),
        (re.DOTALL, "s"),
        (re.UNICODE, "u"),
        (re.VERBOSE, "x"),
    )
    return "".join(letter for bit, letter in letters if flags & bit)


def regex_pattern(value: Regex[Any] | re.Pattern[Any]) -> str:
    """The pattern text of a Python or BSON regex."""
    pattern = value.pattern
    return pattern.decode("utf-8") if isinstance(pattern, bytes) else str(pattern)


def as_sent(value: Any) -> Any:
    """What BSON puts on the wire for a subclass of ``int``, ``float`` or ``str``: its base value.

    Applications pass such subclasses where the driver expects plain values, and the driver's
    encoder reduces them: Beanie sorts by ``ExpressionField`` keys (a ``str`` whose ``==`` builds
    a query) with ``SortDirection`` directions (an ``int`` enum). Whatever is evaluated in the
    process must see what the server would. ``bool`` and ``Int64`` are BSON types of their own
    and stay as they are.
    """
    kind = type(value)
    if kind in (int, float, str, bool, Int64):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int) and not isinstance(value, (bool, Int64)):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    return value


def sort_pairs(key_or_list: Any, direction: Any = None) -> list[tuple[str, Any]]:
    """The arguments of ``sort``/``create_index`` as the ``(key, direction)`` pairs pymongo sends.

    Every form pymongo accepts (a key, a key and a direction, a list of keys or pairs, a mapping),
    with keys and directions reduced as BSON reduces them (``as_sent``).
    """
    if direction is not None:
        if not isinstance(key_or_list, str):
            raise TypeError("Expected a string and a direction")
        return [(as_sent(key_or_list), as_sent(direction))]
    if isinstance(key_or_list, str):
        return [(as_sent(key_or_list), 1)]
    items: Iterable[Any]
    if isinstance(key_or_list, Mapping):
        items = key_or_list.items()
    elif isinstance(key_or_list, (list, tuple)):
        items = key_or_list
    else:
        raise TypeError("if no direction is specified, key_or_list must be an instance of list")
    pairs: list[tuple[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            pairs.append((as_sent(item), 1))
        else:
            key, value = item
            pairs.append((as_sent(key), as_sent(value)))
    return pairs


_TYPE_NAMES: Final[dict[type, str]] = {
    float: "double",
    str: "string",
    dict: "object",
    list: "array",
    tuple: "array",
    Binary: "binData",
    bytes: "binData",
    uuid.UUID: "binData",
    ObjectId: "objectId",
    bool: "bool",
    datetime.datetime: "date",
    DatetimeMS: "date",
    type(None): "null",
    Regex: "regex",
    re.Pattern: "regex",
    Timestamp: "timestamp",
    Int64: "long",
    Decimal128: "decimal",
    decimal.Decimal: "decimal",
    MinKey: "minKey",
    MaxKey: "maxKey",
    DBRef: "object",
}


def type_name(value: Any) -> str:
    """The server's ``typeName`` of a value (``missing`` for MISSING), as ``$type`` returns it."""
    if value is MISSING:
        return "missing"
    kind = type(value)
    if kind is int:
        return "int" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, Code):
        return "javascript" if value.scope is None else "javascriptWithScope"
    name = _TYPE_NAMES.get(kind)
    if name is not None:
        return name
    for base, base_name in _TYPE_NAMES.items():
        if isinstance(value, base):
            return base_name
    if isinstance(value, Mapping):
        return "object"
    return "unknown"
