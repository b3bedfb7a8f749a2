"""Every exemption from ruff's bandit rules (S) says why, next to the code it exempts."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOQA = re.compile(r"#\s*noqa:\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)(?P<rest>.*)$")
SKIPPED = {".venv", ".git", ".privata", "node_modules"}


def _sources() -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED]
        found.extend(Path(folder, f) for f in files if f.endswith(".py"))
    return found


def _unexplained(text: str) -> list[int]:
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        found = NOQA.search(line)
        if found is None:
            continue
        codes = re.split(r"\s*,\s*", found["codes"])
        if any(c.startswith("S") for c in codes) and not found["rest"].strip(" -:"):
            lines.append(number)
    return lines


def test_the_check_tells_a_reason_from_none() -> None:
    assert _unexplained("run(x)  # noqa: S603\nrun(y)  # noqa: S603 - fixed arguments\n") == [1]
    assert _unexplained("x = 1  # noqa: E501\nexec(c)  # noqa: F401, S102 -\n") == [2]


def test_every_bandit_exemption_states_its_reason() -> None:
    missing = {
        str(p.relative_to(ROOT)): lines
        for p in _sources()
        if (lines := _unexplained(p.read_text(encoding="utf-8")))
    }
    assert missing == {}
