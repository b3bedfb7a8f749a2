"""Insert and get by id at 1k, 10k and 100k subjects stored, wrapped and native mongoengine.

``python -m stress.scale [--backend mongomock ferretdb] [--sizes 1000 10000 100000] [--ops 60]``:
the two alternatives of ``stress.odm`` (``mongoengine`` and ``privata.mongoengine``, the same
model) are seeded to each size in turn — the collection grows from one size to the next, and
with the wrapped facade so do the identity collection and the key vault (one data key per
subject) — then ``--ops`` inserts of new patients and ``--ops`` gets by id of random stored
patients are timed one by one, the two alternatives interleaved in rounds of ten so the
machine's load hits both. The score is the median per operation. The claim checked: the cost
per operation does not depend on the size of the collection or the key vault (flat within
noise), and where it does, the wrapped/native ratio says whether the wrapper is the cause.

Seeding goes through each facade's ``objects.insert`` in batches of 1,000 (the wrapped facade
seals the batch's identity rows and creates their keys in bulk). A size whose seeding would take
longer than ``--seed-budget`` seconds, projected from the rate of the batches so far, is
skipped and said so; no figure is extrapolated. Results: ``stress/results/scale.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import mongomock
from pymongo import MongoClient, monitoring

from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
from stress.odm import data
from stress.odm.base import Backend
from stress.odm.run import backend as open_backend
from stress.odm.run import commit, machine
from stress.odm.with_mongoengine import MongoengineAlternative, WrappedMongoengineAlternative

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 1_000
ROUND = 10


class _Commands(monitoring.CommandListener):
    """Wire commands of the operation being measured (FerretDB): name, collection, duration."""

    def __init__(self) -> None:
        self.phase: tuple[str, str] | None = None
        self._open: dict[int, tuple[tuple[str, str], str]] = {}
        self.seen: dict[tuple[str, str], dict[str, list[float]]] = {}

    def started(self, event: Any) -> None:
        if self.phase is not None:
            target = event.command.get(event.command_name)
            where = (
                f"{event.command_name} {target}" if isinstance(target, str) else event.command_name
            )
            self._open[event.request_id] = (self.phase, where)

    def succeeded(self, event: Any) -> None:
        if (opened := self._open.pop(event.request_id, None)) is not None:
            phase, where = opened
            self.seen.setdefault(phase, {}).setdefault(where, []).append(
                event.duration_micros / 1000.0
            )

    def failed(self, event: Any) -> None:
        self._open.pop(event.request_id, None)

    def report(self, ops: int) -> dict[str, Any]:
        """Per alternative and operation: each command's count per op and median ms."""
        out: dict[str, Any] = {}
        for (name, op), commands in sorted(self.seen.items()):
            out.setdefault(name, {})[op] = {
                where: {
                    "per_op": round(len(t) / ops, 2),
                    "median_ms": round(statistics.median(t), 2),
                }
                for where, t in sorted(commands.items())
            }
        self.seen.clear()
        return out


def _timed(operation: Callable[[], Any]) -> float:
    start = time.perf_counter()
    operation()
    return (time.perf_counter() - start) * 1000.0


def _seed(alt: Any, have: int, want: int, budget: float, ids: list[Any]) -> dict[str, Any]:
    """Grow ``alt``'s patients from ``have`` to ``want`` in batches; stop early past ``budget``."""
    started = time.perf_counter()
    n = have
    while n < want:
        count = min(BATCH, want - n)
        ids += alt.seed([data.small(i) for i in range(n, n + count)])
        n += count
        spent = time.perf_counter() - started
        projected = spent / (n - have) * (want - have)
        if projected > budget and n < want:
            return {"seeded": n, "seconds": round(spent, 1), "projected_s": round(projected)}
    return {"seeded": n, "seconds": round(time.perf_counter() - started, 1)}


