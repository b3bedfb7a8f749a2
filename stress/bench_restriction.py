"""What restriction costs a read: native collections that can hold a marker, and the marker index.

1. A native model referencing a subject-bearing model is served by ``MarkedCollection`` (every
   read carries the restriction clause); another native model by ``PlainCollection``
   (native). Both hold ``--count`` documents of the same shape; one subject's documents are
   restricted. The same reads are timed on both through the proxy, in the same run, and given
   as a ratio.
2. The clause a restricted-aware read sends, ``{"$nor": [{"_rst.r": true, "_rst.a": {"$ne":
   purpose}}, {"_rst.o": purpose}]}`` beside the application's filter, timed on ``--count``
   stored rows with and without sparse indexes on ``_rst.r`` and ``_rst.o`` (FerretDB 1.24
   has no partial indexes).

    python stress/bench_restriction.py                  # mongomock, 10,000 documents
    python stress/bench_restriction.py --ferretdb       # a FerretDB of its own
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mongoengine as me
import mongomock
from mongomock.store import ServerStore

import privata_mongo.mongoengine as pm
from privata_mongo import Rights, access_context
from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
from privata_mongo.rights import Subject

# Run as `python stress/bench_restriction.py` from a checkout: the test kit sits beside it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PURPOSE = "treatment"
CLAUSE = {"$nor": [{"_rst.r": True, "_rst.a": {"$ne": PURPOSE}}, {"_rst.o": PURPOSE}]}


def _median(run: Callable[[], Any], repeat: int) -> float:
    run()  # warm
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def models() -> tuple[Any, Any, Any]:
    class CostPatient(pm.Document):
        first_name = pm.StringField()
        email = pm.StringField(searchable=True)

    class CostVisit(pm.Document):  # references a patient: can hold a marker
        patient = pm.ReferenceField(CostPatient)
        code = pm.StringField()
        value = pm.IntField()

    class CostReading(pm.Document):  # references nobody: native
        device = pm.ObjectIdField()
        code = pm.StringField()
        value = pm.IntField()

    return CostPatient, CostVisit, CostReading


def native_reads(count: int, repeat: int) -> None:
    """Marked against plain collection, same documents, same reads, same run."""
    patient_cls, visit_cls, reading_cls = models()
    with access_context(actor="bench", purpose="compliance", legal_basis="art6_1c"):
        patients = [
            patient_cls(first_name=f"p{i}", email=f"p{i}@example.org").save() for i in range(10)
        ]
        visits, readings = visit_cls._get_collection(), reading_cls._get_collection()
        for start in range(0, count, 1000):
            rows = [
                {"code": f"c{i % 50}", "value": i, "ref": patients[i % 10].id}
                for i in range(start, min(start + 1000, count))
            ]
            visits.insert_many([{"patient": r.pop("ref"), **r} for r in [dict(r) for r in rows]])
            readings.insert_many([{"device": r.pop("ref"), **r} for r in [dict(r) for r in rows]])
        Rights([patient_cls, visit_cls]).restrict(Subject(model="CostPatient", id=patients[0].id))
    print(f"{type(visits).__name__} against {type(readings).__name__}, {count:,} documents each")
    reads: dict[str, Callable[[Any], Any]] = {
        "find all": lambda c: list(c.find({})),
        "find code": lambda c: list(c.find({"code": "c7"})),
        "count_documents": lambda c: c.count_documents({"value": {"$gte": count // 2}}),
        "distinct": lambda c: c.distinct("code"),
    }
    with access_context(actor="bench", purpose=PURPOSE, legal_basis="art9_2h"):
        for name, read in reads.items():
            marked = _median(functools.partial(read, visits), repeat)
            plain = _median(functools.partial(read, readings), repeat)
            print(
                f"  {name:16} marked {marked * 1000:8.1f} ms  plain {plain * 1000:8.1f} ms  "
                f"ratio {marked / plain:5.2f}"
            )


def marker_index(raw_db: Any, count: int, repeat: int) -> None:
    """The read clause on stored rows with and without sparse indexes on the marker."""
    rows = raw_db[f"cost_rows_{uuid.uuid4().hex[:6]}"]
    for start in range(0, count, 1000):
        rows.insert_many(
            [
                {
                    "ward": f"w{i % 10}",
                    "value": i,
                    **({"_rst": {"r": True, "a": []}} if i % 100 == 0 else {}),
                }
                for i in range(start, min(start + 1000, count))
            ]
        )
    reads: dict[str, Callable[[], Any]] = {
        "all visible": lambda: list(rows.find(CLAUSE)),
        "ward visible": lambda: list(rows.find({"$and": [{"ward": "w3"}, CLAUSE]})),
        "count visible": lambda: rows.count_documents(CLAUSE),
    }
    without = {name: _median(read, repeat) for name, read in reads.items()}
    rows.create_index([("_rst.r", 1)], sparse=True)
    rows.create_index([("_rst.o", 1)], sparse=True)
    print(f"marker index, {count:,} stored rows, 1 in 100 restricted")
    for name, read in reads.items():
        indexed = _median(read, repeat)
        print(
            f"  {name:16} without {without[name] * 1000:8.1f} ms  "
            f"with sparse indexes {indexed * 1000:8.1f} ms  ratio {indexed / without[name]:5.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ferretdb", action="store_true", help="start a FerretDB of its own")
    args = parser.parse_args()
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    with contextlib.ExitStack() as stack:
        uri = None
        if args.ferretdb:
            from testkit.ferretdb import start_ferretdb

            folder = stack.enter_context(tempfile.TemporaryDirectory())
            uri = stack.enter_context(start_ferretdb(Path(folder))).uri
        db = f"bench_{uuid.uuid4().hex[:8]}"
        if uri is None:
            client_class = functools.partial(mongomock.MongoClient, _store=ServerStore())
            pm.connect(db, mongo_client_class=client_class, uuidRepresentation="standard")
        else:
            pm.connect(db, host=uri, uuidRepresentation="standard")
        print(f"on {uri or 'mongomock'}")
        try:
            native_reads(args.count, args.repeat)
            marker_index(pm.get_db().inner, args.count, args.repeat)
        finally:
            pm.get_connection().drop_database(db)
            me.disconnect()


if __name__ == "__main__":
    main()
