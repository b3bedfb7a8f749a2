"""The runner: alternatives interleaved per iteration, round trips counted per operation."""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import mongomock.collection

import privata_mongo
import privata_mongo.config
from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
from privata_mongo.testing import CommandCounter, counting
from stress.odm import stats
from stress.odm.alternatives import (
    ALTERNATIVES,
    LOOP,
    PAIRS,
    Alternative,
    Backend,
    BeanieAlternative,
)
from stress.odm.tasks import TASKS, Counts, State, Task, seed

ROOT = Path(__file__).resolve().parents[2]
GIT = shutil.which("git") or "git"

# An earlier library (``stress.odm.before_after``) names its list privately.
_OPERATIONS = getattr(counting, "OPERATIONS", None) or counting._OPERATIONS
_COUNTED = (*sorted(_OPERATIONS), "create_indexes", "list_indexes")
"""Collection operations that reach the server: the library's own list, and index creation."""


def _cache_stats(reset: bool = False) -> Any:
    """The cache's hit counts; an earlier library without a cache reports none."""
    stats_of = getattr(privata_mongo, "cache_stats", None)
    return stats_of(reset=reset) if stats_of is not None else None


class _MongomockCalls:
    """Collection operations reaching mongomock (the embedded backend's round trips).

    Only the outermost call counts (mongomock's ``find_one`` calls its own ``find``).
    """

    def __init__(self) -> None:
        self.count = 0
        self._depth = threading.local()

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        originals = {name: getattr(mongomock.collection.Collection, name) for name in _COUNTED}
        for name, original in originals.items():
            setattr(mongomock.collection.Collection, name, self._wrap(original))
        try:
            yield
        finally:
            for name, original in originals.items():
                setattr(mongomock.collection.Collection, name, original)

    def _wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def counted(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self._depth, "n", 0)
            if depth == 0:
                self.count += 1
            self._depth.n = depth + 1
            try:
                return original(*args, **kwargs)
            finally:
                self._depth.n = depth

        return counted


