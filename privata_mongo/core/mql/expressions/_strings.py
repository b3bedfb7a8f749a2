"""Internal. String aggregation operators, byte- and code-point-exact like the server's.

The server's strings are UTF-8 bytes: ``$substrBytes``/``$strLenBytes``/``$indexOfBytes``
count bytes (and refuse to cut a character in two), the ``CP`` variants count code points,
``$toLower``/``$toUpper``/``$strcasecmp`` change ASCII letters only (``boost::to_lower`` in the
C locale), and ``$trim`` strips the server's own whitespace set. Several operators coerce their
argument to a string first (``coerceToString``): null and missing become ``""``, numbers and
dates are formatted, anything else fails with 16007. ``$regexMatch`` compiles its pattern with
the matcher's PCRE translation, so a construct Python cannot express is refused, not guessed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Final

from bson.code import Code
from bson.regex import Regex
from bson.timestamp import Timestamp

from privata_mongo.core.mql._bson_types import (
    DATE,
    date_millis,
    regex_flags,
    regex_pattern,
    type_name,
    type_rank,
)
from privata_mongo.core.mql._pcre import compile_regex
from privata_mongo.core.mql.expressions._base import (
    DECIMAL,
    DOUBLE,
    Compiler,
    Expr,
    OperatorCompiler,
    Vars,
    as_decimal,
    as_long,
    fail,
    integral32,
    is_number,
    nullish,
    number_kind,
    single,
)
from privata_mongo.core.mql.expressions._calendar import format_millis

_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_WHITESPACE: Final = frozenset("\0 \t\n\x0b\x0c\r\u00a0\u1680") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)


def format_date(value: Any) -> str:
    """A date as the server's ISO format ``%Y-%m-%dT%H:%M:%S.%LZ`` (UTC)."""
    return format_millis(date_millis(value), "%Y-%m-%dT%H:%M:%S.%LZ", "$dateToString")


def _format_g(number: float) -> str:
    """``StringBuilder << double``, which is C's ``%g`` (six significant digits)."""
    if number != number:
        return "nan"
    if number in (float("inf"), float("-inf")):
        return "inf" if number > 0 else "-inf"
    return "%g" % number  # noqa: UP031 - C's %g is the format meant here


def coerce_to_string(value: Any) -> str:
    """``Value::coerceToString``: 16007 for objects, arrays, ObjectIds and booleans."""
    if nullish(value):
        return ""
    if isinstance(value, str):
        return str(value)
    kind = number_kind(value)
    if kind == DOUBLE:
        return _format_g(value)
    if kind == DECIMAL:
        return str(as_decimal(value))
    if kind is not None:
        return str(int(value))
    if type_rank(value) == DATE:
        return format_date(value)
    if isinstance(value, Timestamp):
        return f"{format_millis(value.time * 1000, '%b %d %H:%M:%S', '')}:{value.inc}"
    raise fail(f"can't convert from BSON type {type_name(value)} to String", 16007)


def _string_operand(value: Any) -> bool:
    return isinstance(value, str) and not isinstance(value, Code)


def _concat(name: str, spec: Any, compiler: Compiler) -> Expr:
    parts = compiler.arguments(name, spec, 0, None)

    def run(variables: Vars) -> Any:
        pieces = []
        for part in parts:
            value = part(variables)
            if nullish(value):
                return None
            if not _string_operand(value):
                raise fail(f"$concat only supports strings, not {type_name(value)}", 16702)
            pieces.append(str(value))
        return "".join(pieces)

    return run


def _case(table: dict[int, int]) -> OperatorCompiler:
    def compile_case(name: str, spec: Any, compiler: Compiler) -> Expr:
        argument = single(name, compiler, spec)
        return lambda variables: coerce_to_string(argument(variables)).translate(table)

    return compile_case


def _strcasecmp(name: str, spec: Any, compiler: Compiler) -> Expr:
    left, right = compiler.arguments(name, spec, 2, 2)

    def run(variables: Vars) -> int:
        a = coerce_to_string(left(variables)).translate(_UPPER)
        b = coerce_to_string(right(variables)).translate(_UPPER)
        return 0 if a == b else (1 if a > b else -1)

    return run


def _continuation(byte: int) -> bool:
    return byte & 0xC0 == 0x80


