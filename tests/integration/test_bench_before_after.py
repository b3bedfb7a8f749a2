"""The before/after benchmark runs an earlier library under this checkout's benchmark.

Not a timing assertion: one smoke round per side on mongomock, then what the comparison says
about its own inputs.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from stress.odm import before_after
from stress.odm.alternatives import PAIRS
from stress.odm.tasks import TASKS
from testkit.stress import run_stress

BEFORE_CACHE = "6c2cac4"
"""A commit whose library has no cache (``privata_mongo.cache_stats`` came later)."""


def _run(ratios: dict[str, float], trips: float) -> dict[str, Any]:
    wrapped = {pair.split("/")[0] for pair in ratios}
    return {
        "backends": {
            "mongomock": {
                "get_by_id": {
                    "title": "get by id",
                    "ratios": ratios,
                    "alternatives": {
                        name: {"median_per_op_ms": 2.0, "round_trips_per_op": trips}
                        for name in wrapped
                    },
                }
            }
        }
    }


def test_the_change_is_the_after_median_ratio_over_the_before_one() -> None:
    pair = "privata.mongoengine/mongoengine"
    rounds = {
        "before": [_run({pair: r}, 5.0) for r in (4.0, 8.0, 6.0)],
        "after": [_run({pair: r}, 3.0) for r in (3.0, 1.0, 2.0)],
    }
    row = before_after.compare(rounds)["mongomock"]["get_by_id"]["pairs"][pair]
    assert row["before"]["ratio"] == 6.0
    assert row["after"]["ratio"] == 2.0
    assert row["change"] == pytest.approx(1 / 3)
    assert (row["before"]["round_trips"], row["after"]["round_trips"]) == (5.0, 3.0)
    assert row["before"]["ratios"] == [4.0, 8.0, 6.0]


def test_an_unknown_commit_is_refused_before_anything_runs() -> None:
    with pytest.raises(subprocess.CalledProcessError):
        before_after.resolve("no-such-commit-anywhere")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    stem = tmp_path_factory.mktemp("before-after") / "ba"
    run_stress(
        "stress.odm.before_after",
        *("--before", BEFORE_CACHE, "--smoke", "--backend", "mongomock", "--rounds", "1"),
        *("--out", str(stem)),
    )
    result: dict[str, Any] = json.loads(stem.with_suffix(".json").read_text())
    result["page"] = stem.with_suffix(".md").read_text()
    return result


def test_each_side_ran_its_own_library_under_the_same_benchmark(smoke: dict[str, Any]) -> None:
    assert smoke["before"].startswith(BEFORE_CACHE)
    assert smoke["before"] != smoke["after"]
    before, after = smoke["raw"]["before"][0], smoke["raw"]["after"][0]
    # Only the later library counts cache hits: each side imported its own privata_mongo.
    assert before["backends"]["mongomock"]["get_by_id"]["cache"] is None
    assert after["backends"]["mongomock"]["get_by_id"]["cache"] is not None
    assert list(before["backends"]["mongomock"]) == list(after["backends"]["mongomock"])


def test_every_task_and_pair_has_both_sides_and_a_row(smoke: dict[str, Any]) -> None:
    tasks = smoke["backends"]["mongomock"]
    assert list(tasks) == [task.name for task in TASKS]
    for task in tasks.values():
        assert set(task["pairs"]) == {f"{b}/{a}" for a, b in PAIRS}
        for row in task["pairs"].values():
            assert row["change"] == pytest.approx(row["after"]["ratio"] / row["before"]["ratio"])
            assert f"**{row['change']:.2f}**" in smoke["page"]
