"""Internal. Type inspection and conversion operators: ``$type``, ``$convert`` and ``$toX``.

``$convert`` follows the server's conversion table (``ConversionTable`` in ``evaluate_math.cpp``):
each (input type, target type) pair either has a rule or fails with ``ConversionFailure`` (241),
which ``onError`` catches; a null or missing input gives ``onNull`` (or null) before the table
is consulted; an invalid ``to`` fails even when the input is null. Doubles print as the shortest
round-trip form without a trailing ``.0`` (``fmt::format("{}")``), and a double becomes a
decimal with 15 significant digits (``$toDecimal: 2.5`` is ``2.50000000000000``). Conversions
to and from binary data depend on the server version and are refused as unsupported.
"""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from bson.code import Code
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.timestamp import Timestamp

from privata_mongo.core.failures import BAD_VALUE, FAILED_TO_PARSE, OperationFailed
from privata_mongo.core.mql._bson_types import DATE, date_millis, type_name, type_rank
from privata_mongo.core.mql.expressions._base import (
    DECIMAL,
    DOUBLE,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    LONG,
    Compiler,
    Expr,
    OperatorCompiler,
    Vars,
    as_decimal,
    decimal_value,
    fail,
    is_number,
    nullish,
    number_kind,
    single,
    truthy,
    unary,
)
from privata_mongo.core.mql.expressions._calendar import (
    date_from_millis,
    format_millis,
    parse_date_string,
)
from privata_mongo.core.mql.values import UnsupportedOperator

CONVERSION_FAILURE = 241
_TYPE_CODES: Final = {
    "double": 1,
    "string": 2,
    "object": 3,
    "array": 4,
    "binData": 5,
    "undefined": 6,
    "objectId": 7,
    "bool": 8,
    "date": 9,
    "null": 10,
    "regex": 11,
    "dbPointer": 12,
    "javascript": 13,
    "symbol": 14,
    "javascriptWithScope": 15,
    "int": 16,
    "timestamp": 17,
    "long": 18,
    "decimal": 19,
    "minKey": -1,
    "maxKey": 127,
}
_NAMES: Final = {code: name for name, code in _TYPE_CODES.items()}
_FLOAT: Final = re.compile(
    r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|infinity|nan)", re.IGNORECASE
)
_INTEGER: Final = re.compile(r"[+-]?\d+")


def _conversion_failed(message: str) -> OperationFailed:
    return fail(f"{message} in $convert with no onError value", CONVERSION_FAILURE)


def format_double(number: float) -> str:
    """``fmt::format("{}", double)``: the shortest round-trip form, ``1.0`` as ``1``."""
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if math.isnan(number):
        return "NaN"
    if number == 0 and math.copysign(1, number) < 0:
        return "-0"
    text = repr(number)
    return text[:-2] if text.endswith(".0") else text


def _to_string(value: Any) -> str:
    kind = number_kind(value)
    if kind == DOUBLE:
        return format_double(value)
    if kind == DECIMAL:
        return str(as_decimal(value))
    if kind is not None:
        return str(int(value))
    if isinstance(value, str) and not isinstance(value, Code):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, ObjectId):
        return str(value)
    if type_rank(value) == DATE:
        return format_millis(date_millis(value), "%Y-%m-%dT%H:%M:%S.%LZ", "$convert")
    raise _unsupported(value, "string")


def _unsupported(value: Any, target: str) -> OperationFailed:
    return _conversion_failed(f"Unsupported conversion from {type_name(value)} to {target}")


def _finite(number: float) -> None:
    if math.isnan(number):
        raise _conversion_failed("Attempt to convert NaN value to integer type")
    if math.isinf(number):
        raise _conversion_failed("Attempt to convert infinity value to integer type")


def _integer(value: Any, low: int, high: int, target: str) -> int:
    kind = number_kind(value)
    if kind == DOUBLE:
        _finite(value)
        if not (low <= value <= high if target == "int" else low <= value < 2.0**63):
            raise _conversion_failed("Conversion would overflow target type")
        return int(value)
    if kind == DECIMAL:
        number = as_decimal(value)
        if number.is_nan():
            raise _conversion_failed("Attempt to convert NaN value to integer type")
        if number.is_infinite():
            raise _conversion_failed("Attempt to convert infinity value to integer type")
        whole = int(number)
        if not low <= whole <= high:
            raise _conversion_failed("Conversion would overflow target type")
        return whole
    if kind is not None:
        if not low <= int(value) <= high:
            raise _conversion_failed("Conversion would overflow target type")
        return int(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        text = str(value)
        if text.startswith("0x") or not _INTEGER.fullmatch(text):
            raise _conversion_failed("Failed to parse number")
        if not low <= int(text) <= high:
            raise _conversion_failed("Failed to parse number")
        return int(text)
    if target == "long" and type_rank(value) == DATE:
        return date_millis(value)
    raise _unsupported(value, target)


def _to_int(value: Any) -> Any:
    return _integer(value, INT32_MIN, INT32_MAX, "int")


def _to_long(value: Any) -> Any:
    return Int64(_integer(value, INT64_MIN, INT64_MAX, "long"))


def _to_double(value: Any) -> Any:
    kind = number_kind(value)
    if kind == DECIMAL:
        number = as_decimal(value)
        result = float(number)
        if math.isinf(result) and number.is_finite():
            raise _conversion_failed("Conversion would overflow target type")
        return result
    if kind is not None:
        return float(value)
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str):
        text = str(value)
        if text.startswith("0x") or not _FLOAT.fullmatch(text):
            raise _conversion_failed("Failed to parse number")
        return float(text)
    if type_rank(value) == DATE:
        return float(date_millis(value))
    raise _unsupported(value, "double")