def _substr_bytes(name: str, spec: Any, compiler: Compiler) -> Expr:
    string_expr, start_expr, length_expr = compiler.arguments(name, spec, 3, 3)

    def run(variables: Vars) -> str:
        data = coerce_to_string(string_expr(variables)).encode("utf-8")
        start, length = start_expr(variables), length_expr(variables)
        if not is_number(start):
            raise fail(
                f"{name}:  starting index must be a numeric type (is BSON type {type_name(start)})",
                16034,
            )
        if not is_number(length):
            raise fail(
                f"{name}:  length must be a numeric type (is BSON type {type_name(length)})", 16035
            )
        lower = as_long(start)
        if lower < 0:
            raise fail(f"{name}:  starting index must be non-negative", 50752)
        count = as_long(length)
        count = len(data) if count < 0 else count
        if lower < len(data) and _continuation(data[lower]):
            raise fail(
                f"{name}:  Invalid range, starting index is a UTF-8 continuation byte.", 28656
            )
        if lower + count < len(data) and _continuation(data[lower + count]):
            raise fail(
                f"{name}:  Invalid range, ending index is in the middle of a UTF-8 character.",
                28657,
            )
        if lower >= len(data):
            return ""
        return data[lower : lower + count].decode("utf-8")

    return run


def _substr_cp(name: str, spec: Any, compiler: Compiler) -> Expr:
    string_expr, start_expr, length_expr = compiler.arguments(name, spec, 3, 3)

    def run(variables: Vars) -> str:
        text = coerce_to_string(string_expr(variables))
        start, length = start_expr(variables), length_expr(variables)
        for value, what, codes in (
            (start, "starting index", (34450, 34451)),
            (length, "length", (34452, 34453)),
        ):
            if not is_number(value):
                raise fail(
                    f"{name}: {what} must be a numeric type (is BSON type {type_name(value)})",
                    codes[0],
                )
            if not integral32(value):
                raise fail(
                    f"{name}: {what} cannot be represented as a 32-bit integral value", codes[1]
                )
        lower, count = as_long(start), as_long(length)
        if count < 0:
            raise fail(f"{name}: length must be a nonnegative integer.", 34454)
        if lower < 0:
            raise fail(f"{name}: the starting index must be nonnegative integer.", 34455)
        return text[lower : lower + count]

    return run


def _length(unit: str) -> OperatorCompiler:
    def compile_length(name: str, spec: Any, compiler: Compiler) -> Expr:
        argument = single(name, compiler, spec)
        code = 34471 if unit == "cp" else 34473

        def run(variables: Vars) -> int:
            value = argument(variables)
            if not _string_operand(value):
                raise fail(f"{name} requires a string argument, found: {type_name(value)}", code)
            return len(value) if unit == "cp" else len(str(value).encode("utf-8"))

        return run

    return compile_length


def _split(name: str, spec: Any, compiler: Compiler) -> Expr:
    string_expr, separator_expr = compiler.arguments(name, spec, 2, 2)

    def run(variables: Vars) -> Any:
        text, separator = string_expr(variables), separator_expr(variables)
        if nullish(text) or nullish(separator):
            return None
        if not _string_operand(text):
            raise fail(
                "$split requires an expression that evaluates to a string as a first "
                f"argument, found: {type_name(text)}",
                40085,
            )
        if not _string_operand(separator):
            raise fail(
                "$split requires an expression that evaluates to a string as a second "
                f"argument, found: {type_name(separator)}",
                40086,
            )
        if not separator:
            raise fail("$split requires a non-empty separator", 40087)
        return str(text).split(str(separator))

    return run


def _trim(name: str, spec: Any, compiler: Compiler) -> Expr:
    if not isinstance(spec, Mapping):
        raise fail(
            f"{name} only supports an object as an argument, found: {type_name(spec)}", 50696
        )
    fields: dict[str, Expr] = {}
    for key, value in spec.items():
        if key not in ("input", "chars"):
            raise fail(f"{name} found an unknown argument: {key}", 50694)
        fields[key] = compiler.compile(value)
    if "input" not in fields:
        raise fail(f"{name} requires an 'input' field", 50695)
    source, chars = fields["input"], fields.get("chars")
    left, right = name in ("$trim", "$ltrim"), name in ("$trim", "$rtrim")

    def run(variables: Vars) -> Any:
        text = source(variables)
        if nullish(text):
            return None
        if not _string_operand(text):
            raise fail(
                f"{name} requires its input to be a string, got type {type_name(text)}", 50699
            )
        strip = _WHITESPACE
        if chars is not None:
            given = chars(variables)
            if nullish(given):
                return None
            if not _string_operand(given):
                raise fail(
                    f"{name} requires 'chars' to be a string, got type {type_name(given)}", 50700
                )
            strip = frozenset(str(given))
        start, end = 0, len(text)
        while left and start < end and text[start] in strip:
            start += 1
        while right and end > start and text[end - 1] in strip:
            end -= 1
        return str(text)[start:end]

    return run


