"""One load level end to end: servers up, locust headless, the audit check, results written.

FerretDB (the pinned v1.24, SQLite, as ``testkit/ferretdb.py`` starts it) and, with the cache
switch, redis-server get a fresh state directory per run; the app runs under uvicorn with two
workers on loopback, so the server can use both cores. A sampler reads the CPU time of the
server's processes, FerretDB's and locust's from ``/proc`` every second: on a shared machine
that says who spent the cores when the latency rose. Level 5 stops FerretDB 20 s in, restarts
it on the same port with the same files 10 s later, and the Redis server likewise when the cache
is on.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient

from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
from stress.load.cache import CACHE_STATS_ENV, cache_supported, hit_rate
from stress.load.mix import LEVEL_RATES, STEP_SECONDS, new_patient
from stress.odm.run import commit, machine
from testkit.ferretdb import start_ferretdb
from testkit.redis import start_redis
from testkit.services import ServiceProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "stress" / "results"
APPS = {"wrapped": "stress.load.wrapped_app:served", "native": "stress.load.native_app:served"}
OUTAGE_AT = 20.0
OUTAGE_SECONDS = 10.0
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int:
    """User + system clock ticks of ``pid`` (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _machine_busy() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Sampler:
    """CPU % of each process group, once a second, in a background thread."""

    groups: dict[str, list[int]] = field(default_factory=dict)
    samples: list[dict[str, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _read(self) -> dict[str, float]:
        ticks: dict[str, float] = {}
        for name, roots in self.groups.items():
            pids = {p for root in roots for p in (root, *_children(root))}
            ticks[name] = float(sum(_cpu_ticks(p) for p in pids))
        busy, total = _machine_busy()
        return ticks | {"machine_busy": float(busy), "machine_total": float(total)}

    def _loop(self) -> None:
        before, at = self._read(), time.time()
        while not self._stop.wait(1.0):
            now, t = self._read(), time.time()
            span = t - at
            sample = {"t": t}
            for name in self.groups:
                # a restarted process starts from 0: count only what it spent since
                sample[name] = max(0.0, now[name] - before.get(name, 0.0)) / TICK / span * 100
            total = now["machine_total"] - before["machine_total"]
            sample["machine"] = (
                (now["machine_busy"] - before["machine_busy"]) / total * 100 if total else 0.0
            )
            self.samples.append(sample)
            before, at = now, t

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def mean(self, since: float, until: float) -> dict[str, float]:
        """Mean CPU % per group over ``[since, until)`` (100 = one core; machine: % of all)."""
        chosen = [s for s in self.samples if since <= s["t"] < until]
        if not chosen:
            return {}
        keys = [*self.groups, "machine"]
        return {k: round(sum(s[k] for s in chosen) / len(chosen), 1) for k in keys}


@contextlib.contextmanager
def _uvicorn(app: str, env: dict[str, str], workers: int, log: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    stderr = log.open("wb")
    process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stderr=stderr,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"uvicorn {app} did not come up (exit {process.poll()})")
            time.sleep(0.3)
        time.sleep(2.0)  # the second worker finishes its lifespan
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        stderr.close()


EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Failure|Timeout|Unavailable))\b")


def server_errors(log: Path) -> dict[str, int]:
    """The exceptions the server's tracebacks end with, by type (their messages are left out)."""
    found: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        if match := EXCEPTION_LINE.match(line):
            found[match.group(1)] += 1
    return dict(found.most_common())


PROBES = ("create", "read", "list", "by_email", "update", "update_identity", "visit", "delete")
HEADERS = {"X-Actor": "front-desk", "X-Purpose": "treatment", "X-Legal-Basis": "art9-2h"}


def _probe(url: str) -> dict[str, str]:
    """One request of each kind (both kinds of update), with known request ids."""
    rids = {kind: f"probe-{kind}-{os.urandom(8).hex()}" for kind in PROBES}
    body = new_patient()

    def call(kind: str, method: str, path: str, payload: Any = None) -> Any:
        response = httpx.request(
            method,
            url + path,
            json=payload,
            headers=HEADERS | {"X-Request-Id": rids[kind]},
            timeout=30,
        )
        response.raise_for_status()
        return response.json() if response.status_code != 204 else None

    patient = call("create", "POST", "/patients", body)["id"]
    call("read", "GET", f"/patients/{patient}")
    call("list", "GET", "/patients?limit=20")
    call("by_email", "GET", f"/patients?email={body['email']}")
    call("update", "PATCH", f"/patients/{patient}", {"allergies": ["latex"]})
    call("update_identity", "PATCH", f"/patients/{patient}", {"phone": "+44 20 1234 0000"})
    call(
        "visit",
        "POST",
        f"/patients/{patient}/visits",
        {"at": "2026-12-01T10:00:00Z", "reason": "x"},
    )
    call("delete", "DELETE", f"/patients/{patient}")
    return rids


def _audit_rows(uri: str) -> list[dict[str, Any]]:
    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=20_000)
    try:
        collection = client["clinic"]["privata_audit"]
        projection = {"_id": 0, "request_id": 1, "operation": 1, "outcome": 1, "model": 1}
        return list(collection.find({"operation": {"$exists": True}}, projection))
    finally:
        client.close()


