"""Internal. Calendar arithmetic, time zones, date formatting and parsing for date expressions.

BSON dates are milliseconds since the epoch, over a range far wider than Python's ``datetime``
(years 1 to 9999), so the calendar is computed here from day numbers (proleptic Gregorian,
Howard Hinnant's ``civil_from_days``) rather than through ``datetime``. Time zones are the
server's two kinds: an Olson identifier (read from the system's tz database through
``zoneinfo``, which needs no network and no clock) or a fixed UTC offset (``+hh``, ``+hhmm``,
``+hh:mm``). Formatting implements ``TimeZone::formatDate``'s specifiers; parsing implements
the ISO 8601 forms and the numeric specifiers of ``$dateFromString``, and refuses the rest.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from bson.datetime_ms import DatetimeMS

from privata_mongo.core.mql.expressions._base import fail
from privata_mongo.core.mql.values import UnsupportedOperator

_MS_PER_DAY: Final = 86_400_000
_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_OFFSET: Final = re.compile(r"([+-])(\d{2})(?::?(\d{2}))?")
_OLSON: Final = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*")
FORMAT_LETTERS: Final = frozenset("dGHjLmMSuUVwYzZbB%")


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day number counted from 1970-01-01."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def days_from_civil(year: int, month: int, day: int) -> int:
    """The day number of a (proleptic Gregorian) date, counted from 1970-01-01."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_EPOCH: Final = datetime.datetime(1970, 1, 1)


def date_from_millis(millis: int) -> Any:
    """A BSON date from milliseconds since the epoch: naive UTC, or DatetimeMS out of range."""
    try:
        return _EPOCH + datetime.timedelta(milliseconds=millis)
    except OverflowError:
        return DatetimeMS(millis)


