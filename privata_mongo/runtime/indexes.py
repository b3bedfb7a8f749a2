"""Which internal indexes a connection has already ensured, so each is created once.

A split collection needs its clinical link index (``_pseudonym_1``) before its first write.
Sending ``createIndexes`` with every write costs a command per save; remembering it per
collection object is not enough either, because the ODMs make new collection objects
(``with_options``, a fresh ``database[name]``) all the time. The runtime of a connection keeps
the set instead, per ``(database, collection)``; dropping the collection or its database
through the proxy forgets it, so the index is created again before the next write.
"""

from __future__ import annotations

import threading

__all__ = ["EnsuredIndexes"]


class EnsuredIndexes:
    """The ``(database, collection)`` pairs whose link index exists (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: set[tuple[str, str]] = set()

    def has(self, database: str, collection: str) -> bool:
        """Whether the link index of ``database.collection`` was ensured by this runtime."""
        return (database, collection) in self._done

    def add(self, database: str, collection: str) -> None:
        """Record that the link index of ``database.collection`` exists."""
        with self._lock:
            self._done.add((database, collection))

    def forget(self, database: str, collection: str | None = None) -> None:
        """Forget one collection (it was dropped), or every collection of ``database``."""
        with self._lock:
            self._done = {
                (d, c)
                for d, c in self._done
                if d != database or (collection is not None and c != collection)
            }
