"""Where a wrapped operation's time goes on a server: its commands, one by one, with durations.

Seeds the wrapped mongoengine alternative on FerretDB (as ``python -m stress.odm`` does) and
prints, for one get by id, clinical-only read, find by e-mail, identity update and insert,
each wire command's name, collection and filter, and its median duration over the runs.

    python -m stress.odm.commands [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo import monitoring

from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
from stress.odm import data, tasks
from stress.odm.alternatives import Backend, WrappedMongoengineAlternative


class Commands(monitoring.CommandListener):
    """The commands sent while ``recording``, with their filters and durations (µs)."""

    def __init__(self) -> None:
        self.recording = False
        self.seen: list[list[Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.recording:
            command = event.command
            shape = command.get("filter")
            if shape is None and "updates" in command:
                shape = [u.get("q") for u in command["updates"]]
            self.seen.append([event.command_name, command.get(event.command_name), shape, 0])

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if self.recording and self.seen:
            self.seen[-1][3] = event.duration_micros

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.succeeded(event)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    from testkit.ferretdb import start_ferretdb

    with tempfile.TemporaryDirectory() as state, start_ferretdb(Path(state)) as server:
        listener = Commands()
        alt = WrappedMongoengineAlternative(Backend("ferretdb", server.uri), listener)
        alt.open()
        try:
            seeded = tasks.seed(alt, tasks.Counts(1, 5, 2, 1, (100, 1000), (1, 1), 10, 1))
            fresh = iter(range(2_000_000, 3_000_000))
            operations: dict[str, Callable[[], None]] = {
                "get by id": lambda: alt.get(seeded.ids[1:2]),
                "clinical fields only": lambda: alt.clinical(seeded.ids[2:3]),
                "find by e-mail": lambda: alt.find_email(seeded.emails[3:4]),
                "update an identity field": lambda: alt.update_identity(seeded.ids[:1]),
                "insert one": lambda: alt.create([data.small(next(fresh))]),
            }
            for name, operation in operations.items():
                operation()  # warm
                runs = []
                for _ in range(args.runs):
                    listener.seen, listener.recording = [], True
                    start = time.perf_counter()
                    operation()
                    runs.append((time.perf_counter() - start, listener.seen))
                    listener.recording = False
                total = statistics.median(r[0] for r in runs) * 1e3
                print(f"{name}: median {total:.1f} ms, {len(runs[0][1])} commands")
                for i, (command, collection, shape, _) in enumerate(runs[0][1]):
                    took = statistics.median(r[1][i][3] for r in runs if len(r[1]) > i) / 1e3
                    print(f"  {command:<7} {collection!s:<26} {took:8.2f} ms  {str(shape)[:90]}")
        finally:
            alt.close()


if __name__ == "__main__":
    main()
