"""A ``$group`` on an identity field through the wrapper against native mongoengine, same run.

For N documents of a model whose ``last_name`` is an identity field (encrypted, one data key per
subject), runs ``{$group: {_id: "$last_name", n: {$sum: 1}, visits: {$sum: "$visits"}}}`` (and
the same with ``visits`` only) natively, over the same documents unsplit, and through the
wrapper, which asks the server for partial groups per pseudonym and merges them after reading
the identity rows in batches. It prints whether the results are equal, wall time per call
(median of repeats), round trips (collection operations on mongomock, wire commands on a
server) and the ratios; with ``--expected`` it also compares both with the groups computed from
the seed data in Python (FerretDB v1.24, for one, returns 0 for every accumulator of a
``$group`` but the first, natively as through the wrapper, whose partial groups the server
computes: the one-accumulator pipeline shows both right there).

The model's ``scan_limit`` is left at its default (10,000): before push-down, the wrapper
refused this aggregation above that many documents.

    python stress/bench_aggregate.py                                   # mongomock
    python stress/bench_aggregate.py --uri mongodb://127.0.0.1:27017/ --sizes 50000
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import mongoengine as me
import mongomock
from mongomock.store import ServerStore

import privata_mongo
import privata_mongo.mongoengine as pm
from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
from privata_mongo.testing import CommandCounter, OperationCounter, counting_client_class

PIPELINES: dict[str, list[dict[str, Any]]] = {
    "n+visits": [
        {"$group": {"_id": "$last_name", "n": {"$sum": 1}, "visits": {"$sum": "$visits"}}},
        {"$sort": {"_id": 1}},
    ],
    # one accumulator: what FerretDB v1.24 computes right
    "visits": [
        {"$group": {"_id": "$last_name", "visits": {"$sum": "$visits"}}},
        {"$sort": {"_id": 1}},
    ],
}
NAMES = 500
INSERT_CHUNK = 5_000  # documents per insert_many, as an application would load them


def model() -> Any:
    class BenchGroupPatient(me.Document):
        first_name = me.StringField()
        last_name = me.StringField()
        blood_type = me.StringField()
        visits = me.IntField()
        meta = {"db_alias": "bench"}

    return BenchGroupPatient


def seed(n: int) -> list[tuple[str, int]]:
    """(last_name, visits) of each document."""
    return [(f"L{i % NAMES:04d}", i % 17) for i in range(n)]


def expected(rows: list[tuple[str, int]], case: str) -> list[dict[str, Any]]:
    """The groups a pipeline should return, computed in Python."""
    counts: Counter[str] = Counter()
    visits: Counter[str] = Counter()
    for name, count in rows:
        counts[name] += 1
        visits[name] += count
    if case == "visits":
        return [{"_id": k, "visits": visits[k]} for k in sorted(counts)]
    return [{"_id": k, "n": counts[k], "visits": visits[k]} for k in sorted(counts)]


def connect(connect_fn: Callable[..., Any], uri: str | None) -> Callable[[], int]:
    db = f"bench_{uuid.uuid4().hex[:8]}"
    if uri is None:
        counter = OperationCounter()
        inner = functools.partial(mongomock.MongoClient, _store=ServerStore())
        connect_fn(db, alias="bench", mongo_client_class=counting_client_class(inner, counter))
        # reads only: the audit trail's appends are measured by stress/bench_audit.py
        return lambda: (
            counter.total() - sum(n for (c, _), n in counter.counts.items() if c == "privata_audit")
        )
    commands = CommandCounter()
    connect_fn(db, alias="bench", host=uri, event_listeners=[commands])
    return lambda: commands.total("find", "getMore", "aggregate")


Measured = dict[str, tuple[list[dict[str, Any]], float, int]]


def measure(connect_fn: Callable[..., Any], uri: str | None, n: int, repeats: int) -> Measured:
    """Per pipeline: the result, the median time and the round trips over ``n`` documents."""
    count = connect(connect_fn, uri)
    try:
        Patient = model()
        rows = seed(n)
        for start in range(0, n, INSERT_CHUNK):
            Patient.objects.insert(
                [
                    Patient(first_name=f"F{i}", last_name=name, blood_type="A+", visits=visits)
                    for i, (name, visits) in enumerate(rows[start : start + INSERT_CHUNK], start)
                ],
                load_bulk=False,
            )
        out: Measured = {}
        for case, pipeline in PIPELINES.items():
            times = []
            result: list[dict[str, Any]] = []
            trips = 0
            for _ in range(repeats):
                before = count()
                start = time.perf_counter()
                result = list(Patient.objects.aggregate(pipeline))
                times.append(time.perf_counter() - start)
                trips = count() - before
            out[case] = (result, statistics.median(times), trips)
        Patient.drop_collection()
        return out
    finally:
        me.disconnect("bench")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uri", help="a MongoDB wire-protocol server (default: mongomock)")
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated document counts")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--expected", action="store_true", help="also compare with the groups computed in Python"
    )
    parser.add_argument(
        "--key-cache-ttl",
        type=float,
        help="seconds data keys stay in memory (default 60: keys of documents inserted longer "
        "ago are read from the key vault again, once per identity batch)",
    )
    args = parser.parse_args()
    if args.key_cache_ttl is not None:
        privata_mongo.configure(key_cache_ttl=args.key_cache_ttl)
    # identity rows are encrypted: a server needs a master key (a throwaway one for the bench)
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    backend = args.uri or "mongomock"
    unit = "collection operations" if args.uri is None else "find/getMore/aggregate commands"
    print(f"backend: {backend}; round trips = {unit}; {NAMES} distinct last names")
    header = f"{'native ms':>10} {'wrapped ms':>11} {'ratio':>6}  {'trips n/w':>11}  equal"
    print(f"{'N':>7}  {'pipeline':<9} {header}" + ("  as computed n/w" if args.expected else ""))
    for n in (int(s) for s in args.sizes.split(",")):
        native = measure(me.connect, args.uri, n, args.repeats)
        wrapped = measure(pm.connect, args.uri, n, args.repeats)
        for case, (native_result, t_native, r_native) in native.items():
            wrapped_result, t_wrapped, r_wrapped = wrapped[case]
            line = (
                f"{n:>7}  {case:<9} {t_native * 1000:>10.1f} {t_wrapped * 1000:>11.1f} "
                f"{t_wrapped / t_native:>6.2f}  {r_native:>5}/{r_wrapped:<5}  "
                f"{native_result == wrapped_result}"
            )
            if args.expected:
                truth = expected(seed(n), case)
                line += f"  {native_result == truth}/{wrapped_result == truth}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
