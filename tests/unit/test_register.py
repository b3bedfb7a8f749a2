"""The record of processing activities built from a data map and trail summaries (pure)."""

from __future__ import annotations

import datetime

import pytest

from privata_mongo.core.mql.match import compile_filter
from privata_mongo.core.rights.datamap import DataMap, ModelEntry
from privata_mongo.core.rights.register import EDGES, SUMMARY, register
from privata_mongo.errors import ConfigurationError

MAP = DataMap(
    (
        ModelEntry("Patient", "patients", ("email", "name"), ("_id", "ward"), ("email",)),
        ModelEntry("Visit", "visits", (), ("_id", "reason")),
    )
)
T0 = datetime.datetime(2026, 3, 1, 9, 30)


def _row(model: str, operation: str, purpose: str | None, count: int, records: int) -> dict:
    key = {
        "model": model,
        "operation": operation,
        "purpose": purpose,
        "legal_basis": "art9_2h" if purpose == "treatment" else "art6_1a",
        "actor": "dr.lee",
        "count": count,
    }
    return {"_id": key, "records": records}


def test_rows_of_several_trails_merge_into_activities_and_models() -> None:
    rows = [
        _row("Patient", "read", "treatment", 2, 3),
        _row("Patient", "read", "treatment", 1, 1),  # another count: same activity
        _row("Patient", "read", "treatment", 2, 1),  # a second trail
        _row("Patient", "create", "treatment", 1, 2),
        _row("Patient", "read", "research", 1, 1),
        _row("Ghost", "read", None, 0, 1),  # in a trail, no longer in the map
    ]
    record = register(
        MAP,
        rows,
        databases=["app", "archive"],
        times=[T0 + datetime.timedelta(days=1), T0],
        privacy={"Patient": {"retention": {"days": 3650, "field": "ward"}, "erasure": "delete"}},
    )
    assert record.databases == ("app", "archive")
    assert record.period == (T0, T0 + datetime.timedelta(days=1))
    assert record.purposes == ("research", "treatment")
    assert record.legal_bases == ("art6_1a", "art9_2h")
    assert record.recipients == ("dr.lee",)
    reads = [
        a
        for a in record.activities
        if (a.model, a.operation, a.purpose) == ("Patient", "read", "treatment")
    ]
    assert [(a.records, a.documents) for a in reads] == [(5, 9)]
    patient, visit, ghost = record.models
    assert (patient.name, visit.name, ghost.name) == ("Patient", "Visit", "Ghost")
    assert patient.operations == {"read": 6, "create": 2}
    assert patient.purposes == ("research", "treatment")
    assert patient.retention == "3650 days after ward, then erase"
    assert patient.erasure == "delete"
    assert (visit.retention, visit.erasure) == (None, None)
    assert visit.operations == {}
    assert visit.purposes == ()
    assert ghost.collection == "(not in the data map)"
    markdown = record.to_markdown()
    assert "- Period: 2026-03-01T09:30:00 to 2026-03-02T09:30:00 (UTC)" in markdown
    assert "- Retention: 3650 days after ward, then erase" in markdown
    assert "- Erasure: delete" in markdown
    assert "- Retention: not declared" in markdown  # the visits
    assert "- Erasure: not declared (pseudonymise, the default)" in markdown
    assert "## Visit" in markdown
    assert "| Patient | read | treatment | art9_2h | dr.lee | 5 | 9 |" in markdown
    assert "| Ghost | read | — | art6_1a | dr.lee | 1 | 0 |" in markdown
    data = record.to_dict()
    assert data["purposes"] == ["research", "treatment"]
    assert data["models"][0]["identity_fields"] == ("email", "name")


def test_a_malformed_declaration_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="retention"):
        register(MAP, [], databases=["app"], privacy={"Patient": {"retention": {"years": 10}}})
    with pytest.raises(ConfigurationError, match="erasure"):
        register(MAP, [], databases=["app"], privacy={"Visit": {"erasure": "burn"}})


def test_an_empty_trail_gives_the_map_with_no_activity() -> None:
    record = register(MAP, [], databases=["app"], privacy={})
    assert record.period is None
    assert record.activities == ()
    assert "- Period: no audit record" in record.to_markdown()
    assert "- Purposes: none" in record.to_markdown()


def test_the_summary_leaves_out_checkpoints_and_groups_on_the_server() -> None:
    match = compile_filter(SUMMARY[0]["$match"])
    assert match({"operation": "read"})
    assert not match({"kind": "checkpoint"})
    assert set(SUMMARY[1]["$group"]["_id"]) == {
        "model",
        "operation",
        "purpose",
        "legal_basis",
        "actor",
        "count",
    }
    assert [edge[1]["$sort"]["at"] for edge in EDGES] == [1, -1]
