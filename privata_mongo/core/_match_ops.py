"""Internal. The leaf operators of the in-process matcher, each compiled once into a test.

A test takes one value the path traversal produced (possibly ``MISSING``) and answers the
server's ``matchesSingleElement`` for that operator: type bracketing for comparisons, the null
and MinKey/MaxKey exceptions, NaN rules, ``$in`` with regexes, ``$type`` codes and aliases,
``$mod`` truncation, the bit tests, and PCRE regexes translated to Python's dialect. Argument
errors are raised here with the server's codes; messages never quote a value.
"""

from __future__ import annotations

import math
import operator
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Final

from bson.code import Code
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.regex import Regex

from privata_mongo.core.failures import BAD_VALUE, FAILED_TO_PARSE, TYPE_MISMATCH, OperationFailed
from privata_mongo.core.values import (
    ARRAY_TYPES,
    BOOL,
    DATE,
    MAXKEY,
    MINKEY,
    MISSING,
    NULL,
    NUMBER,
    STRING,
    UnsupportedOperator,
    compare,
    date_millis,
    equal,
    is_nan,
    regex_flags,
    regex_pattern,
    type_rank,
)

Test = Callable[[Any], bool]

_INT64_MIN, _INT64_END = -(2**63), 2**63
_PY_OPERATORS: Final = {
    "$lt": operator.lt, "$lte": operator.le, "$eq": operator.eq, "$gte": operator.ge,
    "$gt": operator.gt,
}  # fmt: skip
_ACCEPT: Final = {"$lt": (-1,), "$lte": (-1, 0), "$eq": (0,), "$gte": (0, 1), "$gt": (1,)}


def is_number(value: Any) -> bool:
    """Whether the server would see a number (int, long, double or decimal; not a boolean)."""
    return type_rank(value) == NUMBER


def comparison(op: str, rhs: Any) -> Test:
    """``$eq $lt $lte $gt $gte``: same canonical type only, except null, MinKey and MaxKey."""
    rank = type_rank(rhs)
    below_max = rank == MAXKEY and op in ("$lt", "$lte")
    above_min = rank == MINKEY and op in ("$gt", "$gte")
    other_type = below_max or above_min
    on_missing = other_type or (rank == NULL and op in ("$eq", "$lte", "$gte"))
    accept, rhs_nan = _ACCEPT[op], is_nan(rhs)
    nan_rule = rank == NUMBER and op != "$eq"

    def generic(value: Any) -> bool:
        if value is MISSING:
            return on_missing
        if type_rank(value) != rank:
            return other_type
        if nan_rule:
            value_nan = is_nan(value)
            if value_nan or rhs_nan:
                return value_nan and rhs_nan and op in ("$lte", "$gte")
        return compare(value, rhs) in accept

    python_op, kind = _PY_OPERATORS[op], type(rhs)
    if kind in (int, float, str) and not rhs_nan:
        fast = (str,) if kind is str else (int, float)

        def fast_test(value: Any) -> bool:  # the common case: no rank lookup
            if type(value) in fast:
                return bool(python_op(value, rhs))
            return generic(value)

        return fast_test
    if rhs is None and op == "$eq":
        return lambda value: value is None or value is MISSING or generic(value)
    return generic


_NULL_KEY, _NAN_KEY, _BOOL_KEY, _DATE_KEY = object(), object(), object(), object()


def _hash_key(value: Any) -> Any:
    """A hashable stand-in equal exactly when MongoDB's equality holds, or None."""
    kind = type(value)
    if kind is str or kind is ObjectId:
        return value
    if kind is int or kind is float or kind is Int64:
        return _NAN_KEY if value != value else value
    if value is None:
        return _NULL_KEY
    if kind is bool:
        return (_BOOL_KEY, value)
    if kind is Decimal128:
        number = value.to_decimal()
        return _NAN_KEY if number.is_nan() else number
    if type_rank(value) == DATE:
        return (_DATE_KEY, date_millis(value))
    return None


def membership(items: Sequence[Any], regexes: Sequence[Test]) -> Test:
    """``$in``: equal to one item, or matched by one regex; a null item also matches missing."""
    has_null = any(item is None for item in items)
    keys: set[Any] = set()
    others: list[Any] = []
    for item in items:
        key = _hash_key(item)
        if key is None:
            others.append(item)
        else:
            keys.add(key)

    def test(value: Any) -> bool:
        if value is MISSING:
            return has_null
        key = _hash_key(value)
        if key is not None:
            if key in keys:
                return True
        elif any(equal(value, other) for other in others):
            return True
        return any(regex(value) for regex in regexes)

    return test


