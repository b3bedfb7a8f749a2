"""The ODM benchmark runs end to end in its quickest form and reports every ratio.

Not a timing assertion: one iteration of tiny counts on mongomock, in a fresh interpreter (the
harness defines Beanie and mongoengine classes and connections of its own), then the shape of
what it wrote.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from stress.odm import stats
from stress.odm.alternatives import ALTERNATIVES, PAIRS
from stress.odm.tasks import TASKS
from testkit.stress import run_stress


def test_percentiles_are_the_specs_nearest_rank() -> None:
    times = [float(t) for t in range(10, 0, -1)]  # 10 … 1, unsorted on purpose
    assert stats.percentile(times, 50) == 5.0  # int(10 * 50 / 100) - 1 = index 4
    assert stats.percentile(times, 10) == 1.0
    assert stats.percentile(times, 99) == 9.0  # int(9.9) - 1 = index 8
    assert stats.percentile([3.0], 10) == 3.0  # index -1 is the first
    summary = stats.summary([0.5, 0.25, 1.0], size_bytes=1_000_000)
    assert summary["median"] == 0.25  # int(3 * 0.5) - 1 = index 0
    assert summary["mb_per_s"] == pytest.approx(4.0)
    with pytest.raises(ValueError, match="no iteration"):
        stats.percentile([], 50)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], Path]:
    stem = tmp_path_factory.mktemp("bench") / "odm"
    run_stress("stress.odm", "--smoke", "--backend", "mongomock", "--out", str(stem))
    return json.loads(stem.with_suffix(".json").read_text()), stem


def test_every_task_of_every_alternative_is_measured_and_has_its_ratios(
    smoke: tuple[dict[str, object], Path],
) -> None:
    results, _ = smoke
    assert results["mode"] == "smoke"
    assert len(str(results["commit"])) == 40
    assert isinstance(results["dirty"], bool)
    assert {"cpus", "loadavg", "shared"} <= set(results["machine"])  # type: ignore[arg-type]
    tasks = results["backends"]["mongomock"]  # type: ignore[index]
    assert list(tasks) == [task.name for task in TASKS]
    names = {cls.name for cls in ALTERNATIVES}
    for name, task in tasks.items():
        assert set(task["alternatives"]) == names, name
        for alternative in task["alternatives"].values():
            assert len(alternative["times_s"]) == 1
            assert alternative["stats"]["median"] > 0
            assert {f"p{p}" for p in stats.PERCENTILES} <= set(alternative["stats"])
            assert alternative["stats"]["mb_per_s"] > 0
            assert alternative["round_trips_per_op"] >= 1, (name, alternative)
        assert set(task["ratios"]) == {f"{b}/{a}" for a, b in PAIRS}
        assert all(math.isfinite(r) and r > 0 for r in task["ratios"].values()), name


def test_the_wrapper_is_seen_doing_more_round_trips_than_native(
    smoke: tuple[dict[str, object], Path],
) -> None:
    # The counts come from the storage itself: a wrapped read also reads the identity row and
    # appends an audit record, so it can never take fewer round trips than the native one.
    tasks = smoke[0]["backends"]["mongomock"]  # type: ignore[index]
    for native, wrapped in PAIRS[:2]:
        trips = tasks["get_by_id"]["alternatives"]
        assert trips[wrapped]["round_trips_per_op"] > trips[native]["round_trips_per_op"]
        assert trips[native]["round_trips_per_op"] == 1


def test_the_table_names_every_task_and_the_commit(smoke: tuple[dict[str, object], Path]) -> None:
    results, stem = smoke
    table = stem.with_suffix(".md").read_text()
    assert str(results["commit"])[:12] in table
    for task in TASKS:
        assert task.title in table
    assert table.count("\u00d7**") == 3 * len(TASKS)  # the three ratios of every row
