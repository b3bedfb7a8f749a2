"""The opt-in content scanner reports likely identifiers in free text, never their values."""

from __future__ import annotations

from typing import Any

import pytest

from privata_mongo import ConfigurationError
from privata_mongo.scan import Finding, scan

VALUES = (
    "ada.lovelace@example.org",
    "212-555-0142",
    "078-05-1121",
    "10.20.30.40",
    "https://ada.example.org/profile",
    "MRN 00451234",
    "4111 1111 1111 1111",
    "03/14/1961",
)
SAMPLE: list[dict[str, Any]] = [
    {
        "_id": 1,
        "notes": f"Seen today. Mail {VALUES[0]}, call {VALUES[1]}. SSN {VALUES[2]}.",
        "diagnosis": "J45.909 asthma, 2 puffs",
        "log": [{"text": f"login from {VALUES[3]}, see {VALUES[4]}"}],
    },
    {
        "_id": 2,
        "notes": f"{VALUES[5]} admitted {VALUES[7]}; card {VALUES[6]}; call {VALUES[1]}",
        "diagnosis": "E11.9 type 2 diabetes, 500 mg",
        "dose": 500,
    },
    {"_id": 3, "notes": "no identifier here", "diagnosis": "I10"},
]


def by_key(findings: tuple[Finding, ...]) -> dict[tuple[str, str], Finding]:
    return {(f.field, f.entity): f for f in findings}


@pytest.mark.parametrize("engine", ["patterns", "presidio"])
def test_the_scanner_reports_fields_kinds_and_counts(engine: Any) -> None:
    report = scan(SAMPLE, engine=engine)
    assert report.sampled == 3
    assert report.engine == engine
    found = by_key(report.findings)
    phone = found[("notes", "PHONE_NUMBER")]
    assert (phone.safe_harbor, phone.documents, phone.occurrences) == ("D", 2, 2)
    assert "164.514(b)(2)(i)(D)" in phone.rule
    for key, letter in [
        (("notes", "EMAIL_ADDRESS"), "F"),
        (("notes", "CREDIT_CARD"), "J"),
        (("notes", "DATE_TIME"), "C"),
        (("notes", "MRN"), "H"),
        (("log.text", "IP_ADDRESS"), "O"),
        (("log.text", "URL"), "N"),
    ]:
        assert found[key].safe_harbor == letter, key
    assert "diagnosis" not in report.fields
    assert "dose" not in report.fields


def test_the_built_in_patterns_find_a_us_ssn() -> None:
    found = by_key(scan(SAMPLE, engine="patterns").findings)
    assert found[("notes", "US_SSN")].safe_harbor == "G"


@pytest.mark.parametrize("engine", ["patterns", "presidio"])
def test_a_report_never_shows_a_value(engine: Any) -> None:
    report = scan(SAMPLE, engine=engine)
    shown = str(report) + repr(report)
    for value in VALUES:
        assert value not in shown
    assert "notes: PHONE_NUMBER in 2 document(s)" in str(report)


def test_the_scan_can_be_limited_to_fields() -> None:
    report = scan(SAMPLE, fields=["log"], engine="patterns")
    assert report.fields == ("log.text",)


def test_auto_takes_presidio_when_it_is_installed() -> None:
    assert scan([], engine="auto").engine == "presidio"
    assert str(scan([{"a": "plain"}], engine="auto")).endswith("no likely identifier found")


def test_an_unknown_engine_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="engine must be"):
        scan(SAMPLE, engine="spacy")  # type: ignore[arg-type]