# ---- regular expressions -------------------------------------------------------------------

_REGEX_FLAG_BITS: Final = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}
# fmt: off
_OUTSIDE: Final = {  # escapes outside a character class
    "d": r"(?a:\d)", "D": r"(?a:\D)", "w": r"(?a:\w)", "W": r"(?a:\W)", "s": r"(?a:\s)",
    "S": r"(?a:\S)", "b": r"(?a:\b)", "B": r"(?a:\B)", "z": r"\Z", "Z": r"(?=\n?\Z)",
    "e": r"\x1b", "N": r"[^\n]", "E": "",
    "h": r"[\t \xa0\u1680\u180e\u2000-\u200a\u202f\u205f\u3000]",
    "H": r"[^\t \xa0\u1680\u180e\u2000-\u200a\u202f\u205f\u3000]",
    "v": r"[\n\x0b\f\r\x85\u2028\u2029]", "V": r"[^\n\x0b\f\r\x85\u2028\u2029]",
    "R": r"(?:\r\n|[\n\x0b\f\r\x85\u2028\u2029])",
}
_INSIDE: Final = {  # escapes inside a character class
    "d": "0-9", "w": "A-Za-z0-9_", "s": r"\t\n\x0b\f\r ", "e": r"\x1b",
    "h": r"\t \xa0\u1680\u180e\u2000-\u200a\u202f\u205f\u3000", "v": r"\n\x0b\f\r\x85\u2028\u2029",
}
_POSIX: Final = {
    "alpha": "A-Za-z", "digit": "0-9", "alnum": "A-Za-z0-9", "upper": "A-Z", "lower": "a-z",
    "space": r"\t\n\x0b\f\r ", "blank": r" \t", "xdigit": "0-9A-Fa-f", "word": "A-Za-z0-9_",
    "cntrl": r"\x00-\x1f\x7f", "print": r"\x20-\x7e", "graph": r"\x21-\x7e",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
}
# fmt: on
# Constructs PCRE accepts and Python's re rejects: a compile failure with one of them means
# "cannot evaluate here", not "the server would reject this pattern".
_PCRE_ONLY = re.compile(
    r"\(\?[<'][A-Za-z_]|\(\?<[=!]|\(\?[|>R&+\-0-9(]|\(\*|\(\?[A-Za-z^-]+[):]"
    r"|\\[pPXCKGgko]|[*+?}]\+"
)  # fmt: skip
_INLINE_EXTENDED = re.compile(r"\(\?[a-zA-Z]*x[a-zA-Z]*\)")
_UNSUPPORTED_ESCAPES: Final = frozenset("pPXCKGgo")
_INVALID_ESCAPES: Final = frozenset("uULlF")


class _NotPortable(Exception):
    """A PCRE construct with no faithful Python translation."""


