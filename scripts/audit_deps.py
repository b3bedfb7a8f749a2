"""The dependency audit of the test command: pip-audit over the project's virtualenv.

pip-audit answers "No known vulnerabilities found" and exits 0 even when it could not audit a
single package (every one "not found" by a vulnerability service that is unreachable or
filtered), so its exit code alone would turn an audit that did not happen into a pass. This
script runs it with JSON output and judges the report itself:

- a reported vulnerability that is not on the accepted list fails the step (exit 1);
- an accepted advisory (``[[tool.privata.dependency_audit.ignore]]`` in ``pyproject.toml``,
  each with a ``reason`` and an ``expires`` date) is printed and does not fail it; an entry
  without a reason, or past its date, fails the step, so an acceptance is never silent or
  forever;
- when no service audited any package, the step says so plainly and passes, unless
  ``PRIVATA_AUDIT_REQUIRED=1`` (a machine that does reach a service can insist on it).

Services are tried in order: PyPI's JSON API, then OSV. Run it as ``.venv/bin/python
scripts/audit_deps.py`` (``scripts/test.sh`` does).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("pypi", "osv")


@dataclass(frozen=True)
class Accepted:
    """One accepted advisory: its id (or an alias of it), why, and until when."""

    id: str
    reason: str
    expires: dt.date


@dataclass(frozen=True)
class Finding:
    """One vulnerability pip-audit reported for one installed package."""

    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fix_versions: tuple[str, ...]


@dataclass
class Verdict:
    """What one service's report means for the step."""

    audited: int = 0
    skipped: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    accepted: list[tuple[Finding, Accepted]] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        """Whether the service audited at least one package."""
        return self.audited > 0


def load_accepted(config: Mapping[str, Any], today: dt.date) -> list[Accepted]:
    """Read the accepted advisories; an entry without a reason or past its date is an error."""
    table = config.get("tool", {}).get("privata", {}).get("dependency_audit", {})
    accepted: list[Accepted] = []
    problems: list[str] = []
    for entry in table.get("ignore", []):
        ident = str(entry.get("id", "")).strip()
        reason = str(entry.get("reason", "")).strip()
        expires = entry.get("expires")
        if not ident:
            problems.append("an accepted advisory has no id")
            continue
        if not reason:
            problems.append(f"accepted advisory {ident} has no reason")
        if not isinstance(expires, dt.date):
            problems.append(f"accepted advisory {ident} has no expires date (YYYY-MM-DD)")
        elif expires < today:
            problems.append(f"accepted advisory {ident} expired on {expires}: review it again")
        if reason and isinstance(expires, dt.date):
            accepted.append(Accepted(ident, reason, expires))
    if problems:
        raise ValueError("; ".join(problems))
    return accepted


def judge(report: Mapping[str, Any], accepted: Iterable[Accepted]) -> Verdict:
    """Sort a pip-audit JSON report into audited, skipped, reported and accepted."""
    by_id = {a.id: a for a in accepted}
    verdict = Verdict()
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            verdict.skipped.append(str(dep.get("name")))
            continue
        verdict.audited += 1
        for vuln in dep.get("vulns", []):
            finding = Finding(
                package=str(dep["name"]),
                version=str(dep.get("version", "?")),
                id=str(vuln["id"]),
                aliases=tuple(str(a) for a in vuln.get("aliases", [])),
                fix_versions=tuple(str(v) for v in vuln.get("fix_versions", [])),
            )
            match = next((by_id[i] for i in (finding.id, *finding.aliases) if i in by_id), None)
            if match is None:
                verdict.findings.append(finding)
            else:
                verdict.accepted.append((finding, match))
    return verdict


def run_pip_audit(service: str) -> tuple[Mapping[str, Any] | None, str]:
    """Run pip-audit against one service; (report, "") or (None, why it gave no report)."""
    command: Sequence[str] = (
        sys.executable,
        "-m",
        "pip_audit",
        "--local",
        "--skip-editable",
        "--progress-spinner",
        "off",
        "--vulnerability-service",
        service,
        "--timeout",
        "15",
        "--format",
        "json",
    )
    done = subprocess.run(  # noqa: S603 - this interpreter and a fixed argument list, no shell
        command, capture_output=True, text=True, check=False, timeout=600
    )
    try:
        return json.loads(done.stdout), ""
    except json.JSONDecodeError:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return None, lines[-1] if lines else f"pip-audit exited {done.returncode}"


def main() -> int:
    """Audit the environment and print one verdict; the exit code fails CI only for a finding."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    try:
        accepted = load_accepted(config, dt.date.today())
    except ValueError as exc:
        print(f"dependency audit: the accepted-advisory list is invalid: {exc}")
        return 1
    unreachable: list[str] = []
    for service in SERVICES:
        report, why = run_pip_audit(service)
        if report is None:
            unreachable.append(f"{service}: {why}")
            continue
        verdict = judge(report, accepted)
        if not verdict.answered:
            unreachable.append(
                f"{service}: answered for none of {len(verdict.skipped)} packages"
                " (every one skipped as not found)"
            )
            continue
        return report_verdict(service, verdict)
    print("dependency audit: NOT DONE - no vulnerability service was reachable from here")
    for line in unreachable:
        print(f"  {line}")
    if os.environ.get("PRIVATA_AUDIT_REQUIRED") == "1":
        print("  PRIVATA_AUDIT_REQUIRED=1: failing")
        return 1
    print("  (not a failure on its own; set PRIVATA_AUDIT_REQUIRED=1 to make it one)")
    return 0


def report_verdict(service: str, verdict: Verdict) -> int:
    """Print what one answering service found; 1 when an unaccepted vulnerability remains."""
    print(f"dependency audit ({service}): {verdict.audited} packages audited")
    if verdict.skipped:
        print(f"  not audited ({len(verdict.skipped)}): {', '.join(sorted(verdict.skipped))}")
    for finding, why in verdict.accepted:
        print(
            f"  accepted until {why.expires}: {finding.package} {finding.version} {finding.id}"
            f" - {why.reason}"
        )
    for finding in verdict.findings:
        fixes = ", ".join(finding.fix_versions) or "no fixed version"
        aliases = f" ({', '.join(finding.aliases)})" if finding.aliases else ""
        print(f"  VULNERABLE: {finding.package} {finding.version} {finding.id}{aliases}: {fixes}")
    if verdict.findings:
        print(f"dependency audit: {len(verdict.findings)} unaccepted vulnerabilities")
        return 1
    print("dependency audit: no unaccepted vulnerability")
    return 0


if __name__ == "__main__":
    sys.exit(main())