def _index_of(name: str, spec: Any, compiler: Compiler) -> Expr:
    parts = compiler.arguments(name, spec, 2, 4)
    codes = (40093, 40094) if name == "$indexOfCP" else (40091, 40092)

    def bound(variables: Vars, index: int, what: str) -> int:
        value = parts[index](variables)
        if not integral32(value):
            raise fail(
                f"{name} requires an integral {what}, found a value of type: {type_name(value)}",
                40096,
            )
        number = as_long(value)
        if number < 0:
            raise fail(f"{name} requires a nonnegative {what}", 40097)
        return number

    def run(variables: Vars) -> Any:
        text = parts[0](variables)
        if nullish(text):
            return None
        if not _string_operand(text):
            raise fail(
                f"{name} requires a string as the first argument, found: {type_name(text)}",
                codes[0],
            )
        token = parts[1](variables)
        if not _string_operand(token):
            raise fail(
                f"{name} requires a string as the second argument, found: {type_name(token)}",
                codes[1],
            )
        haystack: str | bytes = str(text) if name == "$indexOfCP" else str(text).encode()
        needle: str | bytes = str(token) if name == "$indexOfCP" else str(token).encode()
        start = bound(variables, 2, "starting index") if len(parts) > 2 else 0
        end = (
            min(len(haystack), bound(variables, 3, "ending index"))
            if len(parts) > 3
            else (len(haystack))
        )
        if name == "$indexOfCP":
            if end < start:
                return -1
            if not haystack and not needle and start == 0:
                return 0
            for position in range(start, end):
                if haystack[position : position + len(needle)] == needle:
                    return position
            return -1
        if start > len(haystack) or end < start:
            return -1
        return haystack[:end].find(needle, start)  # type: ignore[arg-type]

    return run


@functools.lru_cache(maxsize=256)
def _cached_regex(pattern: str, options: str) -> re.Pattern[str]:
    return compile_regex(pattern, options)


def _regex_match(name: str, spec: Any, compiler: Compiler) -> Expr:
    if not isinstance(spec, Mapping):
        raise fail(
            f"{name} expects an object of named arguments but found: {type_name(spec)}", 51103
        )
    fields: dict[str, Expr] = {}
    for key, value in spec.items():
        if key not in ("input", "regex", "options"):
            raise fail(f"{name} found an unknown argument: {key}", 31024)
        fields[key] = compiler.compile(value)
    if "input" not in fields:
        raise fail(f"{name} requires 'input' parameter", 31022)
    if "regex" not in fields:
        raise fail(f"{name} requires 'regex' parameter", 31023)
    source, regex, options_expr = fields["input"], fields["regex"], fields.get("options")

    def run(variables: Vars) -> bool:
        text, pattern = source(variables), regex(variables)
        options = options_expr(variables) if options_expr is not None else None
        if not nullish(options) and not _string_operand(options):
            raise fail(f"{name} needs 'options' to be of type string", 51106)
        flags = "" if nullish(options) else str(options)
        if isinstance(pattern, (Regex, re.Pattern)):
            if flags and regex_flags(pattern):
                raise fail(
                    f"{name}: found regex option(s) specified in both 'regex' and 'option' fields",
                    51107,
                )
            flags, pattern = flags or regex_flags(pattern), regex_pattern(pattern)
        elif not nullish(pattern) and not _string_operand(pattern):
            raise fail(f"{name} needs 'regex' to be of type string or regex", 51105)
        if nullish(text) or nullish(pattern):
            return False
        if not _string_operand(text):
            raise fail(f"{name} needs 'input' to be of type string", 51104)
        return _cached_regex(str(pattern), flags).search(str(text)) is not None

    return run


OPERATORS: Final[dict[str, OperatorCompiler]] = {
    "$concat": _concat,
    "$toLower": _case(_LOWER),
    "$toUpper": _case(_UPPER),
    "$strcasecmp": _strcasecmp,
    "$substr": _substr_bytes,
    "$substrBytes": _substr_bytes,
    "$substrCP": _substr_cp,
    "$strLenCP": _length("cp"),
    "$strLenBytes": _length("bytes"),
    "$split": _split,
    "$trim": _trim,
    "$ltrim": _trim,
    "$rtrim": _trim,
    "$indexOfCP": _index_of,
    "$indexOfBytes": _index_of,
    "$regexMatch": _regex_match,
}