class _Translator:
    """Rewrites a PCRE pattern (compiled by the server with UTF but not UCP) for Python's re."""

    def __init__(self, pattern: str, extended: bool) -> None:
        self.pattern, self.extended = pattern, extended
        self.out: list[str] = []
        self.i = 0

    def run(self) -> str:
        p, n = self.pattern, len(self.pattern)
        while self.i < n:
            c = p[self.i]
            if c == "\\":
                self._escape(inside=False)
            elif c == "[":
                self._char_class()
            elif c == "#" and self.extended:
                end = p.find("\n", self.i)
                end = n if end < 0 else end
                self.out.append(p[self.i : end])
                self.i = end
            elif p.startswith("(?<", self.i) and p[self.i + 3 : self.i + 4] not in ("=", "!"):
                self.out.append("(?P<")
                self.i += 3
            elif p.startswith("(?'", self.i):
                end = p.find("'", self.i + 3)
                if end < 0:
                    raise _NotPortable
                self.out.append(f"(?P<{p[self.i + 3 : end]}>")
                self.i = end + 1
            else:
                self.out.append(c)
                self.i += 1
        return "".join(self.out)

    def _escape(self, inside: bool) -> None:
        p = self.pattern
        if self.i + 1 >= len(p):
            raise re.error("trailing backslash")
        d = p[self.i + 1]
        self.i += 2
        table = _INSIDE if inside else _OUTSIDE
        if d in table:
            self.out.append(table[d])
        elif d in "DWSHV" and inside:
            raise _NotPortable
        elif d == "Q":
            end = p.find("\\E", self.i)
            end = len(p) if end < 0 else end
            self.out.append(re.escape(p[self.i : end]))
            self.i = min(end + 2, len(p))
        elif d == "x" and p.startswith("{", self.i):
            end = p.find("}", self.i)
            if end < 0:
                raise re.error("bad \\x{…} escape")
            self.out.append(re.escape(chr(int(p[self.i + 1 : end], 16))))
            self.i = end + 1
        elif d == "c" and self.i < len(p):
            self.out.append(re.escape(chr(ord(p[self.i].upper()) ^ 0x40)))
            self.i += 1
        elif d == "k" and p[self.i : self.i + 1] in ("<", "{", "'"):
            close = {"<": ">", "{": "}", "'": "'"}[p[self.i]]
            end = p.find(close, self.i + 1)
            if end < 0:
                raise re.error("bad \\k escape")
            self.out.append(f"(?P={p[self.i + 1 : end]})")
            self.i = end + 1
        elif d in _UNSUPPORTED_ESCAPES:
            raise _NotPortable
        elif d in _INVALID_ESCAPES:
            raise re.error("PCRE does not support this escape")
        else:
            self.out.append("\\" + d)

    def _char_class(self) -> None:
        p, n = self.pattern, len(self.pattern)
        self.out.append("[")
        self.i += 1
        if p.startswith("^", self.i):
            self.out.append("^")
            self.i += 1
        if p.startswith("]", self.i):
            self.out.append(r"\]")
            self.i += 1
        previous = ""
        while self.i < n:
            c = p[self.i]
            if c == "]":
                self.out.append("]")
                self.i += 1
                return
            if c == "\\":
                self._escape(inside=True)
                previous = ""
                continue
            if c == "[" and p.startswith("[:", self.i):
                end = p.find(":]", self.i + 2)
                name = p[self.i + 2 : end] if end > 0 else ""
                if name not in _POSIX:
                    raise _NotPortable
                self.out.append(_POSIX[name])
                self.i = end + 2
                previous = ""
                continue
            if c in "[&~|" or (c == "-" and previous == "-"):
                self.out.append("\\" + c)
            else:
                self.out.append(c)
            previous = c
            self.i += 1
        raise re.error("missing ]")


def compile_regex(pattern: str, options: str) -> re.Pattern[str]:
    """Compile a server regex (PCRE, options ``imsux``) into an equivalent Python pattern.

    Raises:
        OperationFailed: an invalid option (51108), an embedded NUL (2) or an invalid pattern
            (51091), as the server reports them.
        UnsupportedOperator: a valid PCRE construct Python cannot express faithfully.
    """
    bits = 0
    for letter in options:
        if letter not in _REGEX_FLAG_BITS and letter != "u":
            raise OperationFailed(f"$regex invalid flag in regex options: {letter}", 51108)
        bits |= _REGEX_FLAG_BITS.get(letter, 0)
    if "\0" in pattern:
        raise OperationFailed("Regular expression cannot contain an embedded null byte", BAD_VALUE)
    try:
        extended = "x" in options or bool(_INLINE_EXTENDED.match(pattern))
        return re.compile(_Translator(pattern, extended).run(), bits)
    except _NotPortable:
        raise UnsupportedOperator("$regex") from None
    except (re.error, ValueError, OverflowError):
        if _PCRE_ONLY.search(pattern):
            raise UnsupportedOperator("$regex") from None
        raise OperationFailed("Regular expression is invalid", 51091) from None


def regex_test(pattern: str, options: str) -> Test:
    """A regex predicate: it searches strings and equals stored regexes of the same source."""
    search = compile_regex(pattern, options).search

    def test(value: Any) -> bool:
        if type(value) is str:
            return search(value) is not None
        if isinstance(value, str):
            return not isinstance(value, Code) and search(value) is not None
        if isinstance(value, (Regex, re.Pattern)):
            return regex_pattern(value) == pattern and regex_flags(value) == options
        return False

    return test


# ---- numbers: $size, $mod, bit tests, $type codes ----------------------------------------------


