"""The update engine's malformed shapes: array filters, $push's $sort, $rename into NUL.

Codes are the server's (BadValue 2, FailedToParse 9); no document value reaches a message.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from privata_mongo.core.failures import WriteFailed
from privata_mongo.core.mql.update import compile_update

NOW = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000)
PRIVATE = "Jane-Doe-1970"


def code_of(update: dict[str, Any], **options: Any) -> int:
    with pytest.raises(WriteFailed) as caught:
        compile_update(update).apply({"_id": 1, "a": [PRIVATE, 1]}, now=NOW, **options)
    assert PRIVATE not in caught.value.message
    return caught.value.code


@pytest.mark.parametrize(
    ("update", "code"),
    [
        ({"$push": {"a": {"$each": [3], "$sort": {"x": 2}}}}, 2),
        ({"$push": {"a": {"$each": [3], "$sort": {"": 1}}}}, 2),
        ({"$rename": {"b": "c\x00d"}}, 2),
    ],
)
def test_malformed_update_operands_fail_with_the_servers_code(
    update: dict[str, Any], code: int
) -> None:
    assert code_of(update) == code


def test_an_array_filter_must_be_an_object() -> None:
    assert code_of({"$set": {"a.$[x]": 0}}, array_filters=[5]) == 9


def test_array_filters_combined_with_and_or_name_one_identifier() -> None:
    update = compile_update({"$set": {"a.$[x]": 0}})
    applied = update.apply(
        {"_id": 1, "a": [1, 5, 9]},
        now=NOW,
        array_filters=[{"$or": [{"x": {"$lt": 2}}, {"$and": [{"x": {"$gt": 8}}]}]}],
    )
    assert applied.document == {"_id": 1, "a": [0, 5, 0]}


def test_update_paths_must_be_strings() -> None:
    with pytest.raises(TypeError, match="update paths must be strings"):
        compile_update({"$set": {1: 0}})
