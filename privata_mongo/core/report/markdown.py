"""The compliance report as Markdown, for a repository or a ticket.

The same sections as the HTML page; the chart is a table of the buckets that saw an
operation (Markdown has no portable picture that is not a separate file).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence

from privata_mongo.core.report.data import ComplianceReport

__all__ = ["SECTIONS", "to_markdown"]

SECTIONS = (
    ("models", "Models and classified fields"),
    ("keys", "Keys"),
    ("audit", "Audit chain"),
    ("erasures", "Erasures"),
    ("restrictions", "Restrictions and objections"),
    ("break-glass", "Break-glass accesses"),
    ("accesses", "Accesses per purpose over time"),
    ("processing", "Record of processing activities"),
)
"""Each section's anchor and title, in page order (the HTML page uses the same)."""


def cell(value: object) -> str:
    """A table cell: ``—`` for nothing, ``|`` escaped."""
    if value is None or value == "":
        return "—"
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines if len(lines) > 2 else [*lines, "| " + " | ".join("—" for _ in head) + " |"]


def _section(anchor: str) -> list[str]:
    title = dict(SECTIONS)[anchor]
    return ["", f"## {title}", ""]


def to_markdown(report: ComplianceReport) -> str:
    """The whole report as one Markdown document."""
    r = report
    lines = [
        f"# Compliance report: {r.database}",
        "",
        f"Generated {cell(r.generated_at)} UTC. Names, pseudonyms and counts only: no value of "
        "a classified field appears in this report.",
    ]
    lines += [f"- {note}" for note in r.notes]
    lines += _section("models")
    for m in r.models:
        storage = (
            f"identity in `{m.identity_collection}`"
            + (" (encrypted)" if m.encrypted else "")
            + f", clinical in `{m.collection}`"
            if m.identity_collection
            else f"stored natively in `{m.collection}`"
        )
        lines += [
            "",
            f"### {m.model}",
            "",
            f"{storage}; searchable: {cell(', '.join(m.searchable))}",
            "",
        ]
        lines += _table(
            ("field", "side", "rule", "reason"),
            ((f.field, f.side, f.rule, f.reason) for f in m.fields),
        )
    k = r.keys
    lines += _section("keys")
    lines += _table(
        ("key vault", "keys", "per subject", "library's own", "shredded subjects", "restored"),
        [(k.vault, k.keys, k.subject_keys, k.library_keys, k.shredded, k.restored)],
    )
    if r.region_keys:
        lines.append("")
        lines += _table(
            ("region", "key vault", "keys", "per subject", "library's own", "shredded", "restored"),
            [
                (v.region, v.vault, v.keys, v.subject_keys, v.library_keys, v.shredded, v.restored)
                for v in r.region_keys
            ],
        )
    a = r.audit
    lines += _section("audit")
    verdict = "**intact**" if a.ok else f"**{len(a.problems)} problems**"
    lines.append(f"`{a.collection}`: {verdict}; {a.records} records in {a.streams} streams.")
    lines += [f"- {p}" for p in a.problems]
    lines += _section("erasures")
    lines.append(f"{r.erasures_done} done, {r.erasures_pending} pending (latest first).")
    lines.append("")
    lines += _table(
        ("subject", "state", "at", "actor", "purpose", "key shredded", "deleted", "kept"),
        (
            (e.pseudonym, e.state, e.at, e.actor, e.purpose, e.key_shredded, e.deleted, e.kept)
            for e in r.erasures
        ),
    )
    lines += _section("restrictions")
    lines += _table(
        ("model", "collection", "restricted documents", "objections"),
        (
            (
                c.model,
                c.collection,
                c.restricted,
                ", ".join(f"{p} {n}" for p, n in sorted(c.objections.items())),
            )
            for c in r.restrictions
        ),
    )
    lines += _section("break-glass")
    lines += _table(
        ("at", "actor", "reason", "purpose", "operation", "model", "subjects", "outcome"),
        (
            (b.at, b.actor, b.reason, b.purpose, b.operation, b.model, b.subjects, b.outcome)
            for b in r.break_glass
        ),
    )
    t = r.timeline
    lines += _section("accesses")
    purposes = list(t.series)
    lines.append(f"Audited operations per {t.unit}: {t.total} in all.")
    lines.append("")
    if not t.total:
        lines.append("No audited operation in the trail.")
    else:
        lines += _table(
            (t.unit, *purposes),
            (
                (t.edges[i], *(t.series[p][i] for p in purposes))
                for i in range(max(len(t.edges) - 1, 0))
                if any(t.series[p][i] for p in purposes)
            ),
        )
    lines += _section("processing")
    register = r.processing.to_markdown().splitlines()[1:]  # its own title is the section's
    lines += ["#" + line if line.startswith("#") else line for line in register]
    single = [line for i, line in enumerate(lines) if line or i == 0 or lines[i - 1]]
    return "\n".join(single).rstrip() + "\n"