def parse_integer(value: Any, *, non_negative: bool = False, int32: bool = False) -> int:
    """The server's ``parseIntegerElementTo…``: an integral number, else ValueError(reason)."""
    if not is_number(value):
        raise ValueError("Expected a number")
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueError("Expected an integer, but found NaN")
        if not _INT64_MIN <= value < _INT64_END:
            raise ValueError("Cannot represent as a 64-bit integer")
        if value != int(value):
            raise ValueError("Expected an integer")
    elif isinstance(value, Decimal128):
        number = value.to_decimal()
        if not number.is_finite() or number != number.to_integral_value():
            raise ValueError("Cannot represent as a 64-bit integer")
        if not _INT64_MIN <= number < _INT64_END:
            raise ValueError("Cannot represent as a 64-bit integer")
    result = int(plain(value))
    if non_negative and result < 0:
        raise ValueError("Expected a positive number")
    if int32 and not -(2**31) <= result < 2**31:
        raise ValueError("Cannot represent the number in an int")
    return result


def plain(value: Any) -> Any:
    """A Decimal128 as ``decimal.Decimal``; other numbers unchanged."""
    return value.to_decimal() if isinstance(value, Decimal128) else value


def _truncated(value: Any) -> int | None:
    """A number truncated toward zero, or None when not finite or outside 64 bits."""
    number = plain(value)
    if isinstance(number, int):
        return number
    if number != number or number in (math.inf, -math.inf):
        return None
    truncated = int(number)
    return truncated if _INT64_MIN <= truncated < _INT64_END else None


def mod_test(argument: Any) -> Test:
    """``$mod: [divisor, remainder]``: C-style remainder of the truncated value."""
    if not isinstance(argument, ARRAY_TYPES):
        raise OperationFailed("malformed mod, needs to be an array", BAD_VALUE)
    names = ("divisor", "remainder")
    for position, name in enumerate(names):
        if len(argument) <= position:
            raise OperationFailed("malformed mod, not enough elements", BAD_VALUE)
        if not is_number(argument[position]):
            raise OperationFailed(f"malformed mod, {name} not a number", BAD_VALUE)
    if len(argument) > 2:
        raise OperationFailed("malformed mod, too many elements", BAD_VALUE)
    coerced: list[int] = []
    for name, value in zip(names, argument, strict=True):
        if is_nan(value) or plain(value) in (math.inf, -math.inf):
            reason = "Unable to coerce NaN/Inf to integral type"
        elif (number := _truncated(value)) is None:
            reason = "Out of bounds coercing to integral value"
        else:
            coerced.append(number)
            continue
        raise OperationFailed(f"malformed mod, {name} value is invalid :: caused by :: {reason}", 2)
    divisor, remainder = coerced
    if divisor == 0:
        raise OperationFailed("divisor cannot be 0", BAD_VALUE)

    def test(value: Any) -> bool:
        if not is_number(value):
            return False
        dividend = _truncated(value)
        if dividend is None:
            return False
        if divisor == -1:
            return remainder == 0
        rest = abs(dividend) % abs(divisor)
        return (-rest if dividend < 0 else rest) == remainder

    return test


def size_test(argument: Any) -> Test:
    """``$size``: an array of exactly that many elements."""
    try:
        size = parse_integer(argument, non_negative=True, int32=True)
    except ValueError as reason:
        raise OperationFailed(f"Failed to parse $size. {reason}", BAD_VALUE) from None
    return lambda value: isinstance(value, ARRAY_TYPES) and len(value) == size


def _bit_position(item: Any) -> int:
    try:
        return parse_integer(item, non_negative=True, int32=True)
    except ValueError as reason:
        raise OperationFailed(f"Failed to parse bit position. {reason}", BAD_VALUE) from None