def commit() -> dict[str, Any]:
    """The commit measured, and whether the tree differed from it."""

    def git(*args: str) -> str:
        return subprocess.run(  # noqa: S603 - git with fixed arguments
            [GIT, *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def provenance(result: Mapping[str, Any]) -> str:
    """When a result was started, on which commit, and how busy the machine was then."""
    changed = " (tree changed)" if result["dirty"] else ""
    return (
        f"Started {result['started']} at commit `{result['commit'][:7]}`{changed}; "
        f"load average {result['machine']['loadavg'][0]:.1f}"
    )


def machine() -> dict[str, Any]:
    cpus = os.cpu_count() or 1
    load = os.getloadavg()
    return {"cpus": cpus, "loadavg": list(load), "shared": load[0] > 0.5 * cpus}


def _round_trips(
    alt: Alternative, counter: CommandCounter, calls: _MongomockCalls, run: Callable[[], None]
) -> int:
    if alt.backend.embedded:
        before = calls.count
        with calls.counting():
            run()
        return calls.count - before
    counter.reset()
    run()
    return counter.total()


def run_backend(
    backend: Backend, counts: Counts, tasks: Sequence[Task], log: Callable[[str], None]
) -> dict[str, Any]:
    """Every task on every alternative of ``backend``, interleaved; the backend's results."""
    counters = [CommandCounter() for _ in ALTERNATIVES]
    alts = [cls(backend, counter) for cls, counter in zip(ALTERNATIVES, counters, strict=True)]
    calls = _MongomockCalls()
    for alt in alts:
        if isinstance(alt, BeanieAlternative):
            alt.define()
    states: dict[str, State] = {}
    for alt in alts:
        alt.open()
        states[alt.name] = seed(alt, counts)
    results: dict[str, Any] = {}
    try:
        for task in tasks:
            started = time.perf_counter()
            times: dict[str, list[float]] = {alt.name: [] for alt in alts}
            trips: dict[str, float] = {}
            ops = task.ops(counts)
            _cache_stats(reset=True)
            for alt, counter in zip(alts, counters, strict=True):  # also the warm-up
                args = task.before(alt, states[alt.name], counts, -1)
                total = _round_trips(alt, counter, calls, functools.partial(task.do, alt, args))
                trips[alt.name] = total / ops
            for iteration in range(counts.iterations):
                shift = iteration % len(alts)
                for alt in alts[shift:] + alts[:shift]:
                    args = task.before(alt, states[alt.name], counts, iteration)
                    start = time.perf_counter()
                    task.do(alt, args)
                    times[alt.name].append(time.perf_counter() - start)
            size = task.size(counts)
            per_alt = {
                name: {
                    "times_s": values,
                    "stats": stats.summary(values, size),
                    "median_per_op_ms": stats.percentile(values, 50) / ops * 1e3,
                    "round_trips_per_op": trips[name],
                }
                for name, values in times.items()
            }
            ratios = {
                f"{b}/{a}": per_alt[b]["stats"]["median"] / per_alt[a]["stats"]["median"]
                for a, b in PAIRS
            }
            hits = _cache_stats()
            results[task.name] = {
                "title": task.title,
                "ops_per_iteration": ops,
                "size_bytes": size,
                "alternatives": per_alt,
                "ratios": ratios,
                "cache": None
                if hits is None
                else {"hits": hits.hits, "misses": hits.misses, "hit_rate": hits.hit_rate},
            }
            log(
                f"{backend.name:>9} {task.name:<16} "
                + " ".join(f"{k.split('/')[0]}={v:.2f}x" for k, v in ratios.items())
                + f"  ({time.perf_counter() - started:.1f} s)"
            )
    finally:
        for alt in alts:
            alt.close()
        LOOP.run_until_complete(LOOP.shutdown_asyncgens())
    return results


@contextlib.contextmanager
def backend(name: str) -> Iterator[Backend]:
    """mongomock, or FerretDB started as the test plugin starts it (testkit.ferretdb)."""
    if name == "mongomock":
        yield Backend(name, None)
        return
    if name != "ferretdb":
        raise SystemExit(f"unknown backend {name!r}: mongomock or ferretdb")
    from testkit.ferretdb import start_ferretdb

    with (
        tempfile.TemporaryDirectory(prefix="bench-ferretdb-") as state,
        start_ferretdb(Path(state)) as server,
    ):
        yield Backend(name, server.uri)


def run(
    backends: Sequence[str],
    counts: Counts,
    mode: str,
    tasks: Sequence[Task] = TASKS,
    log: Callable[[str], None] = print,
    cache: str | None = None,
) -> dict[str, Any]:
    """The whole benchmark: one result document (``report`` renders it).

    ``cache``: the privata alternatives run with ``configure(cache=cache)`` (the native ones
    do not use privata, so they are unchanged).
    """
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    saved = privata_mongo.config.current()
    if cache is not None:
        privata_mongo.configure(cache=cache)
    started = datetime.datetime.now(datetime.timezone.utc)
    before = machine()
    out: dict[str, Any] = {
        "spec": "MongoDB ODM Performance Benchmark (odm-benchmarking.md), adapted: see stress/odm",
        "mode": mode,
        "cache": cache,
        "counts": counts.__dict__,
        **commit(),
        "started": started.isoformat(timespec="seconds"),
        "machine": before,
        "backends": {},
    }
    try:
        for name in backends:
            with backend(name) as chosen:
                out["backends"][name] = run_backend(chosen, counts, tasks, log)
    finally:
        privata_mongo.config._current = saved
    after = machine()
    out["machine"] = {
        **before,
        "loadavg_end": after["loadavg"],
        "shared": before["shared"] or after["shared"],
    }
    out["seconds"] = (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()
    return out
