"""What the audit trail costs: wrapped-with-audit against wrapped-without, in the same run.

For a model with identity and clinical fields, measures reads (a page of N documents, a
lookup by id, a filtered count) and writes (``save`` of a new document, ``save`` of a changed
one, a ``QuerySet.update`` over many documents, a delete) through the mongoengine facade, once
with ``configure(audit=False)`` and once with the default trail (the database's
``privata_audit`` collection), and prints the median time per call of each and their ratio.
Run ``bench_reads.py`` for the wrapper against native mongoengine.

    python stress/bench_audit.py                                    # mongomock
    python stress/bench_audit.py --uri mongodb://127.0.0.1:27017/   # a server (FerretDB, MongoDB)
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import mongoengine as me
import mongomock
from mongomock.store import ServerStore

import privata_mongo
import privata_mongo.mongoengine as pm


def model() -> Any:
    class AuditBenchPatient(me.Document):
        first_name = me.StringField()
        email = me.StringField()
        blood_type = me.StringField()
        visits = me.IntField()
        meta = {"db_alias": "bench"}

    return AuditBenchPatient


def measure(uri: str | None, audit: bool, n: int, repeats: int) -> dict[str, float]:
    privata_mongo.configure(audit=audit)
    db = f"bench_{uuid.uuid4().hex[:8]}"
    if uri is None:
        inner = functools.partial(mongomock.MongoClient, _store=ServerStore())
        pm.connect(db, alias="bench", mongo_client_class=inner, uuidRepresentation="standard")
    else:
        pm.connect(db, alias="bench", host=uri, uuidRepresentation="standard")
    try:
        Patient = model()
        Patient.objects.insert(
            [
                Patient(first_name=f"F{i}", email=f"p{i}@x.org", blood_type="A+", visits=i)
                for i in range(n)
            ],
            load_bulk=False,
        )
        one = Patient.objects.first()
        counter = iter(range(10**9))

        def new() -> None:
            Patient(first_name="N", email=f"n{next(counter)}@x.org", visits=0).save()

        def change() -> None:
            one.visits += 1
            one.save()

        def delete() -> None:
            Patient.objects(email=f"n{next(counter)}@x.org").delete()

        reads: dict[str, Callable[[], object]] = {
            f"read: page of {n}": lambda: list(Patient.objects[:n]),
            "read: get by id": lambda: Patient.objects.get(id=one.id),
            "read: filtered count": lambda: Patient.objects(visits__lt=n // 2).count(),
        }
        writes: dict[str, Callable[[], object]] = {
            "write: save (insert)": new,
            "write: save (update)": change,
            f"write: QuerySet.update of {n}": lambda: Patient.objects.update(inc__visits=1),
            "write: delete by identity field": delete,
        }
        out: dict[str, float] = {}
        for name, case in {**reads, **writes}.items():
            case()  # warm up (index creation, first connection)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                case()
                times.append(time.perf_counter() - start)
            out[name] = statistics.median(times)
        Patient.drop_collection()
        return out
    finally:
        me.disconnect("bench")
        privata_mongo.configure(audit=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uri", help="a MongoDB wire-protocol server (default: mongomock)")
    parser.add_argument("--size", type=int, default=1000, help="documents in the collection")
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    with privata_mongo.access_context(actor="bench", purpose="benchmark"):
        without = measure(args.uri, False, args.size, args.repeats)
        with_audit = measure(args.uri, True, args.size, args.repeats)
    print(f"backend: {args.uri or 'mongomock'}, {args.size} documents, median of {args.repeats}")
    print(f"{'case':36} {'no audit ms':>12} {'audit ms':>10} {'ratio':>7}")
    ratios: dict[str, list[float]] = {"read": [], "write": []}
    for name, base in without.items():
        audited = with_audit[name]
        ratio = audited / base
        ratios[name.split(":")[0]].append(ratio)
        print(f"{name:36} {base * 1000:12.2f} {audited * 1000:10.2f} {ratio:7.2f}")
    for kind, values in ratios.items():
        print(f"geometric mean ratio, {kind}s: {statistics.geometric_mean(values):.2f}")


if __name__ == "__main__":
    main()
