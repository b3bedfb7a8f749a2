from __future__ import annotations

import string
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from privata_mongo.core.pseudonym import format_pseudonym, is_pseudonym
from privata_mongo.core.schema import ORDER_FIELD, PSEUDONYM_FIELD, REVISION_FIELD, ModelSchema
from privata_mongo.core.split import identity_values, join, split, split_for_storage
from tests.unit.builders import make_schema

SCHEMA = make_schema("_id", "first_name", "email", "age", "address", "visits", "notes")
PSEU = "pseu_" + "0" * 32

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(string.ascii_lowercase, min_size=1, max_size=3), inner, max_size=3
        )
    ),
    max_leaves=6,
)


@st.composite
def documents(draw: Any, ordered: bool = True) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from([*list(SCHEMA.rank)[1:], "extra", "_cls"]), unique=True))
    if ordered:
        keys.sort(key=lambda k: SCHEMA.rank.get(k, len(SCHEMA.rank)))
    doc: dict[str, Any] = {"_id": draw(st.integers())}
    for key in keys:
        doc[key] = draw(values)
    return doc


@settings(max_examples=300, deadline=None)
@given(documents())
def test_join_is_the_exact_inverse_of_split_for_declared_order(doc: dict[str, Any]) -> None:
    identity, clinical = split(doc, SCHEMA, PSEU, "r1")
    assert list(join(clinical, identity, SCHEMA).items()) == list(doc.items())


@settings(max_examples=300, deadline=None)
@given(documents(ordered=False))
def test_join_restores_any_document_as_a_mapping(doc: dict[str, Any]) -> None:
    identity, clinical = split(doc, SCHEMA, PSEU, "r1")
    assert join(clinical, identity, SCHEMA) == doc


@settings(max_examples=200, deadline=None)
@given(documents(ordered=False))
def test_split_puts_identity_fields_only_on_the_identity_side(doc: dict[str, Any]) -> None:
    identity, clinical = split(doc, SCHEMA, PSEU, "r1")
    assert not set(clinical) & SCHEMA.identity_fields
    assert set(identity) - {"_id", REVISION_FIELD} <= SCHEMA.identity_fields
    assert identity["_id"] == clinical[PSEUDONYM_FIELD] == PSEU
    assert clinical["_id"] == doc["_id"]


def test_id_stays_in_place_when_the_backend_stores_it_last() -> None:
    # mongomock keeps _id where the driver appended it (last); a server stores it first.
    stored_last = {"first_name": "Ada", "age": 3, "_id": 1}
    identity, clinical = split(stored_last, SCHEMA, PSEU, "r1")
    assert list(join(clinical, identity, SCHEMA)) == ["first_name", "age", "_id"]


def test_join_without_identity_row_drops_the_link_only() -> None:
    assert join({"_id": 1, "age": 3, PSEUDONYM_FIELD: PSEU}, None, SCHEMA) == {"_id": 1, "age": 3}


def test_pseudonyms_have_the_documented_shape() -> None:
    value = format_pseudonym(bytes(range(16)))
    assert value == "pseu_000102030405060708090a0b0c0d0e0f"
    assert is_pseudonym(value)
    assert not is_pseudonym("pseu_" + "G" * 32)
    assert not is_pseudonym(value.upper())


def test_schema_fixture_is_split(schema: ModelSchema) -> None:
    assert schema.identity_fields == frozenset({"first_name", "email", "address"})


@settings(max_examples=300, deadline=None)
@given(documents(ordered=False))
def test_stored_halves_join_back_in_any_order(doc: dict[str, Any]) -> None:
    identity, clinical = split_for_storage(doc, SCHEMA, PSEU, "r1")
    assert list(join(clinical, identity, SCHEMA).items()) == list(doc.items())
    assert identity_values(identity) == {
        k: v for k, v in doc.items() if k in SCHEMA.identity_fields
    }


@settings(max_examples=200, deadline=None)
@given(documents())
def test_documents_in_declared_order_are_stored_without_a_recorded_order(
    doc: dict[str, Any],
) -> None:
    assert split_for_storage(doc, SCHEMA, PSEU, "r1") == split(doc, SCHEMA, PSEU, "r1")


def test_an_upserted_order_is_recorded_and_fields_added_later_come_after_it() -> None:
    upserted = {"_id": 1, "address": "x", "age": 3, "email": "e", "first_name": "f"}
    identity, clinical = split_for_storage(upserted, SCHEMA, PSEU, "r1")
    assert identity[ORDER_FIELD] == ["address", "age", "email", "first_name"]
    assert list(join(clinical, identity, SCHEMA)) == list(upserted)
    # the server appends a clinical field (declared before them all) to the clinical half
    clinical = {**clinical, "notes": "n", "visits": 2}
    assert list(join(clinical, identity, SCHEMA)) == [*upserted, "notes", "visits"]
