"""Internal. Date aggregation operators: field extraction, ``$dateToString``, ``$dateFromString``.

The extraction operators (``$year`` … ``$week``) accept ``<date>``, ``[<date>]`` or
``{date, timezone}``; a null or missing date gives null, a timestamp or ObjectId counts as the
date it carries (``coerceToDate``), anything else fails with 16006. A time zone is checked even
when the date is null, as the server does. The calendar, zone and format machinery lives in
``_calendar``; this module only parses the operators' arguments and wires them to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from bson.objectid import ObjectId
from bson.timestamp import Timestamp

from privata_mongo.core.failures import OperationFailed
from privata_mongo.core.mql._bson_types import ARRAY_TYPES, DATE, date_millis, type_name, type_rank
from privata_mongo.core.mql.expressions._base import (
    Compiler,
    Expr,
    OperatorCompiler,
    Vars,
    fail,
    nullish,
)
from privata_mongo.core.mql.expressions._calendar import (
    DateParts,
    Zone,
    date_parts,
    format_millis,
    parse_date_string,
    parse_timezone,
    validate_format,
)

_CONVERSION_FAILURE = 241


def coerce_to_millis(value: Any) -> int:
    """``Value::coerceToDate``: a date, a timestamp's or an ObjectId's seconds; 16006 else."""
    if type_rank(value) == DATE:
        return date_millis(value)
    if isinstance(value, Timestamp):
        return value.time * 1000
    if isinstance(value, ObjectId):
        return int(value.generation_time.timestamp()) * 1000
    raise fail(f"can't convert from BSON type {type_name(value)} to Date", 16006)


def _zone(expression: Expr | None, variables: Vars, operator: str) -> Zone | None:
    """``makeTimeZone``: UTC when absent, None for a nullish zone, 40533/40485 when invalid."""
    if expression is None:
        return Zone()
    value = expression(variables)
    if nullish(value):
        return None
    if not isinstance(value, str):
        raise fail(f"timezone must evaluate to a string, found {type_name(value)}", 40533)
    return parse_timezone(value, operator)


def _date_argument(name: str, spec: Any, compiler: Compiler) -> tuple[Expr, Expr | None]:
    if isinstance(spec, Mapping) and not (spec and str(next(iter(spec))).startswith("$")):
        date: Expr | None = None
        zone: Expr | None = None
        for key, value in spec.items():
            if key == "date":
                date = compiler.compile(value)
            elif key == "timezone":
                zone = compiler.compile(value)
            else:
                raise fail(f'unrecognized option to {name}: "{key}"', 40535)
        if date is None:
            raise fail(f"missing 'date' argument to {name}", 40539)
        return date, zone
    if isinstance(spec, ARRAY_TYPES):
        if len(spec) != 1:
            raise fail(
                f"{name} accepts exactly one argument if given an array, but was given {len(spec)}",
                40536,
            )
        spec = spec[0]
    return compiler.compile(spec), None


def _extractor(field: Callable[[DateParts], int]) -> OperatorCompiler:
    def compile_extractor(name: str, spec: Any, compiler: Compiler) -> Expr:
        date, zone_expr = _date_argument(name, spec, compiler)

        def run(variables: Vars) -> Any:
            value = date(variables)
            zone = _zone(zone_expr, variables, name)
            if zone is None or nullish(value):
                return None
            return field(date_parts(coerce_to_millis(value), zone))

        return run

    return compile_extractor


def _fields(
    name: str,
    spec: Any,
    allowed: tuple[str, ...],
    codes: tuple[int, int, int],
    required: str,
    compiler: Compiler,
) -> dict[str, Expr]:
    if not isinstance(spec, Mapping):
        raise fail(f"{name} only supports an object as its argument", codes[0])
    fields: dict[str, Expr] = {}
    for key, value in spec.items():
        if key not in allowed:
            raise fail(f"Unrecognized argument to {name}: {key}", codes[1])
        fields[key] = compiler.compile(value)
    if required not in fields:
        raise fail(f"Missing '{required}' parameter to {name}", codes[2])
    return fields


def _format(fmt: Expr | None, variables: Vars, name: str, code: int) -> Any:
    """The value of ``format`` (None when absent): a string unless nullish, else ``code``."""
    text = fmt(variables) if fmt is not None else None
    if text is not None and not nullish(text):
        if not isinstance(text, str):
            raise fail(f"{name} requires that 'format' be a string, found: {type_name(text)}", code)
        validate_format(text, name)
    return text


def _date_to_string(name: str, spec: Any, compiler: Compiler) -> Expr:
    fields = _fields(
        name,
        spec,
        ("date", "format", "timezone", "onNull"),
        (18629, 18534, 18628),
        "date",
        compiler,
    )
    date, fmt, on_null = fields["date"], fields.get("format"), fields.get("onNull")
    zone_expr = fields.get("timezone")

    def run(variables: Vars) -> Any:
        value = date(variables)
        text = _format(fmt, variables, name, 18533)
        zone = _zone(zone_expr, variables, name)
        if nullish(value):
            return on_null(variables) if on_null is not None else None
        if zone is None or (fmt is not None and nullish(text)):
            return None
        if text is None:  # the default: no "Z" when a zone other than UTC was given
            text = "%Y-%m-%dT%H:%M:%S.%LZ" if zone.is_utc() else "%Y-%m-%dT%H:%M:%S.%L"
        return format_millis(coerce_to_millis(value), str(text), name, zone)

    return run


def _date_from_string(name: str, spec: Any, compiler: Compiler) -> Expr:
    fields = _fields(
        name,
        spec,
        ("dateString", "format", "timezone", "onError", "onNull"),
        (40540, 40541, 40542),
        "dateString",
        compiler,
    )
    source, fmt = fields["dateString"], fields.get("format")
    on_error, on_null, zone_expr = (
        fields.get("onError"),
        fields.get("onNull"),
        fields.get("timezone"),
    )

    def run(variables: Vars) -> Any:
        text = source(variables)
        pattern = _format(fmt, variables, name, 40684)
        zone = _zone(zone_expr, variables, name)
        if nullish(text):
            return on_null(variables) if on_null is not None else None
        if zone is None or (fmt is not None and nullish(pattern)):
            return None
        try:
            if not isinstance(text, str):
                raise fail(
                    f"$dateFromString requires that 'dateString' be a string, found: "
                    f"{type_name(text)}",
                    _CONVERSION_FAILURE,
                )
            given_zone = zone if zone_expr is not None else None
            chosen = str(pattern) if isinstance(pattern, str) else None
            return parse_date_string(str(text), chosen, given_zone, name, _CONVERSION_FAILURE)
        except OperationFailed as failure:
            if failure.code == _CONVERSION_FAILURE and on_error is not None:
                return on_error(variables)
            raise

    return run


OPERATORS: Final[dict[str, OperatorCompiler]] = {
    "$year": _extractor(lambda parts: parts.year),
    "$month": _extractor(lambda parts: parts.month),
    "$dayOfMonth": _extractor(lambda parts: parts.day),
    "$hour": _extractor(lambda parts: parts.hour),
    "$minute": _extractor(lambda parts: parts.minute),
    "$second": _extractor(lambda parts: parts.second),
    "$millisecond": _extractor(lambda parts: parts.millisecond),
    "$dayOfWeek": _extractor(lambda parts: parts.day_of_week),
    "$dayOfYear": _extractor(lambda parts: parts.day_of_year),
    "$week": _extractor(lambda parts: parts.week),
    "$isoDayOfWeek": _extractor(lambda parts: parts.iso_day_of_week),
    "$isoWeek": _extractor(lambda parts: parts.iso_week_and_year[0]),
    "$isoWeekYear": _extractor(lambda parts: parts.iso_week_and_year[1]),
    "$dateToString": _date_to_string,
    "$dateFromString": _date_from_string,
}
