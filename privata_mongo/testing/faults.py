"""Inject storage faults: pymongo's own errors before or after the N-th collection call.

``faulty_client_class(inner_class, plan)`` wraps any pymongo-shaped client class (mongomock's
included) like ``counting_client_class`` does, and hands both ODMs (native mongoengine and the
privata facade, through ``connect(mongo_client_class=...)``) collections whose calls go through a
``FaultPlan``; ``faulty_database(database, plan)`` does the same for a database handed to
``init_beanie`` (sync or async clients). The plan numbers every collection call from 1 once it
is armed and, at the call it names, raises the error it holds: *before* the call (nothing
reached the server) or *after* it (the call applied and its reply was lost, as a dropped
connection or a write-concern timeout leaves it). Each plan fires once, so the application's
retry runs against a healthy backend.

Every call is logged (collection, method, position), which tells a crash-matrix test how many
calls an operation makes and which collection each call went to: key vault, identity, clinical,
audit trail or the journal of intents.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    NetworkTimeout,
    NotPrimaryError,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteConcernError,
)

from privata_mongo.testing.counting import OPERATIONS

__all__ = ["FAULTS", "Call", "FaultPlan", "faulty_client_class", "faulty_database"]

Moment = Literal["before", "after"]


def _auto_reconnect() -> PyMongoError:
    return AutoReconnect("connection closed (injected)")


def _network_timeout() -> PyMongoError:
    return NetworkTimeout("timed out (injected)")


def _selection_timeout() -> PyMongoError:
    return ServerSelectionTimeoutError("no server available (injected)")


def _not_primary() -> PyMongoError:
    return NotPrimaryError("not primary (injected)", {"code": 10107, "errmsg": "not primary"})


def _write_concern() -> PyMongoError:
    message = "waiting for replication timed out (injected)"
    return WriteConcernError(message, 64, {"code": 64, "errmsg": message})


def _duplicate_key() -> PyMongoError:
    message = "E11000 duplicate key error (injected)"
    return DuplicateKeyError(message, 11000, {"code": 11000, "errmsg": message})


FAULTS: dict[str, Callable[[], PyMongoError]] = {
    "AutoReconnect": _auto_reconnect,
    "NetworkTimeout": _network_timeout,
    "ServerSelectionTimeoutError": _selection_timeout,
    "NotPrimaryError": _not_primary,
    "WriteConcernError": _write_concern,
    "DuplicateKeyError": _duplicate_key,
}
"""pymongo's error types a plan can raise, by name, each made as pymongo makes it."""


@dataclass(frozen=True, slots=True)
class Call:
    """One collection call as the plan saw it (1-based position since the plan was armed)."""

    position: int
    collection: str
    method: str


@dataclass
class FaultPlan:
    """Where one fault goes, and the log of every call.

    Attributes:
        at: the position of the call to fail (1-based; 0: never fail).
        moment: ``before`` (the call is not made) or ``after`` (made, then the error).
        error: a name of ``FAULTS``.
        armed: calls are counted and failed only while armed (set up first, then arm).
        calls: every call made while armed.
        fired: the call the fault was raised at, once it was.
        on_fault: called instead of raising, when set: a test that must crash the process
            at that point (``os.kill(os.getpid(), signal.SIGKILL)``) sets it.
    """

    at: int = 0
    moment: Moment = "before"
    error: str = "AutoReconnect"
    armed: bool = False
    calls: list[Call] = field(default_factory=list)
    fired: Call | None = None
    on_fault: Callable[[], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def arm(self, at: int = 0, moment: Moment = "before", error: str = "AutoReconnect") -> None:
        """Count calls from 1 again and fail the ``at``-th one (0: only count)."""
        if error not in FAULTS:
            raise ValueError(f"unknown fault {error!r}; choose one of {', '.join(FAULTS)}")
        with self._lock:
            self.at, self.moment, self.error = at, moment, error
            self.calls, self.fired, self.armed = [], None, True

    def disarm(self) -> None:
        """Stop counting and failing."""
        self.armed = False

    def call(self, collection: str, method: str, run: Callable[[], Any]) -> Any:
        """Make one call through the plan."""
        with self._lock:
            if not self.armed:
                position = 0
            else:
                position = len(self.calls) + 1
                self.calls.append(Call(position, collection, method))
            hit = self.fired is None and position == self.at and position > 0
            if hit:
                self.fired = Call(position, collection, method)
        if hit and self.moment == "before":
            self._fault()
        result = run()
        if hit and inspect.isawaitable(result):
            return self._after(result)  # an async client's call applies once awaited
        if hit:
            self._fault()
        return result

    async def _after(self, pending: Awaitable[Any]) -> Any:
        await pending
        self._fault()

    def _fault(self) -> None:
        if self.on_fault is not None:
            self.on_fault()
        raise FAULTS[self.error]()


class _Collection:
    def __init__(self, inner: Any, plan: FaultPlan) -> None:
        self._inner = inner
        self._plan = plan

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name in OPERATIONS:

            def faulty(*args: Any, **kwargs: Any) -> Any:
                return self._plan.call(self._inner.name, name, lambda: attribute(*args, **kwargs))

            return faulty
        if name == "with_options":
            return lambda **kw: _Collection(attribute(**kw), self._plan)
        if name == "database":
            return _Database(attribute, self._plan)
        return attribute


class _Database:
    def __init__(self, inner: Any, plan: FaultPlan) -> None:
        self._inner = inner
        self._plan = plan

    @property
    def client(self) -> _Client:
        return _Client(self._inner.client, self._plan)

    def get_collection(self, name: str, **options: Any) -> _Collection:
        return _Collection(self._inner.get_collection(name, **options), self._plan)

    def __getitem__(self, name: str) -> _Collection:
        return self.get_collection(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Client:
    def __init__(self, inner: Any, plan: FaultPlan) -> None:
        self._inner = inner
        self._plan = plan

    def get_database(self, name: str | None = None, **options: Any) -> _Database:
        return _Database(self._inner.get_database(name, **options), self._plan)

    def __getitem__(self, name: str) -> _Database:
        return self.get_database(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def faulty_client_class(inner_class: Callable[..., Any], plan: FaultPlan) -> Callable[..., Any]:
    """A client class whose collections' calls go through ``plan`` (``connect``'s argument)."""

    class FaultyClient(_Client):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(inner_class(*args, **kwargs), plan)

    return FaultyClient


def faulty_database(database: Any, plan: FaultPlan) -> Any:
    """``database`` (sync or async) with its collections' calls going through ``plan``.

    For ``init_beanie(database=...)``: the database's client, through which the key vault is
    reached, goes through the plan too. An async call fails *after* once it has been awaited.
    """
    return _Database(database, plan)
