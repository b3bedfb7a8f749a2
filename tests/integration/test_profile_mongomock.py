"""The embedded backend's profile runs end to end in its quickest form and counts what it claims.

Not a timing assertion: tiny counts in a fresh interpreter (the script defines mongoengine
classes and connections of its own), then what it wrote. The documents-examined counts are
mongomock's own work, so they are exact: a native get scans the clinical collection once, the
wrapped get the clinical and the identity collection once each.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from stress.profile_mongomock import PROFILED
from testkit.stress import run_stress

ROWS, OPS = 40, 4


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    stem = tmp_path_factory.mktemp("profile") / "profile-mongomock"
    run_stress(
        "stress.profile_mongomock",
        *("--rows", str(ROWS), "--ops", str(OPS), "--rounds", "1", "--out", str(stem)),
        timeout=300,
    )
    return json.loads(stem.with_suffix(".json").read_text()), stem.with_suffix(".md").read_text()


def test_every_operation_has_its_times_scans_and_profile(
    profiled: tuple[dict[str, Any], str],
) -> None:
    result, table = profiled
    assert len(result["commit"]) == 40
    assert result["commit"][:7] in table
    assert list(result["tasks"]) == list(PROFILED)
    for name, task in result["tasks"].items():
        assert task["ms"]["native"] > 0, name
        assert task["ms"]["wrapped"] > 0, name
        assert sum(task["profile"].values()) == pytest.approx(100, abs=1), name
        assert task["profile"]["mongomock"] > 0, name
        assert f"| {task['title']} |" in table


def test_a_wrapped_get_scans_the_identity_collection_as_well(
    profiled: tuple[dict[str, Any], str],
) -> None:
    examined = profiled[0]["tasks"]["get_by_id"]["examined"]
    clinical = examined["native"]["patient"]
    assert clinical >= ROWS
    assert examined["wrapped"]["patient"] == clinical
    assert examined["wrapped"]["patient__identity"] == clinical
    assert set(examined["native"]) == {"patient"}


def test_a_wrapped_insert_scans_no_collection_of_the_data(
    profiled: tuple[dict[str, Any], str],
) -> None:
    examined = profiled[0]["tasks"]["insert_one"]["examined"]
    assert examined["native"] == {}
    assert not {"patient", "patient__identity"} & set(examined["wrapped"])
