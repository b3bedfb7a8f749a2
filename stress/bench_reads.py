"""Reads through the wrapper against native mongoengine, measured in the same run.

For N documents of a model with identity and clinical fields and a ReferenceField, measures
``list(Model.objects[:N])``, the same with ``select_related()``, a filter on an identity field
(server-side equality) and one evaluated in the process (a range, which every backend also runs
natively: mongoengine's ``icontains`` sends a ``u``-flagged regex FerretDB refuses): wall time
per call (median of repeats) and round trips (collection operations on mongomock, wire commands on a
server), native and wrapped, and prints their ratios.

    python stress/bench_reads.py                       # mongomock
    python stress/bench_reads.py --uri mongodb://127.0.0.1:27017/   # a server (FerretDB, MongoDB)
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import mongoengine as me
import mongomock
from mongomock.store import ServerStore

import privata_mongo.mongoengine as pm
from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
from privata_mongo.testing import CommandCounter, OperationCounter, counting_client_class


def models() -> tuple[Any, Any]:
    class BenchClinic(me.Document):
        name = me.StringField()
        meta = {"db_alias": "bench"}

    class BenchPatient(me.Document):
        first_name = me.StringField()
        last_name = me.StringField(searchable=True)  # equality via the blind index
        email = me.StringField()
        blood_type = me.StringField()
        visits = me.IntField()
        clinic = me.ReferenceField(BenchClinic)
        meta = {"db_alias": "bench"}

    return BenchClinic, BenchPatient


def connect(connect_fn: Callable[..., Any], uri: str | None) -> Callable[[], int]:
    db = f"bench_{uuid.uuid4().hex[:8]}"
    if uri is None:
        counter = OperationCounter()
        inner = functools.partial(mongomock.MongoClient, _store=ServerStore())
        connect_fn(
            db,
            alias="bench",
            mongo_client_class=counting_client_class(inner, counter),
            uuidRepresentation="standard",
        )
        return counter.total
    commands = CommandCounter()
    connect_fn(
        db, alias="bench", host=uri, uuidRepresentation="standard", event_listeners=[commands]
    )
    return lambda: commands.total("find", "getMore", "aggregate", "count")


def measure(
    connect_fn: Callable[..., Any], uri: str | None, n: int, repeats: int
) -> dict[str, tuple[float, int]]:
    count = connect(connect_fn, uri)
    try:
        Clinic, Patient = models()
        clinics = [Clinic(name=f"C{i}").save() for i in range(5)]
        Patient.objects.insert(
            [
                Patient(
                    first_name=f"F{i}",
                    last_name=f"L{i % 50}",
                    email=f"p{i}@x.org",
                    blood_type="A+",
                    visits=i,
                    clinic=clinics[i % 5],
                )
                for i in range(n)
            ],
            load_bulk=False,
        )
        cases: dict[str, Callable[[], object]] = {
            "page": lambda: list(Patient.objects[:n]),
            "page+select_related": lambda: list(Patient.objects[:n].select_related()),
            "filter identity (equality)": lambda: list(Patient.objects(last_name="L7")),
            "filter identity (in process)": lambda: list(
                Patient.objects(visits__lt=n, email__gte="p9", email__lt="p:")
            ),
        }
        out = {}
        for name, case in cases.items():
            times = []
            for _ in range(repeats):
                before = count()
                start = time.perf_counter()
                case()
                times.append(time.perf_counter() - start)
                trips = count() - before
            out[name] = (statistics.median(times), trips)
        Patient.drop_collection()
        Clinic.drop_collection()
        return out
    finally:
        me.disconnect("bench")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uri", help="a MongoDB wire-protocol server (default: mongomock)")
    parser.add_argument("--sizes", default="100,1000", help="comma-separated document counts")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    # identity rows are encrypted: a server needs a master key (a throwaway one for the bench)
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    backend = args.uri or "mongomock"
    unit = "collection operations" if args.uri is None else "find/getMore/aggregate/count commands"
    print(f"backend: {backend}; round trips = {unit}")
    header = f"{'native ms':>10} {'wrapped ms':>11} {'ratio':>6}  {'trips n/w':>9}"
    print(f"{'N':>6}  {'case':<30} {header}")
    for n in (int(s) for s in args.sizes.split(",")):
        native = measure(me.connect, args.uri, n, args.repeats)
        wrapped = measure(pm.connect, args.uri, n, args.repeats)
        for case, (t_native, r_native) in native.items():
            t_wrapped, r_wrapped = wrapped[case]
            print(
                f"{n:>6}  {case:<30} {t_native * 1000:>10.2f} {t_wrapped * 1000:>11.2f} "
                f"{t_wrapped / t_native:>6.2f}  {r_native:>4}/{r_wrapped:<4}"
            )


if __name__ == "__main__":
    main()
