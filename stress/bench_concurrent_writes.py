"""Concurrent updates of one document: native against wrapped, measured in the same run.

W writers (threads on the sync facade, tasks on the async facade) each send E updates of one
document, ``inc score`` plus ``set first_name`` (a clinical and an identity field, so the
wrapped update is two writes under the document's write lease). Reported per facade and W:
updates applied / expected, errors, lease waits (back-offs; native: none), wall time, and the
wall-time ratio wrapped / native.

The backend must apply each operation atomically (docs/reliability.md): by default mongomock
behind ``serialised_mongomock`` (threads) and the embedded backend (tasks), each operation
followed by a simulated round trip of ``--latency`` seconds so that writers interleave as
against a server; or a server by URI (a real MongoDB: FerretDB v1.24 loses concurrent updates
even without privata).

    python stress/bench_concurrent_writes.py
    python stress/bench_concurrent_writes.py --writers 4,16,64 --each 10 --latency 0.0002
    python stress/bench_concurrent_writes.py --uri mongodb://127.0.0.1:27017/
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import beanie
import mongoengine as me
import mongomock
import pymongo
from mongomock.store import ServerStore

import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from privata_mongo.core.flows import identity_writes
from privata_mongo.embedded import AsyncMockClient
from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
from privata_mongo.testing.serialised import delayed_embedded, serialised_mongomock


@dataclass
class Run:
    """What one run of W writers x E updates did."""

    applied: int
    expected: int
    errors: int
    waits: int
    seconds: float


class _Waits:
    """Counts the back-offs of waiting writers (each is one ``Pause`` of the lease)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        original = identity_writes.backoff

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.count += 1
            return (yield from original(*args, **kwargs))

        identity_writes.backoff = counted  # type: ignore[assignment]
        try:
            yield
        finally:
            identity_writes.backoff = original


def _sync_run(wrapped: bool, uri: str | None, writers: int, each: int) -> Run:
    odm: Any = pm if wrapped else me
    db = f"bench_{uuid.uuid4().hex[:8]}"
    if uri is None:
        client_class = functools.partial(mongomock.MongoClient, _store=ServerStore())
        odm.connect(db, alias="bench", mongo_client_class=client_class)
    else:
        odm.connect(db, alias="bench", host=uri)

    class BenchWriter(odm.Document):  # type: ignore[misc,name-defined]
        first_name = me.StringField()
        score = me.IntField(default=0)
        meta = {"db_alias": "bench", "collection": "bench_writers"}

    try:
        target = BenchWriter(first_name="start").save()
        start_line = threading.Barrier(writers)
        errors: list[BaseException] = []

        def work(w: int) -> None:
            start_line.wait()
            for i in range(each):
                try:
                    BenchWriter.objects(id=target.id).update_one(
                        inc__score=1, set__first_name=f"w{w}-{i}"
                    )
                except Exception as exc:  # noqa: PERF203 - counted and reported
                    errors.append(exc)

        waits = _Waits()
        with waits.counting(), ThreadPoolExecutor(writers) as pool:
            begin = time.perf_counter()
            list(pool.map(work, range(writers)))
            seconds = time.perf_counter() - begin
        applied = BenchWriter.objects.get(id=target.id).score
        BenchWriter.drop_collection()
        return Run(applied, writers * each, len(errors), waits.count, seconds)
    finally:
        me.disconnect("bench")


async def _async_run(wrapped: bool, uri: str | None, writers: int, each: int) -> Run:
    odm: Any = pb if wrapped else beanie
    client: Any = AsyncMockClient() if uri is None else pymongo.AsyncMongoClient(uri)

    class BenchTask(odm.Document):  # type: ignore[misc,name-defined]
        first_name: str
        score: int = 0

        class Settings:
            name = "bench_tasks"

    name = f"bench_{uuid.uuid4().hex[:8]}"
    await odm.init_beanie(database=client[name], document_models=[BenchTask])
    target = await BenchTask(first_name="start").insert()

    async def work(w: int) -> int:
        failed = 0
        for i in range(each):
            try:
                await BenchTask.find_one(BenchTask.id == target.id).update(
                    {"$inc": {"score": 1}, "$set": {"first_name": f"t{w}-{i}"}}
                )
            except Exception:  # noqa: PERF203 - counted and reported
                failed += 1
        return failed

    waits = _Waits()
    with waits.counting():
        begin = time.perf_counter()
        failures = await asyncio.gather(*(work(w) for w in range(writers)))
        seconds = time.perf_counter() - begin
    stored = await BenchTask.get(target.id)
    if uri is not None:
        await client.drop_database(name)
        await client.close()
    return Run(stored.score if stored else 0, writers * each, sum(failures), waits.count, seconds)


def _row(facade: str, writers: int, native: Run, wrapped: Run) -> str:
    def cells(run: Run) -> str:
        return (
            f"{run.applied:>4}/{run.expected:<4} {run.errors:>4} {run.waits:>6} "
            f"{run.seconds * 1000:>9.0f}"
        )

    ratio = wrapped.seconds / native.seconds if native.seconds else float("nan")
    return f"{facade:<6} {writers:>3}  {cells(native)}  {cells(wrapped)}  {ratio:>6.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uri", help="a MongoDB server (default: serialised mongomock)")
    parser.add_argument("--writers", default="4,16,64", help="comma-separated writer counts")
    parser.add_argument("--each", type=int, default=10, help="updates per writer")
    parser.add_argument(
        "--latency", type=float, default=0.0002, help="simulated round trip, seconds (mongomock)"
    )
    args = parser.parse_args()
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    counts = [int(w) for w in args.writers.split(",")]
    print(f"backend: {args.uri or f'mongomock, {args.latency * 1000:g} ms per round trip'}")
    print(f"updates per writer: {args.each}; inc score + set first_name on one document")
    side = f"{'applied':>9} {'err':>4} {'waits':>6} {'ms':>9}"
    print(
        f"{'facade':<6} {'W':>3}  {'native':<{len(side)}}  {'wrapped':<{len(side)}}  {'ratio':>6}"
    )
    print(f"{'':<6} {'':>3}  {side}  {side}")
    sync_backend: Any = (
        serialised_mongomock(args.latency) if args.uri is None else contextlib.nullcontext()
    )
    with sync_backend:
        for writers in counts:
            native = _sync_run(False, args.uri, writers, args.each)
            wrapped = _sync_run(True, args.uri, writers, args.each)
            print(_row("sync", writers, native, wrapped), flush=True)
    async_backend: Any = (
        delayed_embedded(args.latency) if args.uri is None else contextlib.nullcontext()
    )
    with async_backend:
        for writers in counts:
            native = asyncio.run(_async_run(False, args.uri, writers, args.each))
            wrapped = asyncio.run(_async_run(True, args.uri, writers, args.each))
            print(_row("async", writers, native, wrapped), flush=True)


if __name__ == "__main__":
    main()