def bits_test(op: str, argument: Any) -> Test:
    """``$bitsAllSet $bitsAllClear $bitsAnySet $bitsAnyClear`` over integers and binary data."""
    positions: list[int] = []
    if isinstance(argument, ARRAY_TYPES):
        positions = [_bit_position(item) for item in argument]
        mask = sum({1 << min(position, 63) for position in positions})
    elif is_number(argument):
        try:
            mask = parse_integer(argument, non_negative=True)
        except ValueError as reason:
            raise OperationFailed(str(reason), FAILED_TO_PARSE) from None
        positions = [bit for bit in range(64) if mask >> bit & 1]
    elif isinstance(argument, (bytes, uuid.UUID)):
        data = argument.bytes if isinstance(argument, uuid.UUID) else bytes(argument)
        mask = 0
        for index, byte in enumerate(data):
            if byte and index < 8:  # the server widens a signed char: high bytes sign-extend
                mask |= ((byte - 256 if byte > 127 else byte) << 8 * index) % 2**64
            elif byte:
                mask |= 1 << 63
            positions.extend(8 * index + bit for bit in range(8) if byte >> bit & 1)
    else:
        message = f"{op} takes an Array, a number, or a BinData but received another type"
        raise OperationFailed(message, BAD_VALUE)
    want_set, want_all = op in ("$bitsAllSet", "$bitsAnySet"), op.startswith("$bitsAll")

    def on_number(number: int) -> bool:
        bits = number & mask if want_set else ~number & mask
        return bits == mask if want_all else bits != 0

    def test(value: Any) -> bool:
        if isinstance(value, (bytes, uuid.UUID)):
            data = value.bytes if isinstance(value, uuid.UUID) else bytes(value)
            found = [len(data) * 8 > p and bool(data[p // 8] >> p % 8 & 1) for p in positions]
            hits = [bit == want_set for bit in found]
            return all(hits) if want_all else any(hits)
        if not is_number(value) or is_nan(value):
            return False
        if isinstance(value, float) and not (
            _INT64_MIN <= value < _INT64_END and value == int(value)
        ):
            return False
        number = _truncated(value)
        return number is not None and on_number(number)

    return test


TYPE_ALIASES: Final = {
    "double": 1, "string": 2, "object": 3, "array": 4, "binData": 5, "undefined": 6,
    "objectId": 7, "bool": 8, "date": 9, "null": 10, "regex": 11, "dbPointer": 12,
    "javascript": 13, "symbol": 14, "javascriptWithScope": 15, "int": 16, "timestamp": 17,
    "long": 18, "decimal": 19, "minKey": -1, "maxKey": 127,
}  # fmt: skip
_NUMERIC_CODES: Final = frozenset({1, 16, 18, 19})
_CODE_BY_RANK: Final = {
    NULL: 10, STRING: 2, 20: 3, 25: 4, 30: 5, 35: 7, BOOL: 8, DATE: 9, 47: 17, 50: 11,
    60: 13, 65: 15, MINKEY: -1, MAXKEY: 127,
}  # fmt: skip


def type_code(value: Any) -> int:
    """The BSON type number the driver would encode ``value`` as (``$type``'s codes)."""
    rank = type_rank(value)
    if rank != NUMBER:
        return _CODE_BY_RANK[rank]
    if isinstance(value, float):
        return 1
    if isinstance(value, Int64):
        return 18
    if isinstance(value, int):
        return 16 if -(2**31) <= value < 2**31 else 18
    return 19


def type_test(path: str, argument: Any) -> Test:
    """``$type``: a type code, an alias, ``"number"``, or an array of them."""
    codes: set[int] = set()
    for item in argument if isinstance(argument, ARRAY_TYPES) else (argument,):
        if isinstance(item, str):
            if item == "number":
                codes |= _NUMERIC_CODES
            elif item in TYPE_ALIASES:
                codes.add(TYPE_ALIASES[item])
            elif item == "missing":
                raise OperationFailed(
                    "'missing' is not a legal type name. To query for non-existence of a "
                    "field, use {$exists:false}.",
                    BAD_VALUE,
                )
            else:
                raise OperationFailed("Unknown type name alias", BAD_VALUE)
        elif is_number(item):
            try:
                code = parse_integer(item, int32=True)
            except ValueError:
                raise OperationFailed("Invalid numerical type code", BAD_VALUE) from None
            if code == 0:
                raise OperationFailed(
                    "Invalid numerical type code: 0. Instead use {$exists:false}.", BAD_VALUE
                )
            if code not in TYPE_ALIASES.values():
                raise OperationFailed("Invalid numerical type code", BAD_VALUE)
            codes.add(code)
        else:
            raise OperationFailed("type must be represented as a number or a string", TYPE_MISMATCH)
    if not codes:
        raise OperationFailed(f"{path} must match at least one type", FAILED_TO_PARSE)
    frozen = frozenset(codes)
    return lambda value: value is not MISSING and type_code(value) in frozen
