"""Small pure helpers of the core that privacy rules rest on: which paths an expression reads,
how a value may be rendered in a message, how blind-index values are normalised, pseudonyms."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import pytest
from bson.int64 import Int64

from privata_mongo.core.crypto.blind import normalise_value
from privata_mongo.core.mql.reads import expression_reads
from privata_mongo.core.pseudonym import format_pseudonym, is_pseudonym
from privata_mongo.core.redaction import REDACTED, redact_text, value_renderings


@pytest.mark.parametrize(
    ("expression", "reads"),
    [
        ("$a.b", {"a.b"}),
        ({"$concat": ["$first", " ", "$last"]}, {"first", "last"}),
        ({"$literal": "$not.a.path"}, set()),
        ([{"$eq": ["$x", 1]}, "$y"], {"x", "y"}),
        ("$$ROOT", None),
        ({"$eq": ["$$CURRENT", 1]}, None),
        ({"$getField": "email"}, None),
        ([{"$setField": {"field": "a", "input": "$$ROOT", "value": 1}}], None),
        ({"$cond": [{"$gt": ["$n", 1]}, {"$getField": "a"}, 0]}, None),
        ("plain", set()),
    ],
)
def test_an_expression_names_the_paths_it_reads_or_none_for_the_whole_document(
    expression: Any, reads: set[str] | None
) -> None:
    assert expression_reads(expression) == reads


@dataclass
class _Embedded:
    city: str
    zip: str


class _OdmValue:
    def __init__(self) -> None:
        self._data = {"street": "Main Street 5"}


def test_renderings_reach_into_containers_and_odm_value_objects() -> None:
    when = datetime.date(1990, 4, 1)
    found = value_renderings(
        {"a": ["Ada", b"bytes\xff"], "b": _Embedded("Lyon", "69001"), "c": _OdmValue(), "d": when}
    )
    for expected in ("Ada", "'Ada'", "b'bytes\\xff'", "bytes\ufffd", "Lyon", "69001"):
        assert expected in found
    assert "Main Street 5" in found
    assert "1990-04-01" in found
    assert found == sorted(found, key=len, reverse=True)
    assert value_renderings(None) == value_renderings(True) == []


def test_redaction_spares_words_that_merely_contain_a_short_value() -> None:
    text = "Invalid value 'A' for field: A is not Allowed"
    assert (
        redact_text(text, ["'A'", "A"])
        == f"Invalid value {REDACTED} for field: {REDACTED} is not Allowed"
    )
    assert redact_text("(x@y.org)", ["x@y.org"]) == f"({REDACTED})"


def test_blind_index_values_are_normalised_as_the_server_compares_them() -> None:
    aware = datetime.datetime(
        2024, 1, 1, 12, 0, 0, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    assert normalise_value(aware) == datetime.datetime(2024, 1, 1, 10, 0, 0, 123000)
    assert normalise_value(Int64(5)) == 5
    assert type(normalise_value(Int64(5))) is int
    assert normalise_value(2.0) == 2
    assert type(normalise_value(2.5)) is float
    assert normalise_value({"n": 1.0, "m": [Int64(2), True]}) == {"n": 1, "m": [2, True]}
    assert normalise_value(float("inf")) == float("inf")


def test_a_pseudonym_is_16_random_bytes_in_hex() -> None:
    made = format_pseudonym(bytes(range(16)))
    assert made == "pseu_000102030405060708090a0b0c0d0e0f"
    assert is_pseudonym(made)
    assert not is_pseudonym(made.upper())
    assert not is_pseudonym(made + "\n")
    with pytest.raises(ValueError, match="exactly 16 random bytes"):
        format_pseudonym(b"\x00" * 8)
