"""The iteration-memory benchmark runs end to end on mongomock and reports what it measured.

Not a memory assertion: 200 documents, in a fresh interpreter, then the shape of the results
and that each alternative iterated every document it was seeded with.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_each_alternative_iterates_every_seeded_document(tmp_path: Path) -> None:
    stem = tmp_path / "iterate"
    subprocess.run(  # noqa: S603 - this repository's module, fixed arguments
        [
            sys.executable,
            "-m",
            "stress.iterate_memory",
            "--backend",
            "mongomock",
            "--sizes",
            "200",
            "--out",
            str(stem),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    result = json.loads(stem.with_suffix(".json").read_text())
    iterated = result["backends"]["mongomock"]["200"]["iterated"]
    assert set(iterated) == {"mongoengine", "privata.mongoengine"}
    for measured in iterated.values():
        assert measured["documents"] == 200
        assert measured["peak_mib"] >= measured["kept_mib"] >= 0
    assert "| 200 |" in stem.with_suffix(".md").read_text()
