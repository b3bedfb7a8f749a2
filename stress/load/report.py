"""The Markdown summary of one level's JSON (``load-L<N>-<target>.md``)."""

from __future__ import annotations

from typing import Any

from stress.load.mix import (
    ERROR_LIMIT,
    P95_LIMIT_MS,
    RISE_FRACTION,
    STEP_SECONDS,
    STEP_USERS,
)


def _loads(result: dict[str, Any]) -> str:
    machine = result["machine"]
    start = ", ".join(f"{x:.2f}" for x in machine["loadavg"])
    end = ", ".join(f"{x:.2f}" for x in machine["loadavg_end"])
    shared = (
        " **The machine was shared** (load average above half the CPUs)."
        if machine["shared"]
        else ""
    )
    return f"{machine['cpus']} CPUs, load average {start} at the start, {end} at the end.{shared}"


def cpu_ms_per_request(result: dict[str, Any]) -> float | None:
    """The server's CPU milliseconds (all workers) per successful request over the run."""
    served = result["summary"]["total"]["requests"] - result["summary"]["total"]["failures"]
    server = result["cpu_percent"].get("server")
    if not served or not server:
        return None
    return float(server) / 100 * result["duration_s"] * 1000 / served


def _cache(result: dict[str, Any]) -> str:
    if not result["cache"]:
        return "off"
    if result["cache_applied"]:
        counted = result.get("cache_stats") or {}
        if counted.get("hit_rate") is None:
            return str(result["cache"])
        return (
            f"{result['cache']}, hit rate {counted['hit_rate']:.1%} "
            f"({counted['hits']:,} hits, {counted['misses']:,} misses over "
            f"{counted['workers']} workers)"
        )
    return f"{result['cache']} requested; this version has no cache setting, so it ran without"


def _row(name: str, s: dict[str, Any]) -> str:
    return (
        f"| {name} | {s['requests']} | {s['failures']} | {s['error_rate']:.2%} | "
        f"{s['throughput']:.1f} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} |"
    )


