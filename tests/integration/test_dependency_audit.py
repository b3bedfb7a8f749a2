"""The dependency audit step judges pip-audit's report itself (scripts/audit_deps.py)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 12, 1)


@pytest.fixture(scope="module")
def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "scripts" / "audit_deps.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit_deps"] = module
    spec.loader.exec_module(module)
    return module


def _report(*deps: dict[str, Any]) -> dict[str, Any]:
    return {"dependencies": list(deps), "fixes": []}


def _ignore(**entry: Any) -> dict[str, Any]:
    return {"tool": {"privata": {"dependency_audit": {"ignore": [entry]}}}}


VULN = {"id": "PYSEC-2099-1", "aliases": ["GHSA-aaaa-bbbb-cccc"], "fix_versions": ["2.0"]}


def test_a_reported_vulnerability_is_a_finding(audit: ModuleType) -> None:
    verdict = audit.judge(
        _report(
            {"name": "lib", "version": "1.0", "vulns": [VULN]},
            {"name": "other", "version": "3.1", "vulns": []},
        ),
        [],
    )
    assert verdict.audited == 2
    assert [(f.package, f.id, f.fix_versions) for f in verdict.findings] == [
        ("lib", "PYSEC-2099-1", ("2.0",))
    ]
    assert audit.report_verdict("pypi", verdict) == 1


def test_an_accepted_advisory_matches_by_alias_and_does_not_fail(audit: ModuleType) -> None:
    accepted = audit.load_accepted(
        _ignore(id="GHSA-aaaa-bbbb-cccc", reason="only the CLI path", expires=dt.date(2027, 1, 1)),
        TODAY,
    )
    verdict = audit.judge(_report({"name": "lib", "version": "1.0", "vulns": [VULN]}), accepted)
    assert verdict.findings == []
    accepted_ids = [(f.id, a.reason) for f, a in verdict.accepted]
    assert accepted_ids == [("PYSEC-2099-1", "only the CLI path")]
    assert audit.report_verdict("pypi", verdict) == 0


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"id": "PYSEC-1", "expires": dt.date(2027, 1, 1)}, "has no reason"),
        ({"id": "PYSEC-1", "reason": "r"}, "has no expires date"),
        ({"id": "PYSEC-1", "reason": "r", "expires": dt.date(2026, 11, 30)}, "expired on"),
        ({"reason": "r", "expires": dt.date(2027, 1, 1)}, "has no id"),
    ],
)
def test_an_acceptance_needs_an_id_a_reason_and_a_future_date(
    audit: ModuleType, entry: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        audit.load_accepted(_ignore(**entry), TODAY)


def test_a_service_that_skipped_every_package_did_not_answer(audit: ModuleType) -> None:
    verdict = audit.judge(
        _report(
            {"name": "a", "skip_reason": "Dependency not found on PyPI and could not be audited"},
            {"name": "b", "skip_reason": "Dependency not found on PyPI and could not be audited"},
        ),
        [],
    )
    assert not verdict.answered
    assert verdict.skipped == ["a", "b"]


def test_the_project_list_of_accepted_advisories_is_valid(audit: ModuleType) -> None:
    config = audit.tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert all(a.reason for a in audit.load_accepted(config, dt.date.today()))
