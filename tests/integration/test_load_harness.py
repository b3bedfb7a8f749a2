"""The load, memory and scale harnesses (stress/load, stress/memory.py, stress/scale.py).

Not timing assertions: the harnesses' logic on made-up requests (the audit join, the breaking
condition, the recovery after an outage), their output's shape on tiny counts, and one short
load run on a FerretDB of its own, whose audit records must match its requests one for one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from compat_suite.requirements import requires
from stress.load.mix import STEP_USERS, broken
from stress.load.run import audit_check, per_second, recovery, summarise

ROOT = Path(__file__).resolve().parents[2]
PROBES = {
    "create": "probe-create-1",
    "read": "probe-read-1",
    "update": "probe-update-1",
    "update_identity": "probe-update_identity-1",
}


def _event(
    kind: str, rid: str, ok: bool = True, t: float = 0.0, ms: float = 10.0
) -> dict[str, Any]:
    return {"t": t, "kind": kind, "rid": rid, "status": 200 if ok else 500, "ok": ok, "ms": ms}


def _rows(*rids: str) -> list[dict[str, Any]]:
    return [{"request_id": rid, "operation": "read"} for rid in rids]


def test_the_audit_check_counts_records_per_request_as_the_probe_measured() -> None:
    probe_rows = _rows(
        "probe-create-1", "probe-read-1", *["probe-update-1"] * 3, *["probe-update_identity-1"] * 3
    )
    events = [
        _event("create", "create-a"),
        _event("read", "read-b"),
        _event("update", "update-c"),
        _event("read", "read-failed", ok=False),
    ]
    rows = probe_rows + _rows("create-a", "read-b", *["update-c"] * 3, "read-failed", "in-flight")
    check = audit_check(events, rows, PROBES)
    assert check["holds"]
    assert check["records_per_request"] == {
        "create": 1,
        "read": 1,
        "update": 3,
        "update_identity": 3,
    }
    assert check["expected_records_of_successful_requests"] == 5
    assert check["records_of_failed_requests"] == 1
    assert check["records_of_requests_in_flight_at_stop"] == 1
    assert check["records_of_probe_requests"] == 8
    assert check["records"] == 5 + 1 + 1 + 8


def test_the_audit_check_finds_a_lost_and_a_duplicated_record() -> None:
    probe_rows = _rows("probe-create-1", "probe-read-1", *["probe-update-1"] * 3)
    events = [_event("create", "create-a"), _event("read", "read-b"), _event("update", "update-c")]
    rows = probe_rows + _rows("create-a", "create-a", *["update-c"] * 2)  # read-b has none
    check = audit_check(events, rows, PROBES)
    assert not check["holds"]
    assert (check["lost"], check["duplicated"]) == (2, 1)
    assert check["mismatched_requests"] == {"create": 1, "read": 1, "update": 1}


def test_a_step_breaks_on_latency_errors_or_a_flat_throughput() -> None:
    calm = {"p95_ms": 50.0, "error_rate": 0.0, "throughput": 20.0}
    assert broken(calm, None) == []
    assert broken(calm, {"throughput": 20.0 - STEP_USERS}) == []
    assert broken(calm | {"p95_ms": 201.0}, None) == ["p95 201 ms > 200 ms"]
    assert broken(calm | {"error_rate": 0.02}, None) == ["errors 2.0% > 1%"]
    (flat,) = broken(calm, {"throughput": 19.5})
    assert flat.startswith("throughput 20.0 req/s after 19.5")


def test_the_summary_and_the_recovery_from_an_outage() -> None:
    events = [_event("read", f"r{s}", t=100.0 + s, ms=10.0) for s in range(10)]
    events += [_event("read", f"x{s}", ok=False, t=100.0 + s, ms=5000.0) for s in (4, 5)]
    events += [_event("read", "slow", t=107.2, ms=900.0)]
    total = summarise(events, seconds=10.0)["total"]
    assert (total["requests"], total["failures"]) == (13, 2)
    assert total["throughput"] == pytest.approx(1.1)
    assert total["p50_ms"] == 10.0
    timeline = per_second(events, origin=100.0)
    assert [s["failures"] for s in timeline] == [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    marks = {"stopped": 104.0, "restarted": 106.0}
    found = recovery(timeline, marks, origin=100.0)
    assert found["failures_started_during_outage"] == 2
    assert found["failures_after_restart"] == 0
    assert found["recovered_s_after_restart"] == 0.0  # second 7 is slow, second 6 is clean


def test_the_native_twin_serves_the_examples_patient_routes_without_privata() -> None:
    script = (
        "import sys, json\n"
        "import stress.load.native_app as twin\n"
        "twin_routes = sorted((r.path, sorted(r.methods)) for r in twin.app.routes\n"
        "    if r.path.startswith('/patients'))\n"
        "print(json.dumps({'privata': any(m.startswith('privata_mongo') for m in sys.modules),\n"
        "    'routes': twin_routes}))\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, our module
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    twin = json.loads(done.stdout)
    assert twin["privata"] is False
    from examples.fastapi_app.app import create_app

    rights = ("/erase", "/rectify", "/restrict", "/object/")
    example = sorted(
        [r.path, sorted(r.methods)]
        for r in create_app().routes
        if r.path.startswith("/patients") and not any(p in r.path for p in rights)
    )
    assert twin["routes"] == example


def _run(module: str, *args: str) -> None:
    subprocess.run(  # noqa: S603 - this repository's module, fixed arguments
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )


def test_the_memory_run_reports_its_growth(tmp_path: Path) -> None:
    stem = tmp_path / "memory"
    _run("stress.memory", "--cycles", "30", "--warmup", "10", "--prune", "10", "--out", str(stem))
    result = json.loads(stem.with_suffix(".json").read_text())
    assert (result["cycles"], result["warmup"]) == (30, 10)
    assert result["baseline_bytes"] > 0
    growth = (result["final_bytes"] - result["baseline_bytes"]) / result["baseline_bytes"]
    assert result["growth"] == pytest.approx(growth, abs=1e-4)
    assert result["holds"] == (result["growth"] < 0.10)
    assert [m["cycle"] for m in result["marks"]] == [10, 20, 30]
    assert result["documents_left"]["memory.patients"] == 0  # every cycle deleted its patient
    assert "Memory" in stem.with_suffix(".md").read_text()


def test_the_scale_run_reports_each_size(tmp_path: Path) -> None:
    stem = tmp_path / "scale"
    _run(
        "stress.scale",
        *("--backend", "mongomock", "--sizes", "20", "40", "--ops", "10", "--out", str(stem)),
    )
    result = json.loads(stem.with_suffix(".json").read_text())
    sizes = result["backends"]["mongomock"]
    assert list(sizes) == ["20", "40"]
    for size, entry in sizes.items():
        for name in ("mongoengine", "privata.mongoengine"):
            measured = entry["measured"][name]
            assert measured["insert"]["n"] == measured["get"]["n"] == 10
            assert measured["get"]["median_ms"] > 0
            # the seed, then the measured inserts on top of it
            assert entry["stored"][name]["patients"] >= int(size) + 10
        # one data key per wrapped subject (and the blind index key)
        wrapped = entry["stored"]["privata.mongoengine"]
        assert wrapped["key_vault"] >= wrapped["patients"]
    assert "| 40 |" in stem.with_suffix(".md").read_text()


@pytest.fixture(scope="module")
def level_one(backend_name: str, tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Six seconds of level 1 against both apps, on a FerretDB of the harness's own."""
    if backend_name != "ferretdb":
        return None
    out = tmp_path_factory.mktemp("load")
    _run("stress.load", "--level", "1", "--target", "both", "--duration", "6", "--out", str(out))
    return out


@requires("server_process")
def test_a_short_level_reports_both_targets_and_audits_every_request(
    level_one: Path | None,
) -> None:
    assert level_one is not None, "no FerretDB of our own in this run (see the xfail reason)"
    for target in ("wrapped", "native"):
        for suffix in (".json", ".md", ".html", "_stats.csv", "_stats_history.csv"):
            assert (level_one / f"load-L1-{target}{suffix}").exists(), (target, suffix)
        result = json.loads((level_one / f"load-L1-{target}.json").read_text())
        total = result["summary"]["total"]
        assert total["requests"] > 0
        assert total["p50_ms"] <= total["p95_ms"] <= total["p99_ms"]
        assert set(result["summary"]["kinds"]) >= {"create", "read"}
        assert result["cpu_percent"]["server"] > 0
    wrapped = json.loads((level_one / "load-L1-wrapped.json").read_text())["audit"]
    assert wrapped["holds"], wrapped
    assert wrapped["records_of_successful_requests"] > 0
    assert all(n >= 1 for n in wrapped["records_per_request"].values())
    assert json.loads((level_one / "load-L1-native.json").read_text())["audit"] is None
