from __future__ import annotations

import logging

import pytest

from privata_mongo.core.classify import DEFAULT_PII_NAMES, Policy, compile_schema, normalise_name
from privata_mongo.core.schema import FieldSpec, ModelSpec, Rule
from privata_mongo.errors import ConfigurationError


def spec(
    *fields: FieldSpec, privacy: dict[str, object] | None = None, name: str = "Patient"
) -> ModelSpec:
    return ModelSpec(name, "patient", (FieldSpec("_id", "id", primary_key=True), *fields), privacy)


def decisions(model: ModelSpec, policy: Policy | None = None) -> dict[str, tuple[bool, Rule]]:
    schema = compile_schema([model], policy or Policy())
    return {d.attribute: (d.identity, d.rule) for d in schema.decisions}


def test_name_defaults_classify_common_identity_fields() -> None:
    got = decisions(spec(FieldSpec("first_name", "first_name"), FieldSpec("age", "age")))
    assert got["first_name"] == (True, Rule.NAME)
    assert got["age"] == (False, Rule.UNCLASSIFIED)
    assert got["id"] == (False, Rule.RESERVED)


def test_name_defaults_match_written_variants() -> None:
    assert normalise_name("firstName") == normalise_name("first_name") == "firstname"
    got = decisions(spec(FieldSpec("firstName", "firstName"), FieldSpec("EMAIL", "EMAIL")))
    assert got["firstName"][0]
    assert got["EMAIL"][0]


def test_default_names_include_the_documented_ones() -> None:
    for name in ("first_name", "last_name", "email", "phone", "address", "date_of_birth", "ssn"):
        assert name in DEFAULT_PII_NAMES


def test_marker_beats_meta_beats_mapping_beats_name() -> None:
    model = spec(
        FieldSpec("email", "email", marker=False),
        FieldSpec("nickname", "nickname"),
        FieldSpec("phone", "phone"),
        FieldSpec("mrn", "mrn"),
        privacy={"pii": ["nickname", "email"], "not_pii": ["phone"]},
    )
    policy = Policy(mapping={"Patient.mrn": True, "mrn": False, "nickname": False})
    got = decisions(model, policy)
    assert got["email"] == (False, Rule.MARKER)
    assert got["nickname"] == (True, Rule.META)
    assert got["phone"] == (False, Rule.META)
    assert got["mrn"] == (True, Rule.MAPPING)


def test_model_specific_mapping_beats_generic_mapping() -> None:
    got = decisions(
        spec(FieldSpec("mrn", "mrn")), Policy(mapping={"mrn": True, "Patient.mrn": False})
    )
    assert got["mrn"] == (False, Rule.MAPPING)


def test_nested_identity_field_classifies_the_container() -> None:
    contact = FieldSpec(
        "contact",
        "contact",
        children=(FieldSpec("relation", "relation"), FieldSpec("phone", "phone")),
    )
    marked = FieldSpec("notes", "notes", children=(FieldSpec("author", "author", marker=True),))
    schema = compile_schema([spec(contact, marked)], Policy())
    reasons = {d.attribute: d for d in schema.decisions}
    assert reasons["contact"].identity
    assert reasons["contact"].rule is Rule.NESTED
    assert "contact.phone" in reasons["contact"].reason
    assert reasons["notes"].identity
    assert "notes.author" in reasons["notes"].reason


def test_nested_marker_false_silences_a_nested_default() -> None:
    contact = FieldSpec("contact", "contact", children=(FieldSpec("phone", "phone", marker=False),))
    assert decisions(spec(contact))["contact"] == (False, Rule.UNCLASSIFIED)


def test_explicit_top_level_marker_beats_nested_rule() -> None:
    contact = FieldSpec("contact", "contact", marker=False, children=(FieldSpec("phone", "phone"),))
    assert decisions(spec(contact))["contact"] == (False, Rule.MARKER)


def test_db_field_names_are_what_the_schema_uses() -> None:
    schema = compile_schema([spec(FieldSpec("em", "email"))], Policy())
    assert schema.identity_fields == frozenset({"em"})


def test_primary_key_cannot_be_identity() -> None:
    marked = ModelSpec("User", "user", (FieldSpec("_id", "id", primary_key=True, marker=True),))
    with pytest.raises(ConfigurationError, match="primary key"):
        compile_schema([marked], Policy())


@pytest.mark.parametrize(
    ("field", "privacy", "mapping", "declared"),
    [
        (FieldSpec("_id", "email", primary_key=True, marker=True), None, {}, "pii=True"),
        (FieldSpec("_id", "email", primary_key=True), {"pii": ["email"]}, {}, "privacy 'pii'"),
        (FieldSpec("_id", "code", primary_key=True), None, {"User.code": True}, "'User.code'"),
    ],
)
def test_an_explicit_identity_primary_key_names_the_field_and_the_remedy(
    field: FieldSpec, privacy: dict[str, object] | None, mapping: dict[str, bool], declared: str
) -> None:
    model = ModelSpec("User", "user", (field,), privacy)
    with pytest.raises(ConfigurationError) as raised:
        compile_schema([model], Policy(mapping=mapping))
    message = str(raised.value)
    assert f"User.{field.attribute}" in message
    assert "surrogate primary key" in message
    assert declared in message


