"""Internal. Hashable keys that are equal exactly when MongoDB's values are equal.

``$group`` finds a document's group, and ``$addToSet`` a duplicate, by MongoDB equality: ``1``,
``1.0`` and decimal ``1`` are one value, NaN equals NaN, documents are equal only with the same
fields in the same order, a string never equals code. Comparing each new value
with every group would be quadratic; a key that hashes the same way makes it constant. Python
already hashes equal int, float and Decimal alike, so numbers are keyed by their value; the
other types get a tagged tuple. A value with no faithful key (code with scope) gets None and
the callers fall back to comparing.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Mapping
from typing import Any

from bson.binary import Binary
from bson.code import Code
from bson.dbref import DBRef
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp

from privata_mongo.core.mql._bson_types import (
    MISSING,
    date_millis,
    regex_flags,
    regex_pattern,
    type_name,
)
from privata_mongo.core.mql.expressions._base import (
    DECIMAL,
    as_decimal,
    is_array,
    number_kind,
)


def value_key(value: Any) -> Any:
    """A hashable key, equal for values MongoDB considers equal; None when there is none."""
    kind = number_kind(value)
    if kind is not None:
        number = as_decimal(value) if kind == DECIMAL else value
        return ("nan",) if number != number else ("n", number)
    if isinstance(value, str) and not isinstance(value, Code):
        return ("s", str(value))
    if value is None or value is MISSING:
        return ("null",) if value is None else ("missing",)
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (Mapping, DBRef)):
        document = value.as_doc() if isinstance(value, DBRef) else value
        items = tuple((key, value_key(item)) for key, item in document.items())
        return None if any(item is None for _, item in items) else ("o", items)
    if is_array(value):
        elements = tuple(value_key(item) for item in value)
        return None if any(item is None for item in elements) else ("a", elements)
    return _scalar_key(value)


def _scalar_key(value: Any) -> Any:
    if isinstance(value, (datetime.datetime,)) or type_name(value) == "date":
        return ("d", date_millis(value))
    if isinstance(value, ObjectId):
        return ("oid", value.binary)
    if isinstance(value, Timestamp):
        return ("ts", value.time, value.inc)
    if isinstance(value, uuid.UUID):
        return ("bin", 4, value.bytes)
    if isinstance(value, Binary):
        return ("bin", value.subtype, bytes(value))
    if isinstance(value, bytes):
        return ("bin", 0, value)
    if isinstance(value, (Regex, re.Pattern)):
        return ("re", regex_pattern(value), regex_flags(value))
    if isinstance(value, Code):
        return None if value.scope is not None else ("code", str(value))
    if isinstance(value, (MinKey, MaxKey)):
        return (type(value).__name__,)
    return None
