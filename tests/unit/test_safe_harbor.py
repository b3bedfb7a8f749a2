"""Name defaults follow the HIPAA Safe Harbor identifier list, and each decision cites its rule."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from privata_mongo.core.classify import DEFAULT_PII_NAMES, Policy, compile_schema
from privata_mongo.core.safe_harbor import RULES, is_person_model, words
from privata_mongo.core.schema import Decision, FieldSpec, ModelSpec, Rule


def decide(model: str, *names: str, policy: Policy | None = None) -> dict[str, Decision]:
    fields = (FieldSpec("_id", "id", primary_key=True), *(FieldSpec(n, n) for n in names))
    schema = compile_schema([ModelSpec(model, model.lower(), fields)], policy or Policy())
    return {d.attribute: d for d in schema.decisions}


def test_every_safe_harbor_category_has_a_rule() -> None:
    assert [r.letter for r in RULES] == list(string.ascii_uppercase[:18])
    assert all(r.names for r in RULES)


@pytest.mark.parametrize(
    ("name", "letter"),
    [
        ("name", "A"),
        ("full_name", "A"),
        ("fullName", "A"),
        ("zip_code", "B"),
        ("postal_code", "B"),
        ("billing_zip", "B"),
        ("city", "B"),
        ("birth_date", "C"),
        ("dob", "C"),
        ("admission_date", "C"),
        ("home_phone", "D"),
        ("mobile", "D"),
        ("emergencyContactPhone", "D"),
        ("fax", "E"),
        ("work_email", "F"),
        ("ssn", "G"),
        ("mrn", "H"),
        ("insurance_id", "I"),
        ("account_number", "J"),
        ("drivers_license", "K"),
        ("license_plate", "L"),
        ("imei", "M"),
        ("profile_url", "N"),
        ("ip_address", "O"),
        ("last_login_ip", "O"),
        ("fingerprint", "P"),
        ("profile_photo", "Q"),
        ("national_id", "R"),
    ],
)
def test_a_patients_identifiers_are_identity_data_by_their_category(name: str, letter: str) -> None:
    decision = decide("Patient", name, "ward")[name]
    assert (decision.identity, decision.rule, decision.safe_harbor) == (True, Rule.NAME, letter)
    assert f"164.514(b)(2)(i)({letter})" in decision.reason
    assert "is a default identity name" in decision.reason


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("Drug", "name"),
        ("Drug", "serial_number"),
        ("Drug", "photo"),
        ("Hospital", "city"),
        ("Ward", "name"),
        ("Patient", "created_at"),
        ("Patient", "admitted_at"),
        ("Patient", "updated_at"),
        ("Patient", "visit_date"),
        ("Patient", "drug_name"),
        ("Patient", "file_name"),
        ("Patient", "phone_verified"),
        ("Patient", "is_mobile"),
        ("Patient", "microphone"),
        ("Patient", "zipper"),
    ],
)
def test_names_that_are_not_a_persons_identifiers_stay_clinical(model: str, name: str) -> None:
    decision = decide(model, name)[name]
    assert (decision.identity, decision.safe_harbor) == (False, None)


def test_a_model_holding_a_personal_identifier_describes_a_person() -> None:
    got = decide("Prescription", "name", "mrn", "dose")
    assert got["name"].identity
    assert "in a model that describes a person" in got["name"].reason
    assert not got["dose"].identity
    # an e-mail or phone is no evidence: organisations have them too
    assert not decide("Supplier", "name", "email")["name"].identity


def test_person_words_in_a_class_name() -> None:
    assert words("HospitalPatient") == ("hospital", "patient")
    assert words("home_phone") == words("homePhone") == ("home", "phone")
    assert is_person_model("HospitalPatient")
    assert not is_person_model("Drug")


def test_an_embedded_documents_generic_names_do_not_make_it_identity() -> None:
    medication = FieldSpec("medications", "medications", children=(FieldSpec("name", "name"),))
    address = FieldSpec("address_info", "address_info", children=(FieldSpec("zip_code", "zip"),))
    fields = (FieldSpec("_id", "id", primary_key=True), medication, address)
    schema = compile_schema([ModelSpec("Patient", "patient", fields)], Policy())
    got = {d.attribute: d for d in schema.decisions}
    assert not got["medications"].identity
    assert got["address_info"].identity
    assert got["address_info"].rule is Rule.NESTED
    assert "(B)" in got["address_info"].reason


def test_configured_name_defaults_replace_the_safe_harbor_list() -> None:
    got = decide(
        "Patient", "nickname", "zip_code", policy=Policy(name_defaults=frozenset({"nick_name"}))
    )
    assert got["nickname"].identity
    assert got["nickname"].safe_harbor is None
    assert not got["zip_code"].identity
    assert not decide("Patient", "name", "home_phone", policy=Policy(name_defaults=frozenset()))[
        "home_phone"
    ].identity


def test_identifiers_people_are_looked_up_by_get_a_blind_index() -> None:
    fields = ("mrn", "home_phone", "ip_address", "zip_code", "name", "birth_date")
    model = ModelSpec(
        "Patient",
        "patient",
        (FieldSpec("_id", "id", primary_key=True), *(FieldSpec(n, n) for n in fields)),
    )
    schema = compile_schema([model], Policy())
    assert schema.searchable == frozenset({"mrn", "home_phone", "ip_address"})


def test_the_former_defaults_are_all_kept() -> None:
    former = {
        "first_name", "last_name", "middle_name", "full_name", "given_name", "family_name",
        "maiden_name", "surname", "email", "email_address", "phone", "phone_number", "mobile",
        "mobile_phone", "telephone", "address", "street_address", "home_address",
        "postal_address", "date_of_birth", "birth_date", "birthdate", "dob", "ssn",
        "social_security_number", "national_id", "passport_number",
    }  # fmt: skip
    assert former <= DEFAULT_PII_NAMES
    got = decide("Thing", *sorted(former))
    assert all(got[name].identity for name in former)


def test_the_documented_table_lists_every_rule_and_name() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "classification.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in doc.splitlines() if line.startswith("| (")}
    assert set(rows) == {f"({r.letter})" for r in RULES}
    for rule in RULES:
        row = rows[f"({rule.letter})"]
        assert rule.category in row
        assert all(f"`{name}`" in row for name in rule.names), rule.letter
        assert row.rstrip().endswith("yes |" if rule.searchable else "no |")
