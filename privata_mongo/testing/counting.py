"""Count what reaches the storage: operations on a pymongo-shaped client, or wire commands.

``CountingClient`` wraps any pymongo-shaped client class (mongomock's included) and counts
every collection operation, the unit of a round trip on an in-process backend.
``CommandCounter`` is a pymongo command listener counting the commands actually sent to a
server (``find``, ``getMore``, ``insert`` …). Both let a test assert that a read joins identity
rows per batch, not per document.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from pymongo import monitoring

__all__ = ["OPERATIONS", "CommandCounter", "OperationCounter", "counting_client_class"]

OPERATIONS = frozenset(
    {
        "find",
        "find_one",
        "aggregate",
        "count_documents",
        "estimated_document_count",
        "distinct",
        "insert_one",
        "insert_many",
        "update_one",
        "update_many",
        "replace_one",
        "delete_one",
        "delete_many",
        "bulk_write",
        "find_one_and_update",
        "find_one_and_replace",
        "find_one_and_delete",
        "create_index",
        "drop_index",
        "drop_indexes",
        "index_information",
        "drop",
    }
)


class OperationCounter:
    """Operations per ``(collection, operation)``, thread-safe."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def add(self, collection: str, operation: str) -> None:
        """Record one operation."""
        with self._lock:
            self.counts[(collection, operation)] += 1

    def total(self, *operations: str) -> int:
        """How many operations (of the given kinds, or of any kind) were counted."""
        return sum(n for (_, op), n in self.counts.items() if not operations or op in operations)

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.counts.clear()


class _Collection:
    def __init__(self, inner: Any, counter: OperationCounter) -> None:
        self._inner = inner
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name in OPERATIONS:

            def counted(*args: Any, **kwargs: Any) -> Any:
                self._counter.add(self._inner.name, name)
                return attribute(*args, **kwargs)

            return counted
        if name == "with_options":
            return lambda **kw: _Collection(attribute(**kw), self._counter)
        return attribute


class _Database:
    def __init__(self, inner: Any, counter: OperationCounter) -> None:
        self._inner = inner
        self._counter = counter

    def get_collection(self, name: str, **options: Any) -> _Collection:
        return _Collection(self._inner.get_collection(name, **options), self._counter)

    def __getitem__(self, name: str) -> _Collection:
        return self.get_collection(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def counting_client_class(
    inner_class: Callable[..., Any], counter: OperationCounter
) -> Callable[..., Any]:
    """A client class whose instances count every collection operation into ``counter``."""

    class CountingClient:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._inner = inner_class(*args, **kwargs)

        def get_database(self, name: str | None = None, **options: Any) -> _Database:
            return _Database(self._inner.get_database(name, **options), counter)

        def __getitem__(self, name: str) -> _Database:
            return self.get_database(name)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    return CountingClient


class CommandCounter(monitoring.CommandListener):
    """Counts the commands a pymongo client sends, by command name."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        """Record one command."""
        with self._lock:
            self.counts[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to record."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to record."""

    def total(self, *names: str) -> int:
        """Commands sent (of the given names, or of any name)."""
        return sum(n for name, n in self.counts.items() if not names or name in names)

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.counts.clear()
