"""Internal. Taking identity values out of text an ODM wrote about them (validation messages).

The ODMs quote the offending value in their validation errors (mongoengine's ``Invalid email
address: ...``, pydantic's ``input_value='...'``), and those messages end up in logs and error
trackers. The facades know which value a message is about (the field's own), so they replace
every rendering of it, and of every value nested in it, by ``REDACTED``; the rest of the
message, the reason, stays as the ODM wrote it.
"""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

__all__ = ["REDACTED", "redact_text", "value_renderings"]

REDACTED: Final = "<redacted>"
"""What a value is replaced by in a message."""

_SCALARS = (str, bytes, int, float, decimal.Decimal, datetime.date, datetime.time)


def _leaves(value: Any, depth: int = 0) -> Iterator[Any]:
    """``value`` and every value nested in it: scalars and containers, never object wrappers."""
    if depth > 16 or value is None or isinstance(value, bool):
        return
    if isinstance(value, _SCALARS):
        yield value
    elif isinstance(value, Mapping):
        yield value
        for item in value.values():
            yield from _leaves(item, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        yield value
        for item in value:
            yield from _leaves(item, depth + 1)
    else:
        # An ODM's own value object (an embedded document): its fields are the values.
        fields = getattr(value, "_data", None)
        if not isinstance(fields, Mapping):
            fields = getattr(value, "__dict__", None)
        if isinstance(fields, Mapping):
            for item in fields.values():
                yield from _leaves(item, depth + 1)


def value_renderings(value: Any) -> list[str]:
    """Every way a message may render ``value`` or a value nested in it, longest first."""
    found: set[str] = set()
    for leaf in _leaves(value):
        found.update((str(leaf), repr(leaf)))
        if isinstance(leaf, (datetime.date, datetime.time)):
            found.add(leaf.isoformat())
        if isinstance(leaf, bytes):
            found.add(leaf.decode("utf-8", "replace"))
    found.discard("")
    return sorted(found, key=len, reverse=True)


def redact_text(text: str, renderings: Iterable[str]) -> str:
    """``text`` with each rendering replaced by ``REDACTED``.

    A rendering that starts or ends with a word character is only replaced where it is not
    part of a longer word, so a short value (``"A"``) does not eat into the reason.
    """
    for rendering in renderings:
        before = r"(?<!\w)" if re.match(r"\w", rendering[0]) else ""
        after = r"(?!\w)" if re.match(r"\w", rendering[-1]) else ""
        text = re.sub(before + re.escape(rendering) + after, REDACTED, text)
    return text