def markdown(result: dict[str, Any]) -> str:
    """Tables of latencies, errors and throughput, CPU, the audit check, steps and chaos."""
    c = result["commit"]
    lines = [
        f"# Load level {result['level']}, {result['target']}",
        "",
        f"Commit `{c['commit'][:12]}`{' (tree dirty)' if c['dirty'] else ''}, started "
        f"{result['started']}, {result['duration_s']} s, server: uvicorn with "
        f"{result['server_workers']} workers on FerretDB v1.24; locust on the same machine. "
        + _loads(result),
        "",
        f"Offered rate: {result['offered_rate'] or 'steps'} req/s; cache: {_cache(result)}.",
        "",
        "| requests | n | failures | errors | throughput (req/s) | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|",
        _row("**all**", result["summary"]["total"]),
    ]
    lines += [_row(k, s) for k, s in result["summary"]["kinds"].items()]
    cpu = result["cpu_percent"]
    lines += [
        "",
        "CPU over the run (100 % = one core): "
        + ", ".join(f"{k} {v} %" for k, v in cpu.items() if k != "machine")
        + f"; the whole machine {cpu.get('machine', 0)} % busy.",
    ]
    if per := cpu_ms_per_request(result):
        lines += [
            "",
            f"Server CPU per successful request: {per:.1f} ms, so one core of the server "
            f"sustains about {1000 / per:.0f} req/s of this mix when nothing else limits it.",
        ]
    if result.get("server_exceptions"):
        found = ", ".join(f"`{k}` {v}" for k, v in result["server_exceptions"].items())
        lines += ["", f"Exceptions in the server's log, by type: {found}."]
    audit = result.get("audit")
    if audit:
        per = ", ".join(f"{k} {v}" for k, v in audit["records_per_request"].items())
        lines += [
            "",
            "## Audit records == operations",
            "",
            f"Records per request, as the probe measured them on this server: {per}.",
            "",
            f"- audit records: {audit['records']} = {audit['records_of_successful_requests']} "
            f"of the {audit['requests_ok']} successful requests (expected "
            f"{audit['expected_records_of_successful_requests']}) + "
            f"{audit['records_of_failed_requests']} of failed requests + "
            f"{audit['records_of_probe_requests']} of the probe + "
            f"{audit['records_of_requests_in_flight_at_stop']} of requests still in flight "
            "when locust stopped;",
            f"- lost: {audit['lost']}, duplicated: {audit['duplicated']} — "
            f"**{'holds' if audit['holds'] else 'does not hold'}**"
            + (
                f" (mismatched: {audit['mismatched_requests']})"
                if audit["mismatched_requests"]
                else ""
            )
            + ".",
        ]
    if after := result.get("audit_after_sweep"):
        sweep = after["sweep"]
        lines += [
            "",
            f"{len(sweep['pending_request_ids'])} intents were still pending after the run (writes "
            "whose outcome record could not be stored while the database was away: the change "
            "was applied and answered, the record left to the recovery sweeper). After "
            f"`privata_mongo.recovery.sweep` ({sweep['intents_resolved']} intents resolved, "
            f"{sweep['orphans_removed']} orphans removed, {sweep['intents_left']} left): "
            f"{after['records']} records, lost {after['lost']}, duplicated "
            f"{after['duplicated']} — **{'holds' if after['holds'] else 'does not hold'}**.",
        ]
    if result.get("steps"):
        lines += [
            "",
            "## Steps",
            "",
            f"{STEP_USERS} more users (req/s offered) every {STEP_SECONDS} s, each step judged on "
            f"its last {STEP_SECONDS - 5} s; it breaks when p95 exceeds "
            f"{result.get('p95_limit_ms', P95_LIMIT_MS):.0f} ms, "
            f"errors exceed {ERROR_LIMIT:.0%}, or throughput rises by less than "
            f"{RISE_FRACTION:.0%} of the rate the step added.",
            "",
            "| step | users | req/s | p50 ms | p95 ms | errors | server CPU % | FerretDB CPU % | "
            "locust CPU % | machine busy % | broken by |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in result["steps"]:
            cpu = s.get("cpu_percent", {})
            lines.append(
                f"| {s['step']} | {s['users']} | {s['throughput']:.1f} | {s['p50_ms']:.0f} | "
                f"{s['p95_ms']:.0f} | {s['error_rate']:.2%} | {cpu.get('server', '-')} | "
                f"{cpu.get('ferretdb', '-')} | {cpu.get('locust', '-')} | "
                f"{cpu.get('machine', '-')} | {'; '.join(s['broken_by']) or '-'} |"
            )
    if result.get("profile"):
        p = result["profile"]
        lines += [
            "",
            f"## Profile ({p['workers']} workers: {p['seconds']} s of own time outside epoll, "
            f"{p.get('waiting_s', 0)} s idle in epoll; cProfile's clock is the wall clock, so "
            "a call blocked in the kernel counts its wait)",
            "",
            "| where | share of the workers' own time outside epoll |",
            "|---|---|",
            *[f"| {k} | {v:.1%} |" for k, v in p["share"].items()],
            "",
            "| own time (s) | function |",
            "|---|---|",
            *[f"| {t['tottime_s']} | `{t['function']}` |" for t in p["top"]],
        ]
    if result.get("chaos"):
        ch = result["chaos"]
        lines += [
            "",
            "## Chaos",
            "",
            f"FerretDB{' and Redis' if result['cache'] else ''} stopped at {ch['stopped_at_s']} s, "
            f"back at {ch['restarted_at_s']} s ({ch['outage_s']} s down). Requests started during "
            f"the outage: {ch['requests_started_during_outage']}, of which failed: "
            f"{ch['failures_started_during_outage']}; failures after the restart: "
            f"{ch['failures_after_restart']}. First clean second (no failure, p95 within twice "
            f"the {ch['median_p95_before_ms']} ms before): "
            f"{ch['recovered_s_after_restart']} s after the restart.",
        ]
    return "\n".join(lines) + "\n"
