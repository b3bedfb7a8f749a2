"""mongomock made atomic per operation, for tests that run writers in several threads.

mongomock is not thread-safe: two threads updating one in-memory store can lose writes or see
a collection change size while iterating it. A real server applies each operation atomically
to a document, and a concurrency test must run against a backend that does, or it measures
the backend instead of the code. ``serialised_mongomock()`` puts every collection operation,
every cursor's evaluation and the database calls of mongomock behind one re-entrant lock for
the duration of a ``with`` block: each operation is then atomic, as on a server, and threads
interleave between operations only.

The embedded async backend is atomic per operation already (each call runs mongomock to the
end without giving up the event loop), but for that reason its tasks never interleave inside
an operation's round trips either: ``delayed_embedded()`` makes every awaited call wait after
it ran, as a client waits for a server's reply, so concurrent tasks interleave as on a server.

The patches are process-wide while the block runs (they replace methods on classes), so use
them around one test at a time, not from several test threads of different tests.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["delayed_embedded", "serialised_mongomock"]

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


def _delayed(function: Callable[..., Any], latency: float) -> Callable[..., Any]:
    @functools.wraps(function)
    async def call(*args: Any, **kwargs: Any) -> Any:
        result = await function(*args, **kwargs)
        await asyncio.sleep(latency)  # the round trip back: other tasks run meanwhile
        return result

    return call


@contextmanager
def delayed_embedded(latency: float) -> Iterator[None]:
    """Make every awaited call of the embedded backend take ``latency`` seconds more.

    Args:
        latency: seconds each collection or cursor coroutine waits after it ran.
    """
    from privata_mongo.embedded._collection import AsyncMockCollection
    from privata_mongo.embedded._cursor import AsyncMockCommandCursor, AsyncMockCursor

    patched: list[tuple[type, str, Any]] = []
    try:
        for cls in (AsyncMockCollection, AsyncMockCursor, AsyncMockCommandCursor):
            for name, value in list(vars(cls).items()):
                if name in ("close", "__aexit__") or not inspect.iscoroutinefunction(value):
                    continue
                patched.append((cls, name, value))
                setattr(cls, name, _delayed(value, latency))
        yield
    finally:
        for cls, name, original in reversed(patched):
            setattr(cls, name, original)