def test_a_primary_key_named_like_identity_data_stays_clinical_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = ModelSpec(
        "Subscriber",
        "subscriber",
        (FieldSpec("_id", "email", primary_key=True), FieldSpec("age", "age")),
    )
    with caplog.at_level(logging.WARNING, logger="privata_mongo"):
        first = compile_schema([model], Policy())
        again = compile_schema([model], Policy())
    assert first == again
    assert first.identity_fields == frozenset()
    assert not first.enabled
    (decision,) = (d for d in first.decisions if d.attribute == "email")
    assert (decision.identity, decision.rule) == (False, Rule.PRIMARY_KEY)
    assert str(decision) == (
        "email (_id): clinical — primary key: kept clinical, name default overridden; "
        "mark it pii=False to silence, or use a surrogate key to protect it"
    )
    warned = [r for r in caplog.records if "Subscriber.email" in r.getMessage()]
    assert len(warned) == 1
    assert warned[0].levelno == logging.WARNING


def test_a_primary_key_marked_not_pii_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    model = ModelSpec(
        "Login", "login", (FieldSpec("_id", "email", primary_key=True, marker=False),)
    )
    with caplog.at_level(logging.WARNING, logger="privata_mongo"):
        schema = compile_schema([model], Policy())
    assert schema.decisions[0].rule is Rule.MARKER
    assert not caplog.records


@pytest.mark.parametrize(
    ("privacy", "message"),
    [
        ({"pii": "email"}, "must be a list"),
        ({"pii": ["nope"]}, "does not have"),
        ({"pii": ["age"], "not_pii": ["age"]}, "both"),
        ({"colour": 1}, "unknown 'privacy' keys"),
        ({"scan_limit": 0}, "positive integer"),
        ("yes", "must be a mapping"),
    ],
)
def test_invalid_privacy_meta_is_rejected_with_remedy(privacy: object, message: str) -> None:
    model = ModelSpec("Patient", "patient", (FieldSpec("age", "age"),), privacy)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=message):
        compile_schema([model], Policy())


def test_disabled_privacy_stores_natively() -> None:
    schema = compile_schema(
        [spec(FieldSpec("email", "email"), privacy={"enabled": False})], Policy()
    )
    assert not schema.enabled


def test_collection_merges_subclasses_identity_wins() -> None:
    base = spec(FieldSpec("note", "note"))
    child = ModelSpec(
        "Inpatient",
        "patient",
        (
            FieldSpec("_id", "id", primary_key=True),
            FieldSpec("note", "note", marker=True),
            FieldSpec("ward", "ward"),
        ),
    )
    schema = compile_schema([base, child], Policy())
    assert schema.identity_fields == frozenset({"note"})
    assert schema.models == ("Patient", "Inpatient")
    assert list(schema.rank) == ["_id", "note", "ward"]


def test_identity_collection_name_and_scan_limit() -> None:
    schema = compile_schema(
        [spec(FieldSpec("email", "email"))], Policy(identity_suffix="_pii", scan_limit=7)
    )
    assert schema.identity_collection == "patient_pii"
    assert schema.scan_limit == 7
    custom = compile_schema(
        [
            spec(
                FieldSpec("email", "email"),
                privacy={"identity_collection": "people", "scan_limit": 3},
            )
        ],
        Policy(),
    )
    assert (custom.identity_collection, custom.scan_limit) == ("people", 3)


def test_searchable_fields_are_unique_or_declared_identity_fields() -> None:
    model = spec(
        FieldSpec("email", "email", unique=True),
        FieldSpec("ssn", "ssn", searchable=True),
        FieldSpec("phone", "phone"),
        FieldSpec("mrn", "mrn", unique=True),
        FieldSpec("last_name", "last_name"),
        privacy={"searchable": ["last_name"]},
    )
    schema = compile_schema([model], Policy(searchable_defaults=frozenset()))
    # mrn is identity data by default (Safe Harbor H), and unique: it has a blind index
    assert schema.searchable == frozenset({"email", "ssn", "mrn", "last_name"})


def test_identifiers_are_searchable_by_default_names_and_dates_are_not() -> None:
    model = spec(
        FieldSpec("emailAddress", "email_address"),
        FieldSpec("phone", "phone"),
        FieldSpec("national_id", "national_id"),
        FieldSpec("first_name", "first_name"),
        FieldSpec("date_of_birth", "date_of_birth"),
    )
    schema = compile_schema([model], Policy(sealed=True))
    assert schema.sealed
    assert schema.searchable == frozenset({"emailAddress", "phone", "national_id"})


def test_every_decision_explains_itself() -> None:
    schema = compile_schema([spec(FieldSpec("email", "email"), FieldSpec("age", "age"))], Policy())
    text = [str(d) for d in schema.decisions]
    assert any("email: identity — name default" in t for t in text)
    assert any("age: clinical — no rule applies" in t for t in text)


def test_a_model_can_opt_a_default_name_out_of_the_blind_index() -> None:
    model = spec(
        FieldSpec("email", "email"),
        FieldSpec("phone", "phone"),
        FieldSpec("ssn", "ssn", unique=True),
        privacy={"not_searchable": ["phone", "ssn"]},
    )
    schema = compile_schema([model], Policy(sealed=True))
    assert schema.searchable == frozenset({"email", "ssn"})  # unique needs its terms
