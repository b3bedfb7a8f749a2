"""Paths the documentation names exist: a compliance map citing a missing test proves nothing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITED = re.compile(
    r"`((?:tests|stress|examples|scripts|testkit|compat_suite|privata_mongo)/[\w./-]+\.(?:py|sh|md))`"
)


def test_every_file_the_docs_cite_exists() -> None:
    missing = {
        f"{page.name}: {path}"
        for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        for path in CITED.findall(page.read_text(encoding="utf-8"))
        if not (ROOT / path).exists()
    }
    assert not missing, sorted(missing)


def test_the_compliance_map_cites_tests() -> None:
    cited = CITED.findall((ROOT / "docs" / "compliance.md").read_text(encoding="utf-8"))
    assert len([p for p in cited if p.startswith("tests/")]) >= 25