def _pending(uri: str) -> list[str]:
    """Request ids of the intents still in the journals (``<collection>.pending``)."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=20_000)
    try:
        database = client["clinic"]
        return [
            str(doc.get("request_id"))
            for name in database.list_collection_names()
            if name.endswith(".pending")
            for doc in database[name].find({}, {"request_id": 1})
        ]
    finally:
        client.close()


def _sweep(uri: str, master_key: str) -> dict[str, Any]:
    """Run privata's recovery sweeper over the app's database, as an operator would after an
    incident: it appends the records of writes whose outcome record could not be stored."""
    os.environ[MASTER_KEY_ENV] = master_key
    from privata_mongo.recovery import sweep

    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=20_000)
    try:
        report = sweep(client["clinic"], older_than=0.0)
        return {
            "intents_resolved": report.intents_resolved,
            "orphans_removed": report.orphans_removed,
            "rows_completed": report.rows_completed,
            "intents_left": report.intents_left,
        }
    finally:
        client.close()


def audit_check(
    events: list[dict[str, Any]], rows: list[dict[str, Any]], probes: dict[str, str]
) -> dict[str, Any]:
    """Audit records joined to the requests by request id.

    Each kind of request makes a fixed number of audited operations (the probe measured it
    on this server: an update is read, update, read again); a successful request must have
    exactly that many records. ``lost`` and ``duplicated`` count the differences; records of
    failed requests and of requests still in flight when locust stopped are listed apart.
    """
    by_rid = Counter(row.get("request_id") for row in rows)
    per_kind = {kind: by_rid[rid] for kind, rid in probes.items()}
    operations = Counter(
        (row.get("request_id", "").split("-", 1)[0], row.get("operation")) for row in rows
    )
    expected = lost = duplicated = 0
    mismatched: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    origin = min((e["t"] for e in events), default=0.0)
    failed_records = 0
    seen = set(probes.values())
    for event in events:
        seen.add(event["rid"])
        got = by_rid[event["rid"]]
        if not event["ok"]:
            failed_records += got
            continue
        want = per_kind["update"] if event["kind"] == "update" else per_kind[event["kind"]]
        expected += want
        lost += max(0, want - got)
        duplicated += max(0, got - want)
        if got != want:
            mismatched[event["kind"]] += 1
            if len(examples) < 20:
                examples.append(
                    {
                        "kind": event["kind"],
                        "rid": event["rid"],
                        "started_s": round(event["t"] - origin, 2),
                        "ms": round(event["ms"], 1),
                        "records": got,
                        "expected": want,
                    }
                )
    unknown = sum(n for rid, n in by_rid.items() if rid not in seen)
    successful = sum(1 for e in events if e["ok"])
    return {
        "records": len(rows),
        "requests_ok": successful,
        "records_per_request": per_kind,
        "expected_records_of_successful_requests": expected,
        "records_of_successful_requests": expected - lost + duplicated,
        "lost": lost,
        "duplicated": duplicated,
        "mismatched_requests": dict(mismatched),
        "mismatches": examples,
        "records_of_failed_requests": failed_records,
        "records_of_probe_requests": sum(per_kind.values()),
        "records_of_requests_in_flight_at_stop": unknown,
        "holds": lost == 0 and duplicated == 0,
        "operations": {f"{kind}:{op}": n for (kind, op), n in sorted(operations.items())},
    }


def _rank(times: list[float], p: float) -> float:
    return times[max(0, int(len(times) * p) - 1)] if times else 0.0


def summarise(events: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """p50/p95/p99, errors and throughput, overall and per kind of request."""

    def stats(chosen: list[dict[str, Any]]) -> dict[str, Any]:
        times = sorted(e["ms"] for e in chosen)
        failed = sum(1 for e in chosen if not e["ok"])
        return {
            "requests": len(chosen),
            "failures": failed,
            "error_rate": failed / len(chosen) if chosen else 0.0,
            "throughput": (len(chosen) - failed) / seconds if seconds else 0.0,
            "p50_ms": round(_rank(times, 0.50), 1),
            "p95_ms": round(_rank(times, 0.95), 1),
            "p99_ms": round(_rank(times, 0.99), 1),
        }

    kinds = sorted({e["kind"] for e in events})
    return {
        "total": stats(events),
        "kinds": {k: stats([e for e in events if e["kind"] == k]) for k in kinds},
    }


def per_second(events: list[dict[str, Any]], origin: float) -> list[dict[str, Any]]:
    """Requests started in each second of the run: count, failures, p95."""
    buckets: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        buckets.setdefault(int(event["t"] - origin), []).append(event)
    return [
        {
            "second": s,
            "requests": len(chosen),
            "failures": sum(1 for e in chosen if not e["ok"]),
            "p95_ms": round(_rank(sorted(e["ms"] for e in chosen), 0.95), 1),
        }
        for s, chosen in sorted(buckets.items())
    ]


def _chaos(
    ferret: list[ServiceProcess],
    redis: list[ServiceProcess],
    state: Path,
    marks: dict[str, float],
    origin: float,
) -> None:
    """Stop FerretDB (and Redis) at ``OUTAGE_AT`` s, restart them on the same ports later.

    Runs in the main thread while locust runs: the restarted servers are children that die
    with the thread that started them.
    """
    time.sleep(max(0.0, origin + OUTAGE_AT - time.time()))
    port = int(ferret[0].uri.rsplit(":", 1)[1].strip("/"))
    redis_port = int(redis[0].uri.rsplit(":", 1)[1].split("/")[0]) if redis else None
    marks["stopped"] = time.time()
    ferret[0].stop()
    if redis:
        redis[0].stop()
    time.sleep(OUTAGE_SECONDS)
    marks["restarting"] = time.time()
    ferret[0] = start_ferretdb(state / "ferretdb", port=port)
    if redis and redis_port is not None:
        redis[0] = _start_redis(state / "redis", redis_port)
    marks["restarted"] = time.time()


def _start_redis(state: Path, port: int | None = None) -> ServiceProcess:
    if port is None:
        return start_redis(state)
    from testkit.redis import ping_ok
    from testkit.services import start_service

    return start_service(
        name="redis",
        script="redis.sh",
        state_dir=state,
        uri_for=lambda p: f"redis://127.0.0.1:{p}/0",
        ready=ping_ok,
        timeout=30.0,
        port=port,
    )


def recovery(timeline: list[dict[str, Any]], marks: dict[str, float], origin: float) -> Any:
    """Failures during the outage, and seconds from the restart until a clean second.

    A clean second: no failure and a p95 within twice the median p95 before the outage.
    """
    stopped = marks["stopped"] - origin
    restarted = marks["restarted"] - origin
    before = sorted(s["p95_ms"] for s in timeline if s["second"] < stopped - 1)
    normal = before[len(before) // 2] if before else 0.0
    outage = [s for s in timeline if stopped <= s["second"] < restarted]
    clean = next(
        (
            s["second"]
            for s in timeline
            if s["second"] >= restarted
            and s["failures"] == 0
            and s["requests"]
            and s["p95_ms"] <= 2 * normal
        ),
        None,
    )
    return {
        "stopped_at_s": round(stopped, 1),
        "restarted_at_s": round(restarted, 1),
        "outage_s": round(restarted - stopped, 1),
        "requests_started_during_outage": sum(s["requests"] for s in outage),
        "failures_started_during_outage": sum(s["failures"] for s in outage),
        "failures_after_restart": sum(s["failures"] for s in timeline if s["second"] >= restarted),
        "median_p95_before_ms": normal,
        "recovered_s_after_restart": None if clean is None else round(clean - restarted, 1),
    }


CATEGORIES = (
    ("waiting (epoll)", ("select.epoll' objects>", "epoll")),
    ("crypto", ("privata_mongo/core/crypto", "pymongocrypt", "cryptography", "hashlib", "hmac")),
    ("audit", ("privata_mongo/core/audit", "privata_mongo/audit", "adapters/audit")),
    ("privata (plan, split, join, flows)", ("privata_mongo/",)),
    ("pymongo and BSON", ("pymongo/", "bson/")),
    ("Beanie and pydantic", ("beanie/", "pydantic")),
    ("FastAPI, Starlette, uvicorn", ("fastapi/", "starlette/", "uvicorn/", "h11", "anyio")),
    ("asyncio and selectors", ("asyncio/", "selectors", "select.epoll", "socket")),
)


def profile_categories(directory: Path) -> dict[str, Any]:
    """The workers' cProfile, own time (``tottime``) grouped by where the function lives."""
    files = sorted(directory.glob("profile-*.pstats"))
    if not files:
        return {}
    stats = pstats.Stats(*(str(f) for f in files))
    totals: Counter[str] = Counter()
    top: list[tuple[float, str]] = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, line, name), (_, _, tottime, _, _) in raw.items():
        where = f"{filename}:{line}({name})"
        category = next(
            (c for c, needles in CATEGORIES if any(n in where for n in needles)), "other"
        )
        totals[category] += tottime
        top.append((tottime, where.replace(str(ROOT) + "/", "")))
    idle = totals.pop("waiting (epoll)", 0.0)
    everything = sum(totals.values()) or 1.0
    top.sort(reverse=True)
    return {
        "workers": len(files),
        "seconds": round(everything, 2),
        "waiting_s": round(idle, 2),
        "share": {k: round(v / everything, 3) for k, v in totals.most_common()},
        "top": [
            {"tottime_s": round(t, 3), "function": w.split("site-packages/")[-1]}
            for t, w in top[:15]
        ],
    }


