"""``Collection.with_options`` on the proxy against the real collection, and saves per index.

mongoengine copies the collection with ``with_options`` on every save with a write concern;
the proxy's copy builds a split collection over the two real copies and shares the runtime
(its record of the indexes ensured included). Prints the median µs of one copy, both ways,
and the index creations 100 saves send (the first save's, then none).

    python stress/bench_with_options.py                          # mongomock
    python stress/bench_with_options.py --uri mongodb://127.0.0.1:27017/
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
import uuid
from collections.abc import Callable

import mongoengine as me
import mongomock
from mongomock.store import ServerStore
from pymongo import WriteConcern

import privata_mongo.mongoengine as pm
from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
from privata_mongo.testing import CommandCounter


def _median_us(action: Callable[[], object], repeat: int) -> float:
    action()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri")
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    db = f"bench_wo_{uuid.uuid4().hex[:8]}"
    commands = CommandCounter()
    if args.uri is None:
        inner = functools.partial(mongomock.MongoClient, _store=ServerStore())
        pm.connect(db, alias="wo", mongo_client_class=inner, uuidRepresentation="standard")
    else:
        pm.connect(
            db, alias="wo", host=args.uri, uuidRepresentation="standard", event_listeners=[commands]
        )

    class WithOptionsPatient(me.Document):
        first_name = me.StringField()
        visits = me.IntField()
        meta = {"db_alias": "wo"}

    try:
        WithOptionsPatient(first_name="Ada").save()
        proxy = WithOptionsPatient._get_collection()
        real = proxy._clinical
        concern = WriteConcern(w=1)
        wrapped = _median_us(lambda: proxy.with_options(write_concern=concern), args.repeat)
        native = _median_us(lambda: real.with_options(write_concern=concern), args.repeat)
        print(f"with_options: proxy {wrapped:.1f} µs, {type(real).__module__} {native:.1f} µs")
        if args.uri is not None:
            commands.reset()
            for i in range(100):
                WithOptionsPatient(first_name=f"P{i}").save(write_concern={"w": 1})
            print(f"createIndexes over 100 saves: {commands.total('createIndexes')}")
    finally:
        me.get_connection("wo").drop_database(db)
        me.disconnect("wo")


if __name__ == "__main__":
    main()
