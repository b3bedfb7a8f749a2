"""The cost of encrypting identity rows: CPU per document, and reads against native.

1. Encrypt + decrypt CPU per identity document (one sealed CSFLE subdocument, as stored)
   against its field count (1, 5, 20 string fields), with the data key in memory; the same
   with one CSFLE value per field, for comparison with the layout chosen.
2. ``list(Model.objects)`` for 100 documents on mongomock: native mongoengine against the
   wrapper (split, encrypted, joined), and their ratio.

    python stress/bench_crypto.py [--repeat 200]
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
from privata_mongo.core.crypto import KeyRing
from privata_mongo.encryption import MASTER_KEY_ENV, forget_keys, new_master_key
from privata_mongo.testing import ScriptedDriver


def _per_call(action: Callable[[], object], repeat: int) -> float:
    """Median seconds of one call over ``repeat`` runs (after a warm-up)."""
    action()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def local(flow: Any) -> Any:
    """Run a key-ring flow under the local master key (it asks for no I/O)."""
    return ScriptedDriver([]).run(flow)


def bench_cpu(repeat: int) -> None:
    ring = KeyRing({"local": {"key": os.urandom(96)}}, clock=time.monotonic)
    ring.add([local(ring.new_key("pseu_bench"))])
    print("encrypt+decrypt CPU per identity document (median µs)")
    print(f"{'fields':>6} {'one sealed doc':>15} {'per field':>10} {'ratio':>6}")
    for count in (1, 5, 20):
        values = {f"field_{i}": f"value number {i} of a person" for i in range(count)}

        def whole(values: dict[str, Any] = values) -> None:
            local(ring.open(local(ring.seal("pseu_bench", values))))

        def each(values: dict[str, Any] = values) -> None:
            for key, value in values.items():
                local(ring.open(local(ring.seal("pseu_bench", {key: value}))))

        one = _per_call(whole, repeat) * 1e6
        separate = _per_call(each, repeat) * 1e6
        print(f"{count:>6} {one:>15.1f} {separate:>10.1f} {separate / one:>6.1f}")


def _model(alias: str) -> Any:
    class BenchCryptPatient(me.Document):
        first_name = me.StringField()
        last_name = me.StringField()
        email = me.StringField()
        date_of_birth = me.DateTimeField()
        blood_type = me.StringField()
        visits = me.IntField()
        meta = {"db_alias": alias, "collection": "bench_crypt_patient"}

    return BenchCryptPatient


def _fill(model: Any, count: int) -> None:
    model.objects.insert(
        [
            model(
                first_name=f"First{i}",
                last_name=f"Last{i}",
                email=f"p{i}@example.org",
                blood_type="A+",
                visits=i,
            )
            for i in range(count)
        ]
    )


def bench_find(count: int, repeat: int) -> None:
    results: dict[str, float] = {}
    for label, connect in (("native", me.connect), ("wrapped", pm.connect)):
        alias = f"bench_{label}"
        db = f"bench_{uuid.uuid4().hex[:8]}"
        inner = functools.partial(mongomock.MongoClient, _store=ServerStore())
        connect(db, alias=alias, mongo_client_class=inner, uuidRepresentation="standard")
        try:
            model = _model(alias)
            _fill(model, count)
            results[label] = _per_call(lambda model=model: list(model.objects), repeat)
        finally:
            me.disconnect(alias)
    native, wrapped = results["native"], results["wrapped"]
    print(f"\nlist(Model.objects) for {count} documents on mongomock (median ms)")
    print(f"native {native * 1e3:.2f}  wrapped {wrapped * 1e3:.2f}  ratio {wrapped / native:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--documents", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    forget_keys()
    bench_cpu(args.repeat)
    bench_find(args.documents, max(args.repeat // 10, 5))


if __name__ == "__main__":
    main()
