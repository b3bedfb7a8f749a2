"""Memory while iterating every document of a collection, wrapped and native mongoengine.

``python -m stress.iterate_memory [--backend ferretdb] [--sizes 5000 20000]``: the models of
``stress.odm`` are seeded to each size (the collection grows from one size to the next), then
``for patient in Patient.objects.no_cache()`` (a streaming iteration: mongoengine's queryset
otherwise keeps every document it yielded) runs to the end under ``tracemalloc``, once per
alternative, with the key ring emptied first (a cold process). Per size and alternative: the
peak of traced memory during the iteration, what is still traced after it (the documents
dropped), and the seconds it took. The claim checked: the wrapped iteration's peak does not
grow with the number of documents, as the batch (``batch_size``, 1,000 documents joined per
identity read) does not; what stays after it is the key ring (one data key per subject read,
about ``key_cache_size`` of them at most), reported apart.

Results: ``stress/results/iterate-memory-<backend>.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pymongo import monitoring

import privata_mongo
import privata_mongo.config
from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
from stress.odm.run import backend as open_backend
from stress.odm.run import commit, machine
from stress.odm.with_mongoengine import MongoengineAlternative, WrappedMongoengineAlternative
from stress.scale import _seed

RESULTS = Path(__file__).resolve().parent / "results"
MIB = 1024 * 1024


class _Silent(monitoring.CommandListener):
    """A listener that records nothing (the alternatives take one)."""

    def started(self, event: Any) -> None:
        """Nothing to record."""

    def succeeded(self, event: Any) -> None:
        """Nothing to record."""

    def failed(self, event: Any) -> None:
        """Nothing to record."""


def _iterate(alt: Any) -> dict[str, Any]:
    """Traced memory of one full iteration of ``alt``'s patients, from a cold key ring."""
    alt.forget()
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        started = time.perf_counter()
        count = 0
        for patient in alt.Patient.objects.no_cache():
            count += 1
            del patient
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    alt.forget()
    gc.collect()
    return {
        "documents": count,
        "seconds": round(seconds, 1),
        "peak_mib": round((peak - before) / MIB, 2),
        "kept_mib": round((after - before) / MIB, 2),
    }


def run_backend(name: str, sizes: Sequence[int], budget: float) -> dict[str, Any]:
    """Each size on one backend: seed both alternatives, then iterate each."""
    out: dict[str, Any] = {}
    with open_backend(name) as where:
        alts = [
            cls(where, _Silent()) for cls in (MongoengineAlternative, WrappedMongoengineAlternative)
        ]
        for alt in alts:
            alt.open()
        have = {a.name: 0 for a in alts}
        try:
            for size in sizes:
                seeding = {}
                for alt in alts:
                    seeding[alt.name] = _seed(alt, have[alt.name], size, budget, [])
                    have[alt.name] = seeding[alt.name]["seeded"]
                if any("projected_s" in s for s in seeding.values()):
                    out[str(size)] = {"seeding": seeding, "skipped": "seeding over the budget"}
                    break
                out[str(size)] = {
                    "seeding": seeding,
                    "iterated": {alt.name: _iterate(alt) for alt in alts},
                }
                print(f"{name} {size}: {json.dumps(out[str(size)]['iterated'])}", flush=True)
        finally:
            for alt in alts:
                alt.close()
    return out


def markdown(result: dict[str, Any]) -> str:
    """One table per backend: peak and kept MiB and seconds per size and alternative."""
    c, m = result["commit"], result["machine"]
    lines = [
        "# Memory while iterating every document",
        "",
        f"Commit `{c['commit'][:12]}`{' (tree dirty)' if c['dirty'] else ''}, started "
        f"{result['started']}, {result['seconds']:.0f} s; load average {m['loadavg']} at the "
        f"start and {m['loadavg_end']} at the end; key_cache_size "
        f"{result.get('key_cache_size', 'not set (no bound)')}. Traced memory (tracemalloc) "
        "above the start of each iteration; the key ring emptied before each.",
    ]
    for backend, sizes in result["backends"].items():
        lines += [
            "",
            f"## {backend}",
            "",
            "| documents | native peak / kept MiB | native s | wrapped peak / kept MiB "
            "| wrapped s |",
            "|---|---|---|---|---|",
        ]
        for size, entry in sizes.items():
            if "iterated" not in entry:
                lines.append(f"| {int(size):,} | {entry['skipped']} | | | |")
                continue
            native = entry["iterated"]["mongoengine"]
            wrapped = entry["iterated"]["privata.mongoengine"]
            lines.append(
                f"| {int(size):,} | {native['peak_mib']} / {native['kept_mib']} "
                f"| {native['seconds']} | {wrapped['peak_mib']} / {wrapped['kept_mib']} "
                f"| {wrapped['seconds']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m stress.iterate_memory", description=__doc__)
    parser.add_argument("--backend", nargs="+", default=["ferretdb"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[5_000, 20_000])
    parser.add_argument("--seed-budget", type=float, default=900.0)
    parser.add_argument("--key-cache-size", type=int, help="configure(key_cache_size=...)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    if args.key_cache_size is not None:
        privata_mongo.configure(key_cache_size=args.key_cache_size)
    started = datetime.datetime.now(datetime.timezone.utc)
    stamp, before = commit(), machine()
    clock = time.perf_counter()
    backends = {name: run_backend(name, args.sizes, args.seed_budget) for name in args.backend}
    result = {
        "started": started.isoformat(timespec="seconds"),
        "seconds": time.perf_counter() - clock,
        "commit": stamp,
        "key_cache_size": privata_mongo.config.current().key_cache_size,
        "machine": before | {"loadavg_end": machine()["loadavg"]},
        "backends": backends,
    }
    out = args.out or RESULTS / f"iterate-memory-{'-'.join(args.backend)}"
    out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
