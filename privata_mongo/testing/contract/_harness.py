"""Internal. The contract's harness: the check type, its registry, and sync stores awaited.

A ``Check`` is a named coroutine function over a ``StoreFactory``, with the ``FEATURES`` it needs
from the backend; each topic module collects its checks, in the order they are written, with a
``Register``. The checks are written once against the async store interface; ``fresh`` hands a
check its store, a sync one behind a thin awaitable shim, emptied first.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

from privata_mongo.core.ops import Document, Drop, Op
from privata_mongo.core.schema import Side
from privata_mongo.ports.storage import (
    CURSOR_OPS,
    AsyncDocumentStore,
    BatchCursor,
    DocumentStore,
)

__all__ = [
    "FEATURES",
    "SIDE",
    "Check",
    "CheckFunction",
    "ContractViolation",
    "Register",
    "StoreFactory",
    "awaitable",
    "error_of",
    "fresh",
]

R = TypeVar("R")
SIDE = Side.CLINICAL  # a store serves one collection: the side a request names is the caller's

FEATURES: Mapping[str, str] = {
    "find_and_modify_projection": "a projection on find-and-modify (findAndModify's fields)",
    "duplicate_key_on_update": "an update that violates a unique index fails with code 11000",
    "explain": "a query plan for a find (the explain command)",
    "typed_update_errors": "an impossible update operator fails as a write error with the "
    "server's code (e.g. $inc on a string: TypeMismatch, 14)",
}
"""Capabilities some checks need, by name: what a backend may declare that it lacks."""


class StoreFactory(Protocol):
    """Builds the store under test for one collection of the caller's database.

    ``identity=True`` asks for a store serving an identity collection: one that keeps every
    stored value out of its errors. Sync (``DocumentStore``) and async stores are both fine.
    """

    def __call__(self, name: str, /, *, identity: bool) -> DocumentStore | AsyncDocumentStore:
        """The store for collection ``name`` (an identity store when ``identity``)."""


CheckFunction = Callable[[StoreFactory], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Check:
    """One property of the port, checked against stores from a factory.

    Attributes:
        name: the check's identifier (its function's name without ``check_``).
        function: the coroutine function that makes its stores and asserts.
        requires: ``FEATURES`` the check needs from the backend.
    """

    name: str
    function: CheckFunction = field(repr=False)
    requires: frozenset[str] = frozenset()

    @property
    def description(self) -> str:
        """What the check asserts (the first line of its docstring)."""
        return (inspect.getdoc(self.function) or self.name).splitlines()[0]

    async def __call__(self, make: StoreFactory) -> None:
        """Run the check; a broken promise raises ``AssertionError`` (or the adapter's error)."""
        await self.function(make)

    def __str__(self) -> str:
        return self.name


class ContractViolation(AssertionError):
    """Raised by ``verify``: one or more checks failed; ``failures`` maps names to errors."""

    def __init__(self, failures: Mapping[str, BaseException]) -> None:
        self.failures = dict(failures)
        lines = [f"{name}: {type(exc).__name__}: {exc}" for name, exc in self.failures.items()]
        super().__init__(
            f"{len(lines)} storage contract check(s) failed:\n" + "\n".join(sorted(lines))
        )


class Register:
    """Collects a module's checks in the order they are written: ``@register("explain")``."""

    def __init__(self) -> None:
        self._checks: list[Check] = []

    def __call__(self, *requires: str) -> Callable[[CheckFunction], CheckFunction]:
        """Register the decorated ``check_<name>`` function, needing the ``requires`` features."""
        unknown = set(requires) - set(FEATURES)
        if unknown:  # pragma: no cover - a typo in a topic module
            raise ValueError(f"unknown features {sorted(unknown)}")

        def register(function: CheckFunction) -> CheckFunction:
            name = function.__name__.removeprefix("check_")
            self._checks.append(Check(name, function, frozenset(requires)))
            return function

        return register

    @property
    def checks(self) -> tuple[Check, ...]:
        """The checks registered so far, in order."""
        return tuple(self._checks)


async def error_of(call: Awaitable[object]) -> Exception | None:
    """The exception ``call`` raises, or ``None``."""
    try:
        await call
    except Exception as error:  # any error, the adapter's own included
        return error
    return None


# -- sync stores, awaited -------------------------------------------------------------------------


class _AwaitedCursor:
    """A sync ``BatchCursor`` behind the async interface (test-only: it blocks the loop)."""

    def __init__(self, cursor: BatchCursor) -> None:
        self._cursor = cursor

    async def next_batch(self, size: int, /) -> list[Document]:
        return self._cursor.next_batch(size)

    async def close(self) -> None:
        self._cursor.close()


class _AwaitedStore:
    """A sync ``DocumentStore`` behind the async interface (test-only: it blocks the loop)."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    def __repr__(self) -> str:
        return f"awaited({self._store!r})"

    async def execute(self, op: Op[R], /) -> R:
        result = self._store.execute(op)
        if isinstance(op, CURSOR_OPS):
            return cast(R, _AwaitedCursor(cast(BatchCursor, result)))
        return result


def awaitable(store: DocumentStore | AsyncDocumentStore) -> AsyncDocumentStore:
    """``store`` behind the async interface (a sync store through the shim above)."""
    if inspect.iscoroutinefunction(store.execute):
        return cast(AsyncDocumentStore, store)
    return _AwaitedStore(cast(DocumentStore, store))


async def fresh(make: StoreFactory, name: str, *, identity: bool = False) -> AsyncDocumentStore:
    """The factory's store for ``name``, emptied first so that a re-run starts clean."""
    store = awaitable(make(name, identity=identity))
    await store.execute(Drop(SIDE))
    return store
