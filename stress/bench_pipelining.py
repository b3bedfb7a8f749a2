"""Whether sending two independent commands at once beats sending them one after the other.

Raw pymongo, no privata code: the question behind pipelining an operation's audit writes (the
record and its checkpoint) with each other, or with the read they record. Each pair is sent
three ways, interleaved over ``--repeat`` rounds so the machine's load falls on all of them:

- one after the other (what the drivers do today);
- at once from two threads (``MongoClient`` is thread-safe; the sync facade would need a pool);
- at once from two tasks (``asyncio.gather`` on ``AsyncMongoClient``, the async facade), against
  the same client one after the other.

Pairs, on a collection of ``--rows`` small documents:

- ``record + checkpoint``: an insert into one collection and a replace by ``_id`` in another
  (an audit append);
- ``read + record``: a ``find_one`` by ``_id`` and an insert into another collection (a read
  and its audit record, sent together).

The score is the median wall time of a pair, in ms.

    python -m stress.bench_pipelining [--uri mongodb://…] [--rows 1000] [--repeat 200]

Without ``--uri`` a FerretDB is started as the test plugin starts it. Results:
``stress/results/pipelining.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, MongoClient

from stress.odm.run import commit, machine, provenance
from testkit.ferretdb import server_uri

RESULTS = Path(__file__).resolve().parent / "results"
Pair = tuple[Callable[[int], object], Callable[[int], object]]
"""The two commands of a pair, each given the round's number."""
AsyncPair = tuple[Callable[[int], Awaitable[object]], Callable[[int], Awaitable[object]]]


def _ways(
    sync: Pair, both: AsyncPair, pool: ThreadPoolExecutor, loop: asyncio.AbstractEventLoop
) -> dict[str, Callable[[int], None]]:
    """The four ways of sending one pair (the async client's sequential one is the like-for-like
    baseline of ``gather``: an event loop adds its own cost)."""
    first, second = sync
    afirst, asecond = both

    def in_turn_sync(i: int) -> None:
        first(i)
        second(i)

    def in_threads(i: int) -> None:
        pending = pool.submit(first, i)
        second(i)
        pending.result()

    async def in_turn(i: int) -> None:
        await afirst(i)
        await asecond(i)

    async def at_once(i: int) -> None:
        await asyncio.gather(afirst(i), asecond(i))

    return {
        "one after the other": in_turn_sync,
        "two threads": in_threads,
        "one after the other (async)": lambda i: loop.run_until_complete(in_turn(i)),
        "two tasks (asyncio.gather)": lambda i: loop.run_until_complete(at_once(i)),
    }


def measure(uri: str, rows: int, repeat: int) -> dict[str, dict[str, float]]:
    """The median ms of each pair sent each way."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    aclient: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    db, adb = client["pipelining"], aclient["pipelining"]
    for name in ("data", "trail", "checkpoints"):
        db.drop_collection(name)
    for start in range(0, rows, 1_000):
        db["data"].insert_many(
            [
                {"_id": f"row{n}", "n": n, "pad": "x" * 64}
                for n in range(start, min(rows, start + 1_000))
            ]
        )
    db["checkpoints"].insert_one({"_id": "head", "seq": 0})
    middle = f"row{rows // 2}"
    pool = ThreadPoolExecutor(2)
    loop = asyncio.new_event_loop()

    def record() -> dict[str, Any]:
        return {"_id": uuid.uuid4().hex, "op": "read", "pad": "y" * 200}

    def pair(database: Any, first: str, second: str) -> Any:
        commands = {
            "record": lambda i: database["trail"].insert_one(record()),
            "checkpoint": lambda i: database["checkpoints"].replace_one(
                {"_id": "head"}, {"seq": i}
            ),
            "read": lambda i: database["data"].find_one({"_id": middle}),
        }
        return commands[first], commands[second]

    pairs = {
        "record + checkpoint": ("record", "checkpoint"),
        "read + record": ("read", "record"),
    }
    try:
        result: dict[str, dict[str, float]] = {}
        for name, (first, second) in pairs.items():
            actions = _ways(pair(db, first, second), pair(adb, first, second), pool, loop)
            times: dict[str, list[float]] = {way: [] for way in actions}
            for i in range(repeat):
                order = list(actions)
                shift = i % len(order)
                for way in order[shift:] + order[:shift]:
                    began = time.perf_counter()
                    actions[way](i)
                    times[way].append((time.perf_counter() - began) * 1e3)
            result[name] = {way: round(statistics.median(t), 3) for way, t in times.items()}
        return result
    finally:
        pool.shutdown()
        loop.run_until_complete(aclient.close())
        loop.close()
        client.close()


def markdown(result: dict[str, Any]) -> str:
    ways = list(next(iter(result["pairs"].values())))
    lines = [
        f"# Two commands at once or one after the other ({result['server']}), raw pymongo",
        "",
        f"{provenance(result)}; {result['rows']:,} rows, "
        f"median ms of {result['repeat']} interleaved rounds per cell.",
        "",
        "| pair | " + " | ".join(ways) + " |",
        "|---|" + "---|" * len(ways),
    ]
    lines += [
        f"| {name} | " + " | ".join(f"{cells[w]:.2f}" for w in ways) + " |"
        for name, cells in result["pairs"].items()
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uri", help="a running server (default: start FerretDB)")
    parser.add_argument("--rows", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS / "pipelining")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with server_uri(args.uri, "pipelining-ferretdb-") as uri:
        pairs = measure(uri, args.rows, args.repeat)
    result = {
        "started": started,
        **commit(),
        "machine": machine(),
        "server": "a server by URI" if args.uri else "FerretDB v1.24 (SQLite)",
        "rows": args.rows,
        "repeat": args.repeat,
        "pairs": pairs,
    }
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
