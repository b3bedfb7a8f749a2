"""The cost of encrypting identity rows: CPU per document, and reads against native.

1. Encrypt + decrypt CPU per identity document (one sealed CSFLE subdocument, as stored)
   against its field count (1, 5, 20 string fields), with the data key in memory; the same
   with one CSFLE value per field, for comparison with the layout chosen.
2. ``list(Model.objects)`` for 100 documents on mongomock: native mongoengine against the
   wrapper (split, encrypted, joined), and their ratio.
3. Opening one row per subject with 1, 1,000 and 3,000 data keys held, through libmongocrypt
   (the path of a remote master key, and of every key before ``core/crypto/aead``) and through
   ``aead`` (a ``local`` master key), in the same run; and the memory the ring holds at 3,000
   keys either way (Python allocations by tracemalloc, and the resident set of a fresh
   process, which also counts what libmongocrypt allocates in C).

    python stress/bench_crypto.py [--repeat 200] [--json stress/results/crypto.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mongoengine as me
import mongomock
from mongomock.store import ServerStore

import privata_mongo.mongoengine as pm
from privata_mongo.core.crypto import KeyRing
from privata_mongo.core.crypto import ring as ring_module
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


KEY_COUNTS = (1, 1000, 3000)
PATHS = ("libmongocrypt", "aead")


def _held_ring(count: int) -> tuple[KeyRing, list[Any]]:
    """A ring holding ``count`` data keys, and one sealed row per key."""
    ring = KeyRing({"local": {"key": os.urandom(96)}}, clock=time.monotonic)
    names = [f"pseu_{i:032x}" for i in range(count)]
    ring.add([local(ring.new_key(name)) for name in names])
    sealed = [local(ring.seal(name, {"first_name": "Ada", "email": "a@x.org"})) for name in names]
    return ring, sealed


def _use_path(path: str) -> None:
    """Open through libmongocrypt (as a remote master key does) or through ``aead``."""
    if path == "libmongocrypt":
        ring_module._local_key = lambda provider, kms_providers: None  # type: ignore[assignment]


def _open_rows(ring: KeyRing, sealed: list[Any], rows: int) -> None:
    for i in range(rows):
        local(ring.open(sealed[i % len(sealed)]))


def bench_open(rows: int, passes: int) -> dict[str, dict[int, float]]:
    """Median µs per opened row, per path and key count; paths alternate within each pass."""
    original = ring_module._local_key
    out: dict[str, dict[int, float]] = {path: {} for path in PATHS}
    for count in KEY_COUNTS:
        ring, sealed = _held_ring(count)
        _open_rows(ring, sealed, len(sealed))  # every key unwrapped once, on both paths
        times: dict[str, list[float]] = {path: [] for path in PATHS}
        for _ in range(passes):
            for path in PATHS:
                ring_module._local_key = original
                _use_path(path)
                start = time.perf_counter()
                _open_rows(ring, sealed, rows)
                times[path].append((time.perf_counter() - start) / rows)
        ring_module._local_key = original
        for path in PATHS:
            out[path][count] = statistics.median(times[path]) * 1e6
    print(f"\nopening one row per subject (median µs per row, {rows} rows x {passes} passes)")
    print(f"{'keys held':>9} " + " ".join(f"{path:>14}" for path in PATHS))
    for count in KEY_COUNTS:
        print(f"{count:>9} " + " ".join(f"{out[path][count]:>14.1f}" for path in PATHS))
    return out


def _resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_probe(path: str, count: int) -> dict[str, float]:
    """Memory a ring holds once ``count`` keys were used to open a row each (this process)."""
    _use_path(path)
    baseline = _resident()
    tracemalloc.start()
    ring, sealed = _held_ring(count)
    _open_rows(ring, sealed, count)
    held, _ = tracemalloc.get_traced_memory()
    del sealed
    held_ring, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    resident = _resident() - baseline
    assert ring.key_id(f"pseu_{0:032x}") is not None
    return {
        "python_mib": held_ring / 2**20,
        "resident_mib": resident / 2**20,
        "all_mib": held / 2**20,
    }


def bench_memory(count: int) -> dict[str, dict[str, float]]:
    """Each path measured in a fresh interpreter, so neither sees the other's allocations."""
    out = {}
    for path in PATHS:
        probe = subprocess.run(  # noqa: S603 - this script, with fixed arguments
            [sys.executable, __file__, "--memory-probe", path, "--keys", str(count)],
            check=True,
            capture_output=True,
            text=True,
        )
        out[path] = json.loads(probe.stdout)
    print(f"\nmemory held by the key ring after opening a row of each of {count} subjects (MiB)")
    print(f"{'path':>14} {'python':>8} {'resident':>9}")
    for path in PATHS:
        print(f"{path:>14} {out[path]['python_mib']:>8.2f} {out[path]['resident_mib']:>9.2f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--documents", type=int, default=100)
    parser.add_argument("--rows", type=int, default=1000, help="rows opened per pass")
    parser.add_argument("--passes", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the opening and memory figures here")
    parser.add_argument("--only-open", action="store_true", help="skip parts 1 and 2")
    parser.add_argument("--memory-probe", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--keys", type=int, default=3000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, args.keys)))
        return
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    forget_keys()
    if not args.only_open:
        bench_cpu(args.repeat)
        bench_find(args.documents, max(args.repeat // 10, 5))
    opened = bench_open(args.rows, args.passes)
    memory = bench_memory(KEY_COUNTS[-1])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        measured = {
            **_commit(),
            "loadavg": list(os.getloadavg()),
            "cpus": os.cpu_count(),
            "open_us_per_row": opened,
            "memory_mib": memory,
        }
        args.json.write_text(json.dumps(measured, indent=2) + "\n")


def _commit() -> dict[str, Any]:
    """The commit measured and whether the tree differed from it."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(  # noqa: S603 - git with fixed arguments
            [shutil.which("git") or "git", *args],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


if __name__ == "__main__":
    main()