def _to_decimal(value: Any) -> Any:
    kind = number_kind(value)
    if kind is not None:
        return value if kind == DECIMAL else decimal_value(as_decimal(value))
    if isinstance(value, bool):
        return Decimal128("1" if value else "0")
    if isinstance(value, str):
        text = str(value)
        if text.startswith("0x") or not _FLOAT.fullmatch(text):
            raise _conversion_failed("Failed to parse number")
        return decimal_value(decimal.Decimal(text))
    if type_rank(value) == DATE:
        return Decimal128(decimal.Decimal(date_millis(value)))
    raise _unsupported(value, "decimal")


def _to_bool(value: Any) -> Any:
    return truthy(value)


def _to_date(value: Any) -> Any:
    kind = number_kind(value)
    if kind == DOUBLE:
        return date_from_millis(_integer(value, INT64_MIN, INT64_MAX, "long"))
    if kind in (LONG, DECIMAL):
        return date_from_millis(_integer(value, INT64_MIN, INT64_MAX, "long"))
    if type_rank(value) == DATE:
        return value
    if isinstance(value, str):
        return parse_date_string(str(value), None, None, "$convert", CONVERSION_FAILURE)
    if isinstance(value, ObjectId):
        return date_from_millis(int(value.generation_time.timestamp()) * 1000)
    if isinstance(value, Timestamp):
        return date_from_millis(value.time * 1000)
    raise _unsupported(value, "date")


def _to_object_id(value: Any) -> Any:
    if isinstance(value, ObjectId):
        return value
    if isinstance(value, str):
        text = str(value)
        if len(text) == 24 and all(c in "0123456789abcdefABCDEF" for c in text):
            return ObjectId(text)
        raise _conversion_failed("Failed to parse objectId")
    raise _unsupported(value, "objectId")


_CONVERTERS: Final[dict[int, Callable[[Any], Any]]] = {
    1: _to_double,
    2: _to_string,
    7: _to_object_id,
    8: _to_bool,
    9: _to_date,
    16: _to_int,
    18: _to_long,
    19: _to_decimal,
}


def _target(to: Any) -> int | None:
    """``ConvertTargetTypeInfo::parse``: a type code, or None for a nullish ``to``."""
    if nullish(to):
        return None
    if isinstance(to, str):
        code = _TYPE_CODES.get(str(to))
        if code is None:
            raise fail(f"Unknown type name: {to}", BAD_VALUE)
        return code
    if is_number(to):
        if not float(as_decimal(to)).is_integer():
            raise fail("In $convert, numeric 'to' argument is not an integer", FAILED_TO_PARSE)
        code = int(as_decimal(to))
        if code not in _NAMES:
            raise fail(
                f"In $convert, numeric value for 'to' does not correspond to a BSON type: {code}",
                FAILED_TO_PARSE,
            )
        return code
    raise fail(
        f"$convert's 'to' argument must be a string or number, but is {type_name(to)}",
        FAILED_TO_PARSE,
    )


def convert(value: Any, code: int) -> Any:
    """One conversion of a non-null value; ConversionFailure (241) when the table has no rule."""
    if code == 5 or (type_name(value) == "binData" and code != 8):
        raise UnsupportedOperator("$convert")
    converter = _CONVERTERS.get(code)
    if converter is None:
        raise _unsupported(value, _NAMES[code])
    return converter(value)


def _convert(name: str, spec: Any, compiler: Compiler) -> Expr:
    if not isinstance(spec, Mapping):
        raise fail(
            f"$convert expects an object of named arguments but found: {type_name(spec)}",
            FAILED_TO_PARSE,
        )
    fields: dict[str, Expr] = {}
    for key, value in spec.items():
        if key in ("format", "byteOrder", "base"):
            raise UnsupportedOperator("$convert")
        if key not in ("input", "to", "onError", "onNull"):
            raise fail(f"$convert found an unknown argument: {key}", FAILED_TO_PARSE)
        fields[key] = compiler.compile(value)
    for key in ("input", "to"):
        if key not in fields:
            raise fail(f"Missing '{key}' parameter to $convert", FAILED_TO_PARSE)
    source, to = fields["input"], fields["to"]
    on_error, on_null = fields.get("onError"), fields.get("onNull")

    def run(variables: Vars) -> Any:
        code = _target(to(variables))
        value = source(variables)
        if nullish(value):
            return on_null(variables) if on_null is not None else None
        if code is None:
            return None
        try:
            return convert(value, code)
        except OperationFailed as failure:
            if failure.code != CONVERSION_FAILURE or on_error is None:
                raise
            return on_error(variables)

    return run


def _shorthand(code: int) -> OperatorCompiler:
    """``$toX``: ``$convert`` to one type, null for nullish, no ``onError``."""
    return unary(lambda name, value: convert(value, code))


def _type(name: str, spec: Any, compiler: Compiler) -> Expr:
    argument = single(name, compiler, spec)
    return lambda variables: type_name(argument(variables))


def _is_number(name: str, spec: Any, compiler: Compiler) -> Expr:
    argument = single(name, compiler, spec)
    return lambda variables: is_number(argument(variables))


OPERATORS: Final[dict[str, OperatorCompiler]] = {
    "$type": _type,
    "$isNumber": _is_number,
    "$convert": _convert,
    "$toString": _shorthand(2),
    "$toInt": _shorthand(16),
    "$toLong": _shorthand(18),
    "$toDouble": _shorthand(1),
    "$toDecimal": _shorthand(19),
    "$toBool": _shorthand(8),
    "$toDate": _shorthand(9),
    "$toObjectId": _shorthand(7),
}
