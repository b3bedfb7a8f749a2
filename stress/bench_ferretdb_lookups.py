"""What a look-up by ``_id`` costs on FerretDB v1.24 (SQLite) as the collection grows.

Raw pymongo, no privata code: the cost model every ratio measured on FerretDB sits on. For
each size (documents of about 120 bytes, ``ObjectId`` ids), the median ms of:

- ``find_one({_id})`` of a document near the start and near the end of the collection;
- ``find({_id})`` (a cursor, as an ODM's get or a join sends it);
- ``find({_id, "a.b": …})`` (a dotted condition next to the ``_id``);
- ``find({_id: {$in: [one id]}})`` and ``find({n: …})`` (a condition on another field);
- ``update_one({_id}, …)`` and ``update_one({_id, cond}, …)`` (a conditional write).

Why these: FerretDB's SQLite backend turns a filter that is exactly ``{_id: <string or
ObjectId>}`` into a SQL ``WHERE`` (after dropping dotted keys, on ``find`` only), and every other
filter into a scan decoded and matched in Go. The ``WHERE`` does not use the unique ``_id``
index either (the index is on ``_ferretdb_sjson->"_id"``, the query on
``_ferretdb_sjson->'$._id'``), so even ``{_id}`` is a scan, only a cheaper one. A ``find_one``
stops at the first match, so its cost depends on where the document sits.

    python stress/bench_ferretdb_lookups.py [--sizes 2000 20000] [--uri mongodb://…]

Without ``--uri`` a FerretDB is started as the test plugin starts it. Results:
``stress/results/ferretdb-lookups.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bson import ObjectId
from pymongo import MongoClient

from testkit.ferretdb import server_uri

RESULTS = Path(__file__).resolve().parent / "results"
REPEAT = 15


def _median_ms(action: Callable[[int], object]) -> float:
    times = []
    for i in range(REPEAT):
        start = time.perf_counter()
        action(i)
        times.append((time.perf_counter() - start) * 1e3)
    return round(statistics.median(times), 3)


def measure(uri: str, size: int) -> dict[str, float]:
    """Every look-up of the module docstring on a collection of ``size`` documents."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    try:
        col = client["lookups"][f"rows_{size}"]
        col.drop()
        ids = [ObjectId() for _ in range(size)]
        for start in range(0, size, 1_000):
            col.insert_many(
                [
                    {"_id": oid, "n": start + k, "a": {"b": k % 7}, "pad": "x" * 64}
                    for k, oid in enumerate(ids[start : start + 1_000])
                ]
            )
        first, last = ids[:REPEAT], ids[-REPEAT:]
        middle = ids[size // 2 : size // 2 + REPEAT]
        return {
            "find_one _id, near the start": _median_ms(lambda i: col.find_one({"_id": first[i]})),
            "find_one _id, near the end": _median_ms(lambda i: col.find_one({"_id": last[i]})),
            "find _id (cursor)": _median_ms(lambda i: list(col.find({"_id": middle[i]}))),
            "find _id + dotted condition": _median_ms(
                lambda i: list(col.find({"_id": middle[i], "a.b": {"$ne": 99}}))
            ),
            "find _id $in one id": _median_ms(
                lambda i: list(col.find({"_id": {"$in": [middle[i]]}}))
            ),
            "find by another field": _median_ms(lambda i: list(col.find({"n": size // 2 + i}))),
            "update_one _id": _median_ms(
                lambda i: col.update_one({"_id": middle[i]}, {"$set": {"w": i}})
            ),
            "update_one _id + condition": _median_ms(
                lambda i: col.update_one({"_id": middle[i], "a.b": {"$ne": 99}}, {"$set": {"w": i}})
            ),
        }
    finally:
        client.close()


def markdown(result: dict[str, Any]) -> str:
    sizes = list(result["sizes"])
    lines = [
        "# Look-ups by _id on FerretDB v1.24 (SQLite), raw pymongo",
        "",
        f"Started {result['started']}; median ms of {REPEAT} calls per cell.",
        "",
        "| look-up | " + " | ".join(f"{int(s):,} documents" for s in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    lines += [
        f"| {name} | " + " | ".join(f"{result['sizes'][s][name]:.2f}" for s in sizes) + " |"
        for name in result["sizes"][sizes[0]]
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="+", type=int, default=[2_000, 20_000])
    parser.add_argument("--uri", help="a running server (default: start FerretDB)")
    parser.add_argument("--out", type=Path, default=RESULTS / "ferretdb-lookups")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with server_uri(args.uri, "lookups-ferretdb-") as uri:
        sizes = {str(size): measure(uri, size) for size in args.sizes}
    result = {"started": started, "sizes": sizes}
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
