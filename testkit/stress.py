"""A ``stress`` benchmark run as its users run it, for the tests that check what it writes.

In a fresh interpreter (the benchmarks define ODM classes and connections of their own), from
the repository's root, failing the test if the module exits non-zero.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["ROOT", "run_stress"]

ROOT = Path(__file__).resolve().parents[1]


def run_stress(module: str, *args: str, timeout: float = 600) -> None:
    """``python -m <module> *args``; raises ``CalledProcessError`` (with its output) on failure."""
    subprocess.run(  # noqa: S603 - this repository's module, arguments from the tests
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=timeout,
    )