class Zone:
    """A time zone: a fixed offset in seconds, or an Olson zone."""

    __slots__ = ("fixed", "tz")

    def __init__(self, fixed: int = 0, tz: zoneinfo.ZoneInfo | None = None) -> None:
        self.fixed, self.tz = fixed, tz

    def is_utc(self) -> bool:
        """Whether this is UTC itself (no zone, a zero offset, or the UTC identifiers)."""
        if self.tz is None:
            return self.fixed == 0
        return self.tz.key in ("UTC", "Etc/UTC", "GMT", "Etc/GMT", "Zulu", "Etc/Zulu")

    def offset(self, millis: int) -> int:
        """Seconds east of UTC at the instant ``millis``."""
        if self.tz is None:
            return self.fixed
        seconds = max(min(millis // 1000, 253402300799), -62135596800)
        moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
        offset = moment.astimezone(self.tz).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0

    def local_offset(self, local_millis: int) -> int:
        """Seconds east of UTC for a local wall-clock time (the earlier of two on a fold)."""
        if self.tz is None:
            return self.fixed
        year, month, day = civil_from_days(local_millis // _MS_PER_DAY)
        if not 1 <= year <= 9999:
            return self.offset(local_millis)
        rest = local_millis % _MS_PER_DAY // 1000
        moment = datetime.datetime(
            year, month, day, rest // 3600, rest // 60 % 60, rest % 60, tzinfo=self.tz
        )
        offset = moment.utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0


UTC: Final = Zone()


def parse_timezone(name: Any, operator: str) -> Zone:
    """``TimeZoneDatabase::getTimeZone``: an Olson identifier or a UTC offset; 40485 else."""
    text = str(name)
    match = _OFFSET.fullmatch(text)
    if match is not None:
        sign = -1 if match.group(1) == "-" else 1
        return Zone(sign * (int(match.group(2)) * 3600 + int(match.group(3) or 0) * 60))
    if _OLSON.fullmatch(text):
        try:
            return Zone(tz=zoneinfo.ZoneInfo(text))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise fail(f"{operator}: unrecognized time zone identifier", 40485)


@dataclass(frozen=True, slots=True)
class DateParts:
    """A date broken down in one time zone (``TimeZone::dateParts`` and the ISO fields)."""

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    millisecond: int
    day_of_week: int  # 1 = Sunday … 7 = Saturday
    day_of_year: int
    offset: int  # seconds east of UTC

    @property
    def week(self) -> int:
        """``%U``: weeks starting on Sunday; days before the first Sunday are week 0."""
        return (self.day_of_year - 1 + 7 - (self.day_of_week - 1)) // 7

    @property
    def iso_day_of_week(self) -> int:
        """1 = Monday … 7 = Sunday."""
        return (self.day_of_week + 5) % 7 + 1

    @property
    def iso_week_and_year(self) -> tuple[int, int]:
        """(ISO 8601 week number, ISO week-numbering year)."""
        days = days_from_civil(self.year, self.month, self.day)
        thursday = days - self.iso_day_of_week + 4
        year = civil_from_days(thursday)[0]
        return (thursday - days_from_civil(year, 1, 1)) // 7 + 1, year


def date_parts(millis: int, zone: Zone = UTC) -> DateParts:
    """The calendar fields of a BSON date in ``zone``."""
    offset = zone.offset(millis)
    local = millis + offset * 1000
    days, rest = divmod(local, _MS_PER_DAY)
    year, month, day = civil_from_days(days)
    return DateParts(
        year,
        month,
        day,
        rest // 3_600_000,
        rest // 60_000 % 60,
        rest // 1000 % 60,
        rest % 1000,
        (days + 4) % 7 + 1,
        days - days_from_civil(year, 1, 1) + 1,
        offset,
    )


def validate_format(text: str, operator: str) -> None:
    """``TimeZone::validateToStringFormat``: 18535/18536 for a bad ``%`` sequence."""
    position = 0
    while position < len(text):
        if text[position] == "%":
            if position + 1 >= len(text):
                raise fail("Unmatched '%' at end of format string", 18535)
            if text[position + 1] not in FORMAT_LETTERS:
                raise fail(
                    f"Invalid format character '%{text[position + 1]}' in format string", 18536
                )
            position += 2
        else:
            position += 1


def _year(value: int, operator: str) -> str:
    if not 0 <= value <= 9999:
        raise fail(f"{operator} is only defined on year 0-9999", 18537)
    return f"{value:04d}"


def format_millis(millis: int, text: str, operator: str, zone: Zone = UTC) -> str:
    """``TimeZone::formatDate``: the date in ``zone`` with the server's ``%`` specifiers."""
    validate_format(text, operator)
    parts = date_parts(millis, zone)
    out: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char != "%":
            out.append(char)
            position += 1
            continue
        out.append(_specifier(text[position + 1], parts, operator))
        position += 2
    return "".join(out)


def _specifier(letter: str, parts: DateParts, operator: str) -> str:
    minutes = parts.offset // 60
    sign = "-" if parts.offset < 0 else "+"
    table: dict[str, Callable[[], str]] = {
        "d": lambda: f"{parts.day:02d}",
        "G": lambda: _year(parts.iso_week_and_year[1], operator),
        "H": lambda: f"{parts.hour:02d}",
        "j": lambda: f"{parts.day_of_year:03d}",
        "L": lambda: f"{parts.millisecond:03d}",
        "m": lambda: f"{parts.month:02d}",
        "M": lambda: f"{parts.minute:02d}",
        "S": lambda: f"{parts.second:02d}",
        "w": lambda: str(parts.day_of_week),
        "u": lambda: str(parts.iso_day_of_week),
        "U": lambda: f"{parts.week:02d}",
        "V": lambda: f"{parts.iso_week_and_year[0]:02d}",
        "Y": lambda: _year(parts.year, operator),
        "z": lambda: f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}",
        "Z": lambda: f"{sign}{abs(minutes)}",
        "b": lambda: _MONTHS[parts.month - 1][:3],
        "B": lambda: _MONTHS[parts.month - 1],
        "%": lambda: "%",
    }
    return table[letter]()


_ISO: Final = re.compile(
    r"\s*(-?\d{4,})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?\s*"
)
_PIECES: Final = {
    "Y": r"(-?\d{4})",
    "m": r"(\d{1,2})",
    "d": r"(\d{1,2})",
    "H": r"(\d{1,2})",
    "M": r"(\d{1,2})",
    "S": r"(\d{1,2})",
    "L": r"(\d{1,3})",
    "j": r"(\d{1,3})",
    "z": r"([+-]\d{2}(?::?\d{2})?)",
    "Z": r"([+-]\d{1,4})",
}


def _format_regex(text: str, operator: str) -> tuple[re.Pattern[str], list[str]]:
    validate_format(text, operator)
    pattern, fields, position = [], [], 0
    while position < len(text):
        char = text[position]
        if char == "%":
            letter = text[position + 1]
            if letter == "%":
                pattern.append("%")
            elif letter in _PIECES:
                pattern.append(_PIECES[letter])
                fields.append(letter)
            else:
                raise UnsupportedOperator(operator)
            position += 2
        else:
            pattern.append(re.escape(char))
            position += 1
    return re.compile("".join(pattern)), fields


def parse_date_string(
    text: str, fmt: str | None, zone: Zone | None, operator: str, code: int
) -> Any:
    """``TimeZoneDatabase::fromString``: an ISO 8601 date, or one in ``fmt``.

    Raises:
        OperationFailed: ``code`` (ConversionFailure) when the string does not parse, 40554
            when it carries an offset and a time zone was given.
        UnsupportedOperator: a format specifier whose parsing is not implemented here.
    """
    fields: dict[str, str] = {}
    if fmt is None:
        match = _ISO.fullmatch(text)
        if match is not None:
            keys = ("Y", "m", "d", "H", "M", "S", "L", "z")
            fields = {k: v for k, v in zip(keys, match.groups(), strict=True) if v is not None}
    else:
        regex, names = _format_regex(fmt, operator)
        match = regex.fullmatch(text)
        if match is not None:
            fields = dict(zip(names, match.groups(), strict=True))
    if match is None or "Y" not in fields:
        raise fail(f"{operator}: error parsing date string", code)
    millis = _local_millis(fields, operator, code)
    if "z" in fields or "Z" in fields:
        if zone is not None:
            raise fail(
                "you cannot pass in a date/time string with GMT offset together with a "
                "timezone argument",
                40554,
            )
        offset = _offset_seconds(fields)
    else:
        offset = (zone or UTC).local_offset(millis)
    return date_from_millis(millis - offset * 1000)


def _local_millis(fields: dict[str, str], operator: str, code: int) -> int:
    year = int(fields["Y"])
    month, day = int(fields.get("m", 1)), int(fields.get("d", 1))
    hour, minute, second = (int(fields.get(k, 0)) for k in ("H", "M", "S"))
    fraction = fields.get("L", "0")
    millis = int((fraction + "000")[:3]) if "L" in fields else 0
    days_in_month = (
        days_from_civil(year + month // 12, month % 12 + 1, 1) - days_from_civil(year, month, 1)
        if 1 <= month <= 12
        else 0
    )
    if not (1 <= day <= days_in_month and hour < 24 and minute < 60 and second < 60):
        raise fail(f"{operator}: error parsing date string", code)
    days = days_from_civil(year, month, day)
    if "j" in fields:
        days = days_from_civil(year, 1, 1) + int(fields["j"]) - 1
    return days * _MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + millis


def _offset_seconds(fields: dict[str, str]) -> int:
    if "Z" in fields:
        return int(fields["Z"]) * 60
    text = fields["z"]
    if text == "Z":
        return 0
    match = _OFFSET.fullmatch(text)
    if match is None:
        return 0
    sign = -1 if match.group(1) == "-" else 1
    return sign * (int(match.group(2)) * 3600 + int(match.group(3) or 0) * 60)
