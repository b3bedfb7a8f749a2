"""Memory over create/read/delete cycles with the wrapped mongoengine facade, on mongomock.

``python -m stress.memory [--cycles 10000] [--warmup 1000]``: each cycle saves a patient with
identity fields (a new data subject: a pseudonym, a data key, an identity row, a clinical row,
audit records), reads it back by id and deletes it (its key shredded). Python allocations are
traced with ``tracemalloc``; the snapshot after the warm-up is the baseline, the one at the end
is compared with it, and the target is growth under 10 %. A long-lived process holding
something per subject (a dict keyed by pseudonym, a key that is never evicted) grows with the
cycles and fails it.

What the database itself keeps is not the process's leak: mongomock holds its collections in
this process, and the audit trail grows by design (three records a cycle). So, as an
application ships its audit trail, the run moves audit records (the chain's checkpoint stays) and
the key vault's tombstones out every ``--prune`` cycles, and reports the documents left in each
collection at the end: a collection that grows there is data kept per subject after its
deletion. Results go to ``stress/results/memory.{json,md}``; with a failure, the top allocation
sites (by growth) are in both.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import mongomock

from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
from stress.odm.run import commit, machine

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_GROWTH = 0.10
DB = "memory"


def _setup() -> tuple[Any, Any]:
    """The wrapped facade on a fresh mongomock client, and the Patient model."""
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    import privata_mongo.mongoengine as me

    client = mongomock.MongoClient()
    me.connect(DB, alias="memory", mongo_client_class=lambda *a, **k: client)

    class MemoryPatient(me.Document):
        first_name = me.StringField()
        last_name = me.StringField()
        email = me.StringField()
        date_of_birth = me.DateTimeField()
        blood_type = me.StringField()
        visits = me.IntField()
        meta = {"db_alias": "memory", "collection": "patients"}

    return client, MemoryPatient


def _cycle(patient_class: Any, n: int) -> None:
    patient = patient_class(
        first_name="Ada",
        last_name=f"Lovelace{n}",
        email=f"ada{n}@example.org",
        date_of_birth=datetime.datetime(1815, 12, 10),
        blood_type="A+",
        visits=n % 7,
    ).save()
    found = patient_class.objects.get(id=patient.id)
    assert found.email == f"ada{n}@example.org"
    found.delete()


def _prune_audit(client: Any) -> int:
    """Move out what the database keeps by design: audit records and the keys' tombstones.

    Audit records are shipped elsewhere as an application would (the chain's checkpoint
    stays); a tombstone per shredded key is the key vault's proof of erasure, kept on the
    server. mongomock holds both in this process, where they would read as our growth.
    """
    audit = client[DB]["privata_audit"].delete_many({"operation": {"$exists": True}})
    tombstones = client["encryption"]["__keyVault.tombstones"].delete_many({})
    return int(audit.deleted_count) + int(tombstones.deleted_count)


def _documents(client: Any) -> dict[str, int]:
    counts = {}
    for db_name in client.list_database_names():
        for name in client[db_name].list_collection_names():
            counts[f"{db_name}.{name}"] = client[db_name][name].count_documents({})
    return counts


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def run(cycles: int, warmup: int, prune: int) -> dict[str, Any]:
    """Warm up, snapshot, run ``cycles`` more, snapshot; compare."""
    client, patient_class = _setup()
    tracemalloc.start(1)
    started = time.perf_counter()
    for n in range(warmup):
        _cycle(patient_class, n)
        if (n + 1) % prune == 0:
            _prune_audit(client)
    _prune_audit(client)
    baseline_bytes = _traced()
    baseline = tracemalloc.take_snapshot()
    marks = []
    pruned = 0
    for n in range(warmup, warmup + cycles):
        _cycle(patient_class, n)
        if (n + 1) % prune == 0:
            pruned += _prune_audit(client)
            marks.append({"cycle": n + 1 - warmup, "traced_bytes": _traced()})
    pruned += _prune_audit(client)
    final_bytes = _traced()
    final = tracemalloc.take_snapshot()
    seconds = time.perf_counter() - started
    tracemalloc.stop()
    growth = (final_bytes - baseline_bytes) / baseline_bytes
    top = [
        {
            "size_diff_bytes": stat.size_diff,
            "count_diff": stat.count_diff,
            "site": str(stat.traceback[0]),
        }
        for stat in final.compare_to(baseline, "lineno")[:15]
    ]
    return {
        "odm": "privata_mongo.mongoengine on mongomock",
        "cycles": cycles,
        "warmup": warmup,
        "prune_every": prune,
        "documents_moved_out": pruned,
        "seconds": round(seconds, 1),
        "baseline_bytes": baseline_bytes,
        "final_bytes": final_bytes,
        "growth": round(growth, 4),
        "target": TARGET_GROWTH,
        "holds": growth < TARGET_GROWTH,
        "marks": marks,
        "documents_left": _documents(client),
        "top_growth_sites": top,
        "commit": commit(),
        "machine": machine(),
    }


def _site(site: str) -> str:
    return site.split("site-packages/")[-1].replace(str(RESULTS.parents[1]) + "/", "")


def markdown(result: dict[str, Any]) -> str:
    """The figures, the documents left, and the allocation sites that grew most."""
    mib = 1024 * 1024
    c = result["commit"]
    lines = [
        "# Memory: create/read/delete cycles",
        "",
        f"Commit `{c['commit'][:12]}`{' (tree dirty)' if c['dirty'] else ''}; "
        f"{result['odm']}; {result['cycles']} cycles after a warm-up of {result['warmup']}, "
        f"{result['seconds']} s under tracemalloc; load average "
        f"{', '.join(f'{x:.2f}' for x in result['machine']['loadavg'])} on "
        f"{result['machine']['cpus']} CPUs.",
        "",
        f"Traced Python memory after the warm-up: {result['baseline_bytes'] / mib:.2f} MiB; at "
        f"the end: {result['final_bytes'] / mib:.2f} MiB; growth **{result['growth']:.2%}** "
        f"(target < {result['target']:.0%}: **{'holds' if result['holds'] else 'fails'}**).",
        "",
        f"Audit records and key tombstones moved out every {result['prune_every']} cycles: "
        f"{result['documents_moved_out']}. Documents left at the end: "
        + ", ".join(f"{k} {v}" for k, v in result["documents_left"].items())
        + ".",
        "",
        "| cycles | traced MiB |",
        "|---|---|",
        *[f"| {m['cycle']} | {m['traced_bytes'] / mib:.2f} |" for m in result["marks"]],
        "",
        "Allocation sites that grew most between the two snapshots:",
        "",
        "| bytes | blocks | site |",
        "|---|---|---|",
        *[
            f"| {t['size_diff_bytes']:+} | {t['count_diff']:+} | `{_site(t['site'])}` |"
            for t in result["top_growth_sites"]
        ],
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m stress.memory", description=__doc__)
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--prune", type=int, default=1_000)
    parser.add_argument("--out", type=Path, default=RESULTS / "memory")
    args = parser.parse_args()
    result = run(args.cycles, args.warmup, args.prune)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(
        f"memory: {result['growth']:.2%} growth over {result['cycles']} cycles "
        f"({'holds' if result['holds'] else 'FAILS'})"
    )


if __name__ == "__main__":
    main()
