"""Where a wrapped operation's time goes on the embedded backend: documents scanned, and a profile.

mongomock answers every ``find``, update and delete by testing its filter against every document
of the collection (``Collection._iter_documents``); it has no index, ``_id`` included. So on the
embedded backend the cost of an operation is roughly the number of documents it makes mongomock
examine, and a wrapped operation that reads or writes the identity half makes it scan a second
collection of the same size. This measures, for the ODM benchmark's native and wrapped mongoengine
(``stress.odm``: its models, its seed of ``--rows`` patients each, its tasks and their
operations), on the single-document tasks and the list of 100:

- the ms per operation (median of ``--rounds`` iterations of ``--ops`` operations, the two
  sides interleaved);
- the documents mongomock examined per operation, per collection (counted by wrapping
  ``_iter_documents`` for one untimed pass);
- for the wrapped side, a cProfile of one more iteration, its own time grouped by package
  (mongomock, privata's layers, libmongocrypt's bindings, mongoengine, BSON, the rest).

Every operation is warm: ``key_cache_ttl`` is raised to an hour for the run, so no key loaded
at the seeding expires halfway (the default 60 s would turn the later tasks' reads cold, and
add a scan of the key vault to them). The cold cases are the ODM benchmark's.

    python -m stress.profile_mongomock [--rows 1000] [--ops 200] [--rounds 5]

Results: ``stress/results/profile-mongomock.{json,md}``. cProfile slows what it measures (the
grouped shares are of the profiled run, the ms per operation are not profiled).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import datetime
import json
import os
import pstats
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mongomock.collection

import privata_mongo
from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
from privata_mongo.testing import CommandCounter
from stress.odm.alternatives import Backend, MongoengineAlternative, WrappedMongoengineAlternative
from stress.odm.run import commit, machine, provenance
from stress.odm.tasks import TASKS, Counts, seed

RESULTS = Path(__file__).resolve().parent / "results"

PROFILED = (
    "get_by_id",
    "find_by_email",
    "list_100",
    "clinical_only",
    "update_clinical",
    "update_identity",
    "insert_one",
)
"""The ODM benchmark's tasks profiled: those that work on one document, and the list of 100
(the cold get is the key vault's, the large documents and ``select_related`` add nothing)."""

GROUPS = (
    ("mongomock", "/mongomock/"),
    ("privata: crypto", "privata_mongo/core/crypto/"),
    ("privata: audit", "privata_mongo/core/audit/"),
    ("privata: audit trail", "privata_mongo/drivers/_audit"),
    ("privata: flows and planning", "privata_mongo/core/"),
    ("privata: proxy", "privata_mongo/proxy/"),
    ("privata: drivers, adapters, runtime", "privata_mongo/"),
    ("libmongocrypt bindings", "/pymongocrypt/"),
    ("mongoengine", "/mongoengine/"),
    ("bson", "/bson/"),
)
"""Package groups, first match wins; builtins are charged to their callers' group."""


@contextlib.contextmanager
def _examined() -> Iterator[collections.Counter[str]]:
    """Counts the documents mongomock tests a filter against, per collection."""
    counts: collections.Counter[str] = collections.Counter()
    original: Any = mongomock.collection.Collection._iter_documents

    def counted(collection: Any, filter: Any) -> Any:
        counts[collection.name] += len(collection._store)
        return original(collection, filter)

    mongomock.collection.Collection._iter_documents = counted  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        mongomock.collection.Collection._iter_documents = original  # type: ignore[method-assign]


def _grouped(profile: cProfile.Profile) -> dict[str, float]:
    """Own time of the profiled run by package group, in percent."""
    stats: Any = pstats.Stats(profile)
    own: collections.Counter[str] = collections.Counter()
    for (filename, _, _), (_, _, tottime, _, callers) in stats.stats.items():
        group = next((name for name, part in GROUPS if part in filename), None)
        if group is None and filename == "~" and callers:
            caller = max(callers.items(), key=lambda c: c[1][2])[0][0]
            group = next((name for name, part in GROUPS if part in caller), None)
        own[group or "other (Python's library, builtins)"] += tottime
    total = sum(own.values()) or 1.0
    return {name: round(100 * t / total, 1) for name, t in own.most_common()}


def measure(rows: int, ops: int, rounds: int) -> dict[str, Any]:
    counts = Counts(rounds, ops, 1, 1, (100, rows), (max(1, ops // 10), 1), 1, 1)
    backend = Backend("mongomock", None)
    alts = {
        "native": MongoengineAlternative(backend, CommandCounter()),
        "wrapped": WrappedMongoengineAlternative(backend, CommandCounter()),
    }
    for alt in alts.values():
        alt.open()
    states = {label: seed(alt, counts) for label, alt in alts.items()}
    result: dict[str, Any] = {}
    try:
        for task in (t for t in TASKS if t.name in PROFILED):
            n = task.ops(counts)

            def run(label: str, iteration: int, task: Any = task) -> None:
                alt = alts[label]
                task.do(alt, task.before(alt, states[label], counts, iteration))

            examined = {}
            for label in alts:  # untimed: the warm-up, and the scans counted
                with _examined() as seen:
                    run(label, -1)
                examined[label] = {c: round(k / n, 1) for c, k in seen.most_common()}
            times: dict[str, list[float]] = {label: [] for label in alts}
            for iteration in range(rounds):
                for label in ("native", "wrapped") if iteration % 2 == 0 else ("wrapped", "native"):
                    began = time.perf_counter()
                    run(label, iteration)
                    times[label].append((time.perf_counter() - began) * 1e3 / n)
            profile = cProfile.Profile()
            profile.enable()
            run("wrapped", rounds)
            profile.disable()
            ms = {label: round(statistics.median(t), 3) for label, t in times.items()}
            result[task.name] = {
                "title": task.title,
                "ms": ms,
                "ratio": round(ms["wrapped"] / ms["native"], 2),
                "examined": examined,
                "profile": _grouped(profile),
            }
    finally:
        for alt in alts.values():
            alt.close()
    return result


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Where a wrapped operation's time goes on mongomock",
        "",
        f"{provenance(result)}; {result['rows']:,} patients per side, "
        f"{result['ops']} operations per iteration (a list: one per 10), median of "
        f"{result['rounds']} iterations.",
        "",
        "| operation | native ms | wrapped ms | ratio | documents examined, native | "
        "documents examined, wrapped (by collection) |",
        "|---|---|---|---|---|---|",
    ]
    for task in result["tasks"].values():
        native = sum(task["examined"]["native"].values())
        wrapped = ", ".join(f"{c} {n:,.0f}" for c, n in task["examined"]["wrapped"].items())
        lines.append(
            f"| {task['title']} | {task['ms']['native']:.3f} | {task['ms']['wrapped']:.3f} | "
            f"{task['ratio']:.2f}\u00d7 | {native:,.0f} | {wrapped} |"
        )
    groups = sorted(
        {g for task in result["tasks"].values() for g in task["profile"]},
        key=lambda g: -sum(t["profile"].get(g, 0) for t in result["tasks"].values()),
    )
    lines += [
        "",
        "Own time of the wrapped operations under cProfile, by package (% of each row):",
        "",
        "| operation | " + " | ".join(groups) + " |",
        "|---|" + "---|" * len(groups),
    ]
    lines += [
        f"| {task['title']} | "
        + " | ".join(f"{task['profile'].get(g, 0):.1f}" for g in groups)
        + " |"
        for task in result["tasks"].values()
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "profile-mongomock")
    args = parser.parse_args()
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    privata_mongo.configure(key_cache_ttl=3_600.0)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    tasks = measure(args.rows, args.ops, args.rounds)
    result = {
        "started": started,
        **commit(),
        "machine": machine(),
        "rows": args.rows,
        "ops": args.ops,
        "rounds": args.rounds,
        "tasks": tasks,
    }
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
