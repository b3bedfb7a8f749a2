"""The compliance report as one self-contained HTML page.

Everything is in the file: the style in a ``<style>`` element, the chart as inline SVG, no
script, no font, image or stylesheet from anywhere else, so the page opens the same offline,
from an e-mail attachment or an archive, and tells nobody it was opened. Every text is
escaped (model names, actors and break-glass reasons are written by people).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from html import escape

from privata_mongo.core.report.chart import svg
from privata_mongo.core.report.data import ComplianceReport
from privata_mongo.core.report.markdown import SECTIONS
from privata_mongo.core.rights.register import NOT_DECLARED, ProcessingRecord

__all__ = ["to_html"]

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       margin: 0 auto; max-width: 1180px; padding: 24px 32px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 8px; padding-top: 8px; border-top: 2px solid #0072B2; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.meta { color: #555; margin: 0 0 12px; }
nav { margin: 8px 0 0; font-size: 13px; }
nav a { margin-right: 14px; color: #0072B2; text-decoration: none; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e3e3e3;
         vertical-align: top; }
th { background: #f3f6f9; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code, td.mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12px; }
.ok { color: #00734d; font-weight: 600; } .bad { color: #b00020; font-weight: 600; }
.identity { color: #8a4b00; font-weight: 600; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 8px 0 12px; }
.card { border: 1px solid #dde3ea; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card b { display: block; font-size: 20px; }
.empty { color: #777; font-style: italic; }
@media print { h2 { break-before: auto; } nav { display: none; } }
"""


_IDENTITY = ' class="identity"'


def _text(value: object) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, datetime.datetime):
        return escape(value.isoformat(sep=" ", timespec="seconds"))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return escape(str(value))


def _region_vaults(r: ComplianceReport) -> str:
    """The regions' key vaults, one row each (nothing without regions)."""
    if not r.region_keys:
        return ""
    return _table(
        ("region", "key vault", "keys", "per subject", "library's own", "shredded", "restored"),
        [
            (v.region, v.vault, v.keys, v.subject_keys, v.library_keys, v.shredded, v.restored)
            for v in r.region_keys
        ],
        numeric=range(2, 7),
    )


def _table(
    head: Sequence[str], rows: Iterable[Sequence[object]], numeric: Iterable[int] = ()
) -> str:
    right = set(numeric)
    cls = [' class="n"' if i in right else "" for i in range(len(head))]
    body = [
        "<tr>" + "".join(f"<td{cls[i]}>{_text(v)}</td>" for i, v in enumerate(row)) + "</tr>"
        for row in rows
    ]
    if not body:
        return '<p class="empty">None.</p>'
    header = "".join(f"<th{cls[i]}>{escape(h)}</th>" for i, h in enumerate(head))
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _cards(items: Iterable[tuple[str, object]]) -> str:
    cards = "".join(f'<div class="card"><b>{_text(v)}</b>{escape(k)}</div>' for k, v in items)
    return f'<div class="cards">{cards}</div>'