def run_level(
    level: int,
    target: str,
    duration: float,
    cache: str | None = None,
    profile: bool = False,
    out: Path = RESULTS,
) -> dict[str, Any]:
    """Run ``level`` against ``target`` and write ``load-L<level>-<target>.*`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    limit = os.environ.get("LOAD_P95_LIMIT_MS")
    knee = f"-p95-{float(limit):.0f}" if level == 4 and limit and float(limit) != 200 else ""
    cached = f"-{cache}" if cache and target == "wrapped" else ""
    stem = out / f"load-L{level}-{target}{cached}{knee}{'-profile' if profile else ''}"
    started = datetime.datetime.now(datetime.timezone.utc)
    before = machine()
    with tempfile.TemporaryDirectory(prefix="privata-load-") as tmp:
        state = Path(tmp)
        ferret = [start_ferretdb(state / "ferretdb")]
        redis: list[ServiceProcess] = []
        env = {
            **os.environ,
            "MONGODB_URI": ferret[0].uri + "clinic",
            MASTER_KEY_ENV: new_master_key(),
        }
        if cache and target == "wrapped":
            if cache == "redis":
                redis.append(_start_redis(state / "redis"))
                env["PRIVATA_LOAD_CACHE"] = redis[0].uri
            else:
                env["PRIVATA_LOAD_CACHE"] = cache
            (state / "cache").mkdir()
            env[CACHE_STATS_ENV] = str(state / "cache")
        if profile:
            (state / "profile").mkdir()
            env["LOAD_PROFILE_DIR"] = str(state / "profile")
        sampler = Sampler()
        marks: dict[str, float] = {}
        try:
            log = state / "server.log"
            with _uvicorn(APPS[target], env, 2, log) as (url, server_pid):
                probes = _probe(url) if target == "wrapped" else {}
                events_path, steps_path = state / "events.jsonl", state / "steps.json"
                locust_env = env | {
                    "LOAD_LEVEL": str(level),
                    "LOAD_DURATION": str(duration),
                    "LOAD_EVENTS": str(events_path),
                    "LOAD_STEPS": str(steps_path),
                }
                command = [
                    sys.executable,
                    "-m",
                    "locust",
                    "-f",
                    str(Path(__file__).with_name("locustfile.py")),
                    "--headless",
                    "--host",
                    url,
                    "--csv",
                    str(stem),
                    "--html",
                    str(stem.with_suffix(".html")),
                    "--only-summary",
                    "--loglevel",
                    "WARNING",
                ]
                origin = time.time()
                # this interpreter, our locustfile, fixed arguments
                locust = subprocess.Popen(command, cwd=ROOT, env=locust_env)  # noqa: S603 - above
                sampler.groups = {
                    "server": [server_pid],
                    "ferretdb": [ferret[0].pid],
                    "locust": [locust.pid],
                }
                sampler.start()
                if level == 5:
                    # In this thread: a server started from a thread that ends would get its
                    # parent-death signal (testkit.services) when that thread exits.
                    _chaos(ferret, redis, state, marks, origin)
                    sampler.groups["ferretdb"] = [ferret[0].pid]
                locust.wait(timeout=900)
                ended = time.time()
                sampler.stop()
                time.sleep(3.0)  # requests locust abandoned at its stop finish on the server
                rows: list[dict[str, Any]] = []
                swept: dict[str, Any] = {}
                if target == "wrapped":
                    rows = _audit_rows(ferret[0].uri)
                    pending = _pending(ferret[0].uri)
                    if pending:
                        swept = {"pending_request_ids": pending}
                        try:
                            swept |= _sweep(ferret[0].uri, env[MASTER_KEY_ENV])
                        except Exception as exc:  # recorded: the level's results still count
                            swept["error"] = type(exc).__name__
                        swept["rows_after"] = _audit_rows(ferret[0].uri)
            events = [json.loads(line) for line in events_path.read_text().splitlines()]
            steps = json.loads(steps_path.read_text()) if steps_path.exists() else []
            errors = server_errors(log)
            if keep := os.environ.get("LOAD_SERVER_LOG_DIR"):  # not in results: it may quote data
                shutil.copy(log, Path(keep) / f"{stem.name}.server.log")
            if profile:  # workers dump their profile as they exit, after the master's signal
                deadline = time.time() + 30
                while len(list((state / "profile").glob("*.pstats"))) < 2:
                    if time.time() > deadline:
                        break
                    time.sleep(0.5)
            profiled = profile_categories(state / "profile") if profile else {}
            counted: dict[str, Any] = {}
            if CACHE_STATS_ENV in env:  # each worker writes its counts as it shuts down
                deadline = time.time() + 30
                while len(list((state / "cache").glob("cache-*.json"))) < 2:
                    if time.time() > deadline:
                        break
                    time.sleep(0.5)
                counted = hit_rate(state / "cache")
        finally:
            for service in (*ferret, *redis):
                service.stop()
    seconds = ended - origin
    result: dict[str, Any] = {
        "level": level,
        "target": target,
        "stem": stem.name,
        "offered_rate": LEVEL_RATES.get(level),
        "duration_s": round(seconds, 1),
        "cache": cache if cache and target == "wrapped" else None,
        "cache_applied": bool(cache and target == "wrapped" and cache_supported()),
        "server_workers": 2,
        "commit": commit(),
        "started": started.isoformat(timespec="seconds"),
        "machine": before | {"loadavg_end": list(os.getloadavg())},
        "summary": summarise(events, seconds),
        "cpu_percent": sampler.mean(origin, ended),
        "server_exceptions": errors,
        "audit": audit_check(events, rows, probes) if target == "wrapped" else None,
    }
    if swept:
        after = audit_check(events, swept.pop("rows_after"), probes)
        result["audit_after_sweep"] = after | {"sweep": swept}
        if "error" in swept:
            result["audit_after_sweep"]["sweep"] |= dict.fromkeys(
                ("intents_resolved", "orphans_removed", "intents_left"), "-"
            )
    result["machine"]["shared"] = before["shared"] or os.getloadavg()[0] > 0.5 * before["cpus"]
    if level == 4:
        for step in steps:
            since = origin + (step["step"] - 1) * STEP_SECONDS + 5.0
            step["cpu_percent"] = sampler.mean(since, since + STEP_SECONDS - 5.0)
        result["steps"] = steps
        result["p95_limit_ms"] = float(limit or 200)
    if level == 5 and marks:
        result["chaos"] = recovery(per_second(events, origin), marks, origin)
        result["timeline"] = per_second(events, origin)
    if profiled:
        result["profile"] = profiled
    if counted:
        result["cache_stats"] = counted
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    return result
