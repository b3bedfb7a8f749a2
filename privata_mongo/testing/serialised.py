"""mongomock made atomic per operation, for tests that run writers in several threads.

mongomock is not thread-safe: two threads updating one in-memory store can lose writes or see
a collection change size while iterating it. A real server applies each operation atomically
to a document, and a concurrency test must run against a backend that does, or it measures
the backend instead of the code. ``serialised_mongomock()`` puts every collection operation,
every cursor's evaluation and the database calls of mongomock behind one re-entrant lock for
the duration of a ``with`` block: each operation is then atomic, as on a server, and threads
interleave between operations only.

The patch is process-wide while the block runs (it replaces methods on mongomock's classes),
so use it around one test at a time, not from several test threads of different tests.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["serialised_mongomock"]

_DATABASE_METHODS = (
    "list_collection_names",
    "list_collections",
    "get_collection",
    "drop_collection",
    "create_collection",
    "rename_collection",
    "command",
)


def _locked(
    function: Callable[..., Any], lock: threading.RLock, latency: float
) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        with lock:
            result = function(*args, **kwargs)
        if latency:
            time.sleep(latency)  # the round trip back: other threads run meanwhile
        return result

    return call


@contextmanager
def serialised_mongomock(latency: float = 0.0) -> Iterator[threading.RLock]:
    """Make mongomock atomic per operation inside the block; yields the lock it takes.

    Args:
        latency: seconds each operation waits after it ran, outside the lock, as a client
            waits for a server's reply: other threads' operations interleave there, as they
            do against a server (without it, one thread often runs many operations in a row
            and races a server would show stay hidden).

    Raises:
        ImportError: mongomock is not installed (``pip install privata-mongo[test]``).
    """
    from mongomock import collection as collection_module
    from mongomock import database as database_module

    lock = threading.RLock()
    patched: list[tuple[type, str, Any]] = []
    targets: list[tuple[type, list[str]]] = [
        (
            collection_module.Collection,
            [
                name
                for name, value in vars(collection_module.Collection).items()
                if not name.startswith("_") and inspect.isfunction(value)
            ],
        ),
        (collection_module.Cursor, ["_compute_results", "count", "distinct"]),
        (database_module.Database, list(_DATABASE_METHODS)),
    ]
    try:
        for cls, names in targets:
            for name in names:
                original = cls.__dict__.get(name)
                if original is None or not inspect.isfunction(original):
                    continue
                patched.append((cls, name, original))
                setattr(cls, name, _locked(original, lock, latency))
        yield lock
    finally:
        for cls, name, original in reversed(patched):
            setattr(cls, name, original)