def _models(report: ComplianceReport) -> str:
    parts = []
    for m in report.models:
        if m.identity_collection:
            where = (
                f"identity in <code>{escape(m.identity_collection)}</code>"
                f"{' (encrypted)' if m.encrypted else ''}, clinical in "
                f"<code>{escape(m.collection)}</code>; searchable: "
                f"{_text(', '.join(m.searchable))}"
            )
        else:
            where = f"no identity fields: stored natively in <code>{escape(m.collection)}</code>"
        rows = "".join(
            f'<tr><td class="mono">{escape(f.field)}</td>'
            f"<td{_IDENTITY if f.side == 'identity' else ''}>{escape(f.side)}</td>"
            f"<td>{escape(f.rule)}</td><td>{escape(f.reason)}</td></tr>"
            for f in m.fields
        )
        parts.append(
            f"<h3>{escape(m.model)}</h3><p>{where}</p><table><thead><tr><th>field</th>"
            f"<th>side</th><th>rule</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return "".join(parts) or '<p class="empty">No model.</p>'


def _processing(record: ProcessingRecord) -> str:
    period = (
        f"{_text(record.period[0])} to {_text(record.period[1])} UTC"
        if record.period
        else "no audit record"
    )
    summary = _table(
        ("databases", "period", "purposes", "legal bases", "recipients (actors)"),
        [
            (
                ", ".join(record.databases),
                period,
                ", ".join(record.purposes),
                ", ".join(record.legal_bases),
                ", ".join(record.recipients),
            )
        ],
    )
    models = _table(
        (
            "model",
            "collection",
            "identity data",
            "searchable",
            "other data",
            "purposes",
            "legal bases",
            "recipients",
            "operations",
            "retention",
            "erasure",
        ),
        (
            (
                m.name,
                m.collection + (" (split)" if m.split else ""),
                ", ".join(m.identity_fields),
                ", ".join(m.searchable),
                ", ".join(m.clinical_fields),
                ", ".join(m.purposes),
                ", ".join(m.legal_bases),
                ", ".join(m.recipients),
                ", ".join(f"{k} {v}" for k, v in sorted(m.operations.items())),
                m.retention or NOT_DECLARED,
                m.erasure or f"{NOT_DECLARED} (pseudonymise)",
            )
            for m in record.models
        ),
    )
    activities = _table(
        ("model", "operation", "purpose", "legal basis", "actor", "records", "documents"),
        (
            (a.model, a.operation, a.purpose, a.legal_basis, a.actor, a.records, a.documents)
            for a in record.activities
        ),
        numeric=(5, 6),
    )
    return f"{summary}<h3>Models</h3>{models}<h3>Activities</h3>{activities}"


def _sections(r: ComplianceReport) -> dict[str, str]:
    k, a, t = r.keys, r.audit, r.timeline
    verdict = (
        f'<p><span class="ok">intact</span>: {a.records} records in {a.streams} streams '
        f"of <code>{escape(a.collection)}</code> verify.</p>"
        if a.ok
        else f'<p><span class="bad">{len(a.problems)} problems</span> in {a.records} records '
        f"of <code>{escape(a.collection)}</code>:</p><ul>"
        + "".join(f"<li>{escape(p)}</li>" for p in a.problems)
        + "</ul>"
    )
    restored = f'<span class="bad">{k.restored}</span>' if k.restored else "0"
    return {
        "models": _models(r),
        "keys": _cards(
            [
                ("keys", k.keys),
                ("per subject", k.subject_keys),
                ("library's own", k.library_keys),
                ("shredded subjects", k.shredded),
            ]
        )
        + f"<p>Key vault <code>{escape(k.vault)}</code>; keys restored after shredding: "
        f"{restored}{' (run rights replay-erasures)' if k.restored else ''}.</p>"
        + _region_vaults(r),
        "audit": verdict,
        "erasures": _cards([("done", r.erasures_done), ("pending", r.erasures_pending)])
        + _table(
            ("subject", "state", "at", "actor", "purpose", "key shredded", "deleted", "kept"),
            (
                (e.pseudonym, e.state, e.at, e.actor, e.purpose, e.key_shredded, e.deleted, e.kept)
                for e in r.erasures
            ),
            numeric=(6, 7),
        ),
        "restrictions": _table(
            ("model", "collection", "restricted documents", "objections (documents)"),
            (
                (
                    c.model,
                    c.collection,
                    c.restricted,
                    ", ".join(f"{p} {n}" for p, n in sorted(c.objections.items())),
                )
                for c in r.restrictions
            ),
            numeric=(2,),
        ),
        "break-glass": _table(
            ("at", "actor", "reason", "purpose", "operation", "model", "subjects", "outcome"),
            (
                (b.at, b.actor, b.reason, b.purpose, b.operation, b.model, b.subjects, b.outcome)
                for b in r.break_glass
            ),
            numeric=(6,),
        ),
        "accesses": f"<p>Audited operations per {escape(t.unit)}: {t.total} in all.</p>"
        + svg(t)
        + _table(
            ("purpose", "operations", "documents processed"),
            ((p, sum(c), t.documents.get(p, 0)) for p, c in t.series.items()),
            numeric=(1, 2),
        ),
        "processing": _processing(r.processing),
    }


def to_html(report: ComplianceReport) -> str:
    """The report as a complete HTML document."""
    sections = _sections(report)
    nav = "".join(f'<a href="#{anchor}">{escape(title)}</a>' for anchor, title in SECTIONS)
    body = "".join(
        f'<section id="{anchor}"><h2>{escape(title)}</h2>{sections[anchor]}</section>'
        for anchor, title in SECTIONS
    )
    notes = "".join(f'<p class="meta">{escape(n)}</p>' for n in report.notes)
    title = f"Compliance report: {report.database}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_STYLE}</style></head><body>"
        f'<header><h1>{escape(title)}</h1><p class="meta">Generated '
        f"{_text(report.generated_at)} UTC. Names, pseudonyms and counts only: no value of a "
        f"classified field appears in this report.</p>{notes}<nav>{nav}</nav></header>"
        f"{body}</body></html>\n"
    )