def _measure(
    alts: Sequence[Any], ids: dict[str, list[Any]], ops: int, size: int, listener: _Commands
) -> Any:
    """Median ms of ``ops`` inserts and ``ops`` gets by id per alternative, interleaved."""
    times: dict[str, dict[str, list[float]]] = {a.name: {"insert": [], "get": []} for a in alts}
    fresh = 10_000_000 + size * 10
    for r in range(0, ops, ROUND):
        for alt in alts if (r // ROUND) % 2 == 0 else tuple(reversed(alts)):
            for k in range(r, min(ops, r + ROUND)):
                document = data.small(fresh + k)
                listener.phase = (alt.name, "insert")
                times[alt.name]["insert"].append(_timed(lambda a=alt, d=document: a.create([d])))
            chosen = random.sample(ids[alt.name], min(ROUND, ops - r))
            for i in chosen:
                listener.phase = (alt.name, "get")
                times[alt.name]["get"].append(_timed(lambda a=alt, i=i: a.get([i])))
            listener.phase = None
    return {
        name: {
            op: {
                "median_ms": round(statistics.median(t), 3),
                "p90_ms": round(sorted(t)[int(len(t) * 0.9) - 1], 3),
                "n": len(t),
            }
            for op, t in per.items()
        }
        for name, per in times.items()
    }


def _stored(alt: Any, where: Backend) -> dict[str, int]:
    """Patients stored (the measured inserts included) and, wrapped, data keys in the vault.

    Counted on a raw client: the wrapped facade does not serve the key vault.
    """
    raw: Any = mongomock.MongoClient(_store=alt.store) if where.embedded else MongoClient(where.uri)
    counts = {"patients": raw[alt.db_name]["patient"].count_documents({})}
    if alt.wrapped:
        counts["key_vault"] = raw["encryption"]["__keyVault"].count_documents({})
    raw.close()
    return counts


def run_backend(name: str, sizes: Sequence[int], ops: int, budget: float) -> dict[str, Any]:
    """Every size on one backend, both alternatives on the same growing seeds."""
    out: dict[str, Any] = {}
    with open_backend(name) as where:
        assert isinstance(where, Backend)
        listener = _Commands()
        alts = [
            cls(where, listener) for cls in (MongoengineAlternative, WrappedMongoengineAlternative)
        ]
        for alt in alts:
            alt.open()
        ids: dict[str, list[Any]] = {a.name: [] for a in alts}
        have = dict.fromkeys(ids, 0)
        try:
            for size in sizes:
                seeding = {}
                for alt in alts:
                    seeding[alt.name] = _seed(alt, have[alt.name], size, budget, ids[alt.name])
                    have[alt.name] = seeding[alt.name]["seeded"]
                skipped = [n for n, s in seeding.items() if "projected_s" in s]
                entry: dict[str, Any] = {"seeding": seeding}
                if skipped:
                    entry["skipped"] = (
                        f"seeding {', '.join(skipped)} to {size} was projected at "
                        f"{max(seeding[n]['projected_s'] for n in skipped)} s, over the budget "
                        f"of {budget:.0f} s"
                    )
                    out[str(size)] = entry
                    break
                entry["measured"] = _measure(alts, ids, ops, size, listener)
                if not where.embedded:
                    entry["commands"] = listener.report(ops)
                entry["stored"] = {a.name: _stored(a, where) for a in alts}
                out[str(size)] = entry
                for alt in alts:
                    have[alt.name] = entry["stored"][alt.name]["patients"]
        finally:
            for alt in alts:
                alt.close()
    return out


def markdown(result: dict[str, Any]) -> str:
    """One table per backend: median ms per operation at each size, and the ratio."""
    c = result["commit"]
    m = result["machine"]
    lines = [
        "# Insert and get by id against the number of subjects stored",
        "",
        f"Commit `{c['commit'][:12]}`{' (tree dirty)' if c['dirty'] else ''}, started "
        f"{result['started']}, {result['seconds']:.0f} s; {m['cpus']} CPUs, load average "
        f"{', '.join(f'{x:.2f}' for x in m['loadavg'])} at the start and "
        f"{', '.join(f'{x:.2f}' for x in m['loadavg_end'])} at the end"
        + (" (**the machine was shared**)" if m["shared"] else "")
        + f". {result['ops']} operations of each kind per alternative and size, interleaved "
        "in rounds of ten; medians in ms per operation.",
    ]
    for backend, sizes in result["backends"].items():
        lines += [
            "",
            f"## {backend}",
            "",
            "| subjects stored | insert native | insert wrapped | ratio | get native | "
            "get wrapped | ratio | key vault | seeding native / wrapped (s) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for size, entry in sizes.items():
            seed = entry["seeding"]
            seeds = " / ".join(str(s["seconds"]) for s in seed.values())
            if "skipped" in entry:
                lines.append(
                    f"| {int(size):,} | skipped: {entry['skipped']} | | | | | | | {seeds} |"
                )
                continue
            me = entry["measured"]["mongoengine"]
            pm = entry["measured"]["privata.mongoengine"]
            vault = entry["stored"]["privata.mongoengine"].get("key_vault", 0)
            ratio_get = pm["get"]["median_ms"] / me["get"]["median_ms"]
            lines.append(
                f"| {int(size):,} | {me['insert']['median_ms']} | {pm['insert']['median_ms']} | "
                f"{pm['insert']['median_ms'] / me['insert']['median_ms']:.2f}\u00d7 | "
                f"{me['get']['median_ms']} | {pm['get']['median_ms']} | "
                f"{ratio_get:.2f}\u00d7 | {vault:,} | {seeds} |"
            )
        for size, entry in sizes.items():
            for name, per_op in entry.get("commands", {}).items():
                for op, commands in per_op.items():
                    cells = ", ".join(
                        f"{where} x{c['per_op']} {c['median_ms']} ms"
                        for where, c in commands.items()
                    )
                    lines.append(f"- {int(size):,} subjects, {name} {op}: {cells}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m stress.scale", description=__doc__)
    parser.add_argument("--backend", nargs="+", default=["mongomock", "ferretdb"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1_000, 10_000, 100_000])
    parser.add_argument("--ops", type=int, default=60)
    parser.add_argument("--seed-budget", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "scale")
    args = parser.parse_args()
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    started = datetime.datetime.now(datetime.timezone.utc)
    before = machine()
    stamp = commit()  # the library this process imported, not the tree at the end of the run
    clock = time.perf_counter()
    backends = {}
    for name in args.backend:
        backends[name] = run_backend(name, args.sizes, args.ops, args.seed_budget)
        print(f"scale {name}: {json.dumps(backends[name])[:300]}")
    end = machine()
    result = {
        "started": started.isoformat(timespec="seconds"),
        "seconds": time.perf_counter() - clock,
        "ops": args.ops,
        "commit": stamp,
        "machine": before
        | {"loadavg_end": end["loadavg"], "shared": before["shared"] or end["shared"]},
        "backends": backends,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))


if __name__ == "__main__":
    main()
