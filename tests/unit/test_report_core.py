"""The compliance report's pure parts: time buckets, the timeline, the chart and the pages."""

from __future__ import annotations

import datetime
import itertools
import re

import pytest

from privata_mongo.core.report import (
    BreakGlass,
    ChainStatus,
    ComplianceReport,
    ErasureEntry,
    FieldRow,
    KeyStatus,
    ModelStorage,
    RestrictionCount,
    bucket_edges,
    timeline,
    timeline_pipeline,
)
from privata_mongo.core.report.chart import svg
from privata_mongo.core.report.data import MOST_BUCKETS, NO_PURPOSE
from privata_mongo.core.report.markdown import SECTIONS
from privata_mongo.core.rights.datamap import DataMap
from privata_mongo.core.rights.register import register

T0 = datetime.datetime(2026, 3, 4, 10, 17, 23, 456000)


@pytest.mark.parametrize(
    ("span", "unit"),
    [
        (datetime.timedelta(0), "second"),
        (datetime.timedelta(seconds=40), "second"),
        (datetime.timedelta(minutes=30), "minute"),
        (datetime.timedelta(hours=20), "hour"),
        (datetime.timedelta(days=40), "day"),
        (datetime.timedelta(days=300), "week"),
        (datetime.timedelta(days=1000), "30 days"),
        (datetime.timedelta(days=3650), "90 days"),
    ],
)
def test_buckets_are_the_finest_aligned_unit_that_fits(span: datetime.timedelta, unit: str) -> None:
    found, edges = bucket_edges(T0, T0 + span)
    assert found == unit
    assert 2 <= len(edges) <= MOST_BUCKETS + 1
    assert edges[0] <= T0 < edges[1]
    assert edges[-2] <= T0 + span < edges[-1]
    widths = {b - a for a, b in itertools.pairwise(edges)}
    assert len(widths) == 1  # equal buckets
    if unit == "week":
        assert edges[0].weekday() == 0
        assert edges[0].time() == datetime.time(0)
    if unit == "day":
        assert edges[0] == datetime.datetime(2026, 3, 4)


def test_a_bucket_is_counted_by_the_server_with_the_count_in_the_key() -> None:
    start, end = T0, T0 + datetime.timedelta(hours=1)
    (match, group) = timeline_pipeline(start, end)
    assert match["$match"]["at"] == {"$gte": start, "$lt": end}
    assert group["$group"]["_id"] == {"purpose": "$purpose", "count": "$count"}
    assert group["$group"]["records"] == {"$sum": 1}  # FerretDB 1.24 sums constants only


def test_the_timeline_merges_rows_per_purpose_and_multiplies_documents_out() -> None:
    unit, edges = bucket_edges(T0, T0 + datetime.timedelta(minutes=2))
    rows = [
        [
            {"_id": {"purpose": "treatment", "count": 3}, "records": 2},
            {"_id": {"purpose": "treatment", "count": 1}, "records": 1},
            {"_id": {"count": 1}, "records": 4},
        ],
        [],
        [{"_id": {"purpose": "billing", "count": 10}, "records": 1}],
    ]
    line = timeline(unit, edges, rows)
    assert list(line.series) == [NO_PURPOSE, "treatment", "billing"]  # busiest first
    assert line.series["treatment"] == (3, 0, 0)
    assert line.series["billing"] == (0, 0, 1)
    assert line.documents == {NO_PURPOSE: 4, "treatment": 7, "billing": 10}
    assert line.total == 8


def test_the_chart_draws_a_segment_per_purpose_and_bucket_and_escapes_names() -> None:
    unit, edges = bucket_edges(T0, T0 + datetime.timedelta(seconds=2))
    rows = [
        [{"_id": {"purpose": "<script>x</script>", "count": 1}, "records": 2}],
        [],
        [{"_id": {"purpose": "care", "count": 1}, "records": 1}],
    ]
    drawn = svg(timeline(unit, edges, rows))
    assert drawn.startswith("<svg")
    assert len(re.findall(r"<rect [^>]*><title>", drawn)) == 2
    assert "<script>" not in drawn
    assert "&lt;script&gt;x&lt;/script&gt;" in drawn
    assert "<svg" not in svg(timeline("day", (), ()))


def _report(problems: tuple[str, ...] = ()) -> ComplianceReport:
    unit, edges = bucket_edges(T0, T0 + datetime.timedelta(seconds=1))
    line = timeline(unit, edges, [[{"_id": {"purpose": "care", "count": 1}, "records": 1}]])
    return ComplianceReport(
        database="clinic",
        generated_at=T0,
        models=(
            ModelStorage(
                "Patient",
                "patient",
                "patient__identity",
                True,
                ("email",),
                (FieldRow("email", "identity", "name default", "'email' is a default name"),),
            ),
        ),
        keys=KeyStatus("encryption.__keyVault", 4, 2, 2, 1, 0),
        audit=ChainStatus("clinic.privata_audit", not problems, 9, 2, problems),
        erasures_done=1,
        erasures_pending=0,
        erasures=(ErasureEntry("pseu_" + "a" * 32, "done", T0, "dpo", "request", True, 2, 0),),
        restrictions=(RestrictionCount("Patient", "patient", 1, {"research": 2}),),
        break_glass=(
            BreakGlass(T0, "dr.night", "ER <b>", "treatment", "read", "Patient", 1, "ok"),
        ),
        timeline=line,
        processing=register(DataMap((), ()), [], databases=["clinic"], privacy={}),
    )


def test_the_html_page_is_self_contained_and_has_every_section() -> None:
    page = _report().to_html()
    assert page.startswith("<!DOCTYPE html>")
    for anchor, title in SECTIONS:
        assert f'<section id="{anchor}"><h2>{title}</h2>' in page
    assert "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "ER &lt;b&gt;" in page  # people's text is escaped
    assert "research 2" in page
    assert "pseu_" + "a" * 32 in page
    bad = _report(("stream s1: record 3 was changed",)).to_html()
    assert "1 problems" in bad
    assert "record 3 was changed" in bad


def test_the_markdown_has_every_section_and_the_busy_buckets() -> None:
    text = _report().to_markdown()
    for _, title in SECTIONS:
        assert f"\n## {title}\n" in text
    assert "| dr.night | ER <b> | treatment | read | Patient | 1 | ok |" in text
    assert "| 2026-03-04T10:17:23 | 1 |" in text
    assert "### Activities" in text  # the processing record, one level down
