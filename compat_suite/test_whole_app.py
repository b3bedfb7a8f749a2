"""A whole application's own tests, run as written and with only its imports rewritten.

``compat_suite/app/clinic`` is a mongoengine app with references, an embedded document, signals,
an aggregation, a unique e-mail and pagination, and its own test module. This copies it twice,
rewrites one copy's imports with ``privata_mongo.codemod`` (nothing else changes), runs each
copy's tests in a fresh interpreter on the backend, and compares: the same tests pass, and what
they observed is identical. On a server, the rewritten run's data is checked to be split: the
patients' collection holds no identity field.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pymongo

from privata_mongo.codemod import rewrite_source
from testkit.backends import Backend

APP = Path(__file__).parent / "app"
IDENTITY = {"first_name", "last_name", "email", "date_of_birth", "address"}


def _copy(target: Path, *, rewrite: bool) -> tuple[int, int]:
    shutil.copytree(APP, target)
    changed = scanned = 0
    for path in sorted(target.rglob("*.py")):
        if rewrite:
            result = rewrite_source(path.read_text(encoding="utf-8"))
            path.write_text(result.source, encoding="utf-8")
            changed += result.lines_changed
            scanned += result.lines_scanned
    return changed, scanned


def _run(app: Path, backend: Backend, *, keep: bool) -> tuple[dict[str, str], list[Any], str]:
    """Run the app's tests; their outcomes by name, their observations, pytest's output."""
    report = app / "report.xml"
    observations = app / "observations.jsonl"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "CLINIC_")) and key != "PYTHONPATH"
    }
    env |= {"PYTHONPATH": str(app), "CLINIC_OBSERVATIONS": str(observations)}
    if backend.uri:
        env["CLINIC_MONGODB_URI"] = backend.uri
    if keep:
        env["CLINIC_KEEP_DATABASES"] = "1"
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "pytest",
            "clinic/tests",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            "-W",
            "ignore::DeprecationWarning",
        ],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 - our own report
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[case.get("name", "?")] = "failed" if failed else "passed"
    lines = observations.read_text(encoding="utf-8").splitlines() if observations.exists() else []
    return outcomes, sorted((json.loads(line) for line in lines), key=json.dumps), done.stdout


def _drop_ids(value: Any) -> Any:
    """Observations without ObjectIds, which differ between two runs by construction."""
    if isinstance(value, dict):
        return {k: _drop_ids(v) for k, v in value.items() if k not in {"_id", "id"}}
    if isinstance(value, list):
        return [_drop_ids(v) for v in value]
    return value


def test_the_apps_own_tests_pass_unchanged_after_the_import_rewrite(
    backend: Backend, tmp_path: Path
) -> None:
    _copy(tmp_path / "native", rewrite=False)
    changed, scanned = _copy(tmp_path / "wrapped", rewrite=True)
    assert 0 < changed < scanned
    assert "privata_mongo.mongoengine" in (tmp_path / "wrapped/clinic/models.py").read_text()

    native, native_seen, native_out = _run(tmp_path / "native", backend, keep=False)
    wrapped, wrapped_seen, wrapped_out = _run(tmp_path / "wrapped", backend, keep=True)

    assert len(native) >= 12, native_out
    assert set(native.values()) == {"passed"}, native_out
    assert wrapped == native, wrapped_out
    assert len(wrapped_seen) == len(native_seen) >= 12
    assert _drop_ids(wrapped_seen) == _drop_ids(native_seen)

    if backend.uri:
        _assert_split_and_drop(backend.uri)


def _assert_split_and_drop(uri: str) -> None:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
    try:
        kept = [name for name in client.list_database_names() if name.startswith("clinic_")]
        rows = [row for name in kept for row in client[name]["patient"].find()]
        assert rows, "the rewritten app stored no patient"
        assert all(IDENTITY.isdisjoint(row) for row in rows)
        assert all("_pseudonym" in row for row in rows)
    finally:
        for name in kept:
            client.drop_database(name)
        client.close()
