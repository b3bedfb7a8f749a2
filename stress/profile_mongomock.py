"""Where a wrapped operation's time goes on the embedded backend: documents scanned, and a profile.

mongomock answers every ``find``, update and delete by testing its filter against every document
of the collection (``Collection._iter_documents``); it has no index, ``_id`` included. So on the
embedded backend the cost of an operation is roughly the number of documents it makes mongomock
examine, and a wrapped operation that reads or writes the identity half makes it scan a second
collection of the same size. This measures, for native and wrapped mongoengine over the same
seed (the ``stress.odm`` model, ``--rows`` patients each):

- the ms per operation (median of ``--rounds`` rounds of ``--ops`` operations, the two sides
  interleaved);
- the documents mongomock examined per operation, per collection (counted by wrapping
  ``_iter_documents`` for one untimed pass);
- for the wrapped side, a cProfile of one round, its own time grouped by package (mongomock,
  privata's layers, libmongocrypt's bindings, mongoengine, BSON, the rest).

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
import functools
import json
import os
import pstats
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mongoengine as me
import mongomock
import mongomock.collection
from mongomock.store import ServerStore

import privata_mongo
from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
from stress.odm.run import commit, machine

RESULTS = Path(__file__).resolve().parent / "results"

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


def _fields(module: Any) -> dict[str, Any]:
    return {
        "first_name": module.StringField(),
        "last_name": module.StringField(),
        "email": module.StringField(searchable=True),
        "date_of_birth": module.DateTimeField(),
        "blood_type": module.StringField(),
        "visits": module.IntField(),
        "notes": module.StringField(),
    }


class Side:
    """One ODM (native or wrapped) on its own mongomock store."""

    def __init__(self, wrapped: bool, rows: int) -> None:
        if wrapped:
            import privata_mongo.mongoengine as module
        else:
            module = me
        self.wrapped = wrapped
        self.alias = "wrapped" if wrapped else "native"
        store = ServerStore()  # type: ignore[no-untyped-call]
        module.connect(
            self.alias,
            alias=self.alias,
            mongo_client_class=functools.partial(mongomock.MongoClient, _store=store),
            uuidRepresentation="standard",
        )
        attrs = _fields(module)
        attrs["meta"] = {"db_alias": self.alias, "collection": "patient"}
        patient: Any = type(f"{self.alias.title()}Patient", (module.Document,), attrs)
        self.Patient = patient
        self.Patient.objects.insert([self.patient(n) for n in range(rows)])
        self.ids = [p.id for p in self.Patient.objects.only("id")]
        self.next = rows

    def patient(self, n: int) -> Any:
        return self.Patient(
            first_name=f"First{n}",
            last_name=f"Last{n}",
            email=f"patient{n}@example.org",
            date_of_birth=datetime.datetime(1950 + n % 50, 1 + n % 12, 1 + n % 28),
            blood_type="AB+",
            visits=n,
            notes="stable",
        )

    def tasks(self) -> dict[str, Callable[[int], object]]:
        objects = self.Patient.objects

        def insert(i: int) -> object:
            self.next += 1
            return self.patient(self.next).save()

        return {
            "get by id": lambda i: objects.get(id=self.ids[i % len(self.ids)]),
            "find by e-mail": lambda i: objects(
                email=f"patient{i % len(self.ids)}@example.org"
            ).first(),
            "list 100": lambda i: list(objects.limit(100)),
            "clinical fields only": lambda i: (
                objects(id=self.ids[i % len(self.ids)]).only("visits").first()
            ),
            "update a clinical field": lambda i: objects(id=self.ids[i % len(self.ids)]).update_one(
                set__visits=i
            ),
            "update an identity field": lambda i: objects(
                id=self.ids[i % len(self.ids)]
            ).update_one(set__last_name=f"Renamed{i}"),
            # Last: its passes add documents (the profiled one on the wrapped side only), which
            # would make the two sides' collections differ for the tasks after it.
            "insert one": insert,
        }


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
    native, wrapped = Side(False, rows), Side(True, rows)
    native_tasks, wrapped_tasks = native.tasks(), wrapped.tasks()
    result: dict[str, Any] = {}
    for name in native_tasks:
        sides = {"native": native_tasks[name], "wrapped": wrapped_tasks[name]}
        examined = {}
        for label, task in sides.items():  # untimed: the warm-up, and the scans counted
            with _examined() as counts:
                for i in range(ops):
                    task(i)
            examined[label] = {c: round(n / ops, 1) for c, n in counts.most_common()}
        times: dict[str, list[float]] = {"native": [], "wrapped": []}
        for r in range(rounds):
            for label in ("native", "wrapped") if r % 2 == 0 else ("wrapped", "native"):
                began = time.perf_counter()
                for i in range(ops):
                    sides[label](i)
                times[label].append((time.perf_counter() - began) * 1e3 / ops)
        profile = cProfile.Profile()
        profile.enable()
        for i in range(ops):
            sides["wrapped"](i)
        profile.disable()
        ms = {label: round(statistics.median(t), 3) for label, t in times.items()}
        result[name] = {
            "ms": ms,
            "ratio": round(ms["wrapped"] / ms["native"], 2),
            "examined": examined,
            "profile": _grouped(profile),
        }
    return result


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Where a wrapped operation's time goes on mongomock",
        "",
        f"Started {result['started']} at commit `{result['commit'][:7]}`"
        f"{' (tree changed)' if result['dirty'] else ''}; load average "
        f"{result['machine']['loadavg'][0]:.1f}; {result['rows']:,} patients per side, "
        f"{result['ops']} operations per round, median of {result['rounds']} rounds.",
        "",
        "| operation | native ms | wrapped ms | ratio | documents examined, native | "
        "documents examined, wrapped (by collection) |",
        "|---|---|---|---|---|---|",
    ]
    for name, task in result["tasks"].items():
        native = sum(task["examined"]["native"].values())
        wrapped = ", ".join(f"{c} {n:,.0f}" for c, n in task["examined"]["wrapped"].items())
        lines.append(
            f"| {name} | {task['ms']['native']:.3f} | {task['ms']['wrapped']:.3f} | "
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
        f"| {name} | " + " | ".join(f"{task['profile'].get(g, 0):.1f}" for g in groups) + " |"
        for name, task in result["tasks"].items()
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
