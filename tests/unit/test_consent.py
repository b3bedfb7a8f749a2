"""Consent in the core: the clause under a consent basis, events and their validation."""

from __future__ import annotations

import datetime

import pytest

from privata_mongo.config import configure, current
from privata_mongo.core.audit import AccessContext
from privata_mongo.core.mql.match import compile_filter
from privata_mongo.core.rights.consent import (
    GIVEN,
    WITHDRAWN,
    ConsentEvent,
    consent_based,
    give_change,
    latest,
    withdraw_change,
)
from privata_mongo.core.rights.restriction import visibility
from privata_mongo.errors import ConfigurationError, MissingPurpose

ROWS = [
    {"_id": 1, "_pseudonym": "pseu_" + "a" * 32},
    {"_id": 2, "_pseudonym": "pseu_" + "b" * 32, "_rst": {"c": ["research", "marketing"]}},
    {"_id": 3, "_pseudonym": "pseu_" + "c" * 32, "_rst": {"c": ["research"], "o": ["research"]}},
    {"_id": 4, "_pseudonym": "pseu_" + "d" * 32, "_rst": {"r": True, "a": [], "c": ["research"]}},
    {"_id": 5, "_pseudonym": "pseu_" + "e" * 32, "_rst": {"c": []}},
]
AT = datetime.datetime(2026, 1, 1)


def _seen(purpose: str | None, **flags: bool) -> list[int]:
    rules = visibility(purpose, write=flags.pop("write", False), **flags)
    if rules.visible is None:
        return [r["_id"] for r in ROWS]
    match = compile_filter(rules.visible)
    return [r["_id"] for r in ROWS if match(r)]


@pytest.mark.parametrize(
    ("purpose", "flags", "expected"),
    [
        ("research", {"break_glass": False, "consent": True}, [2]),  # 3 objects, 4 restricted
        ("marketing", {"break_glass": False, "consent": True}, [2]),
        ("billing", {"break_glass": False, "consent": True}, []),
        ("research", {"break_glass": True, "consent": True}, [2, 4]),  # restriction lifted only
        ("research", {"break_glass": False, "consent": False}, [1, 2, 5]),
        ("research", {"break_glass": False, "consent": True, "write": True}, [2, 4]),
        (
            "research",
            {"break_glass": False, "consent": True, "subject_request": True},
            [1, 2, 3, 4, 5],
        ),
    ],
)
def test_a_consent_basis_sees_only_the_subjects_consenting_to_the_purpose(
    purpose: str, flags: dict[str, bool], expected: list[int]
) -> None:
    assert _seen(purpose, **flags) == expected


def test_a_write_under_consent_still_refuses_a_restricted_subject() -> None:
    rules = visibility("research", break_glass=False, write=True, consent=True)
    assert rules.guard is not None
    assert [r["_id"] for r in ROWS if compile_filter(rules.guard)(r)] == [4]


def test_a_consent_basis_without_a_purpose_is_refused() -> None:
    with pytest.raises(MissingPurpose, match="purpose"):
        visibility(None, break_glass=False, write=False, consent=True)
    with pytest.raises(MissingPurpose):
        visibility(None, break_glass=True, write=True, consent=True)
    assert visibility(None, break_glass=False, write=False, subject_request=True, consent=True)


@pytest.mark.parametrize(
    ("basis", "expected"),
    [("art6_1a", True), (" Consent ", True), ("ART9_2A", True), ("art6_1b", False), (None, False)],
)
def test_consent_bases_are_compared_without_case(basis: str | None, expected: bool) -> None:
    assert consent_based(basis, current().consent_legal_bases) is expected


def test_the_consent_bases_are_configurable_and_validated() -> None:
    saved = current()
    try:
        assert configure(consent_legal_bases=["opt_in"]).consent_legal_bases == {"opt_in"}
        for bad in ("consent", [""], [1], None):
            with pytest.raises(ConfigurationError, match="consent_legal_bases"):
                configure(consent_legal_bases=bad)
        with pytest.raises(ConfigurationError, match="consent_collection"):
            configure(consent_collection="")
    finally:
        import privata_mongo.config

        privata_mongo.config._current = saved


def test_events_need_a_purpose_and_a_given_consent_its_source_and_notice() -> None:
    access = AccessContext(actor="dpo", purpose="compliance", legal_basis="art6_1c")
    made = ConsentEvent.made(
        subject="pseu_" + "a" * 32,
        purpose="research",
        event=GIVEN,
        at=AT,
        access=access,
        source="web form",
        notice_version="v2",
    )
    assert made.document() == {
        "subject": "pseu_" + "a" * 32,
        "purpose": "research",
        "event": "given",
        "at": AT,
        "source": "web form",
        "notice_version": "v2",
        "actor": "dpo",
        "legal_basis": "art6_1c",
        "request_id": None,
    }
    assert ConsentEvent.of(made.document()) == made
    base = {"subject": made.subject, "at": AT, "access": access}
    for purpose, event, source, notice in (
        ("", GIVEN, "web", "v1"),
        ("research", GIVEN, None, "v1"),
        ("research", GIVEN, "web", " "),
        ("research", WITHDRAWN, "", None),
    ):
        with pytest.raises(ConfigurationError, match="non-empty string"):
            ConsentEvent.made(
                **base, purpose=purpose, event=event, source=source, notice_version=notice
            )
    withdrawn = ConsentEvent.made(
        **base, purpose="research", event=WITHDRAWN, source=None, notice_version=None
    )
    assert withdrawn.source is None
    for change in (give_change, withdraw_change):
        with pytest.raises(ConfigurationError):
            change("")


def test_the_latest_event_of_a_purpose_is_in_force() -> None:
    def event(purpose: str, kind: str, minutes: int) -> ConsentEvent:
        return ConsentEvent("p", purpose, kind, AT + datetime.timedelta(minutes=minutes), "s", None)

    history = [
        event("research", GIVEN, 0),
        event("marketing", GIVEN, 1),
        event("research", WITHDRAWN, 2),
        event("research", GIVEN, 2),  # same millisecond: written later, so in force
    ]
    state = latest(history)
    assert {p: e.event for p, e in state.items()} == {"research": GIVEN, "marketing": GIVEN}
    assert latest([*history, event("research", WITHDRAWN, 3)])["research"].event == WITHDRAWN
