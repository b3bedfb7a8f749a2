"""The time an in-process evaluation may take: the operation's ``maxTimeMS``, as a deadline.

The server stops a query that runs past ``maxTimeMS`` (or a client-side ``timeoutMS``) with
``MaxTimeMSExpired`` (code 50), which pymongo raises as ``ExecutionTimeout``. Work the core does
in the process on the server's behalf (matching decrypted identity values, a pipeline stage
evaluated here) has to stop the same way, or an application that relies on the limit to shed a
runaway query would hang instead. The core has no clock of its own: the deadline is computed
from the context's clock (the ``Clock`` port) when an operation starts, and checked between
documents and around each regex match. Where a match runs on an engine that is not linear in
time, the remaining time is also handed to that engine (``_regex_engine``), so a single
backtracking match cannot run past it either.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

from privata_mongo.core.failures import OperationFailed

__all__ = [
    "EXCEEDED_TIME_LIMIT",
    "MATCH_BUDGET",
    "Deadline",
    "deadline_from",
    "deadline_scope",
    "expired",
    "scoped_deadline",
    "time_limit_ms",
]

EXCEEDED_TIME_LIMIT: Final = 50
"""The server's ``MaxTimeMSExpired``: pymongo raises ``ExecutionTimeout`` for it."""

MATCH_BUDGET: Final = 1.0
"""Seconds one regex match on the backtracking engine may take when the operation has no time
limit: the server's PCRE stops a runaway match at its match limit, so an unbounded wait here
would be a behaviour the server does not have."""

_TIME_LIMIT_OPTIONS: Final = ("max_time_ms", "maxTimeMS", "timeoutMS")


def time_limit_ms(options: Mapping[str, Any] | None) -> float | None:
    """The smallest positive time limit among an operation's options, in milliseconds.

    ``max_time_ms`` is a cursor's option, ``maxTimeMS`` a command's (count, aggregate,
    find-and-modify), ``timeoutMS`` the remaining client-side timeout (``pymongo.timeout()``)
    when the operation started. Zero means no limit, as on the server.
    """
    if not options:
        return None
    limits = [
        float(value)
        for key in _TIME_LIMIT_OPTIONS
        if isinstance(value := options.get(key), (int, float))
        and not isinstance(value, bool)
        and value > 0
    ]
    return min(limits) if limits else None


@dataclass(frozen=True, slots=True)
class Deadline:
    """When an in-process evaluation must stop, read on the context's clock.

    Attributes:
        now: the clock (``Context.now``).
        at: the instant past which the operation fails; None when it has no time limit.
    """

    now: Callable[[], datetime.datetime]
    at: datetime.datetime | None = None

    def check(self) -> None:
        """Fail as the server does once the deadline has passed.

        Raises:
            OperationFailed: code 50, ``MaxTimeMSExpired``.
        """
        if self.at is not None and self.now() >= self.at:
            raise expired()

    def remaining(self) -> float:
        """Seconds one backtracking regex match may still take (``MATCH_BUDGET`` without a limit).

        Raises:
            OperationFailed: code 50, the deadline has already passed.
        """
        if self.at is None:
            return MATCH_BUDGET
        left = (self.at - self.now()).total_seconds()
        if left <= 0:
            raise expired()
        return left


def expired(limited: bool = True) -> OperationFailed:
    """The server's failure for an operation past its time limit (its words, no value).

    ``limited`` False: the operation had no time limit and one regex match ran past
    ``MATCH_BUDGET``; the code is the same, the message says which budget ran out.
    """
    if limited:
        return OperationFailed("operation exceeded time limit", EXCEEDED_TIME_LIMIT)
    return OperationFailed(
        f"$regex match exceeded the in-process budget of {MATCH_BUDGET:g} s; the pattern "
        "backtracks (a back-reference or look-around kept it off the linear-time engine): "
        "simplify it, or filter on a clinical field first",
        EXCEEDED_TIME_LIMIT,
    )


def deadline_from(
    now: Callable[[], datetime.datetime], options: Mapping[str, Any] | None
) -> Deadline:
    """The deadline of an operation starting now, from its options (see ``time_limit_ms``)."""
    limit = time_limit_ms(options)
    if limit is None:
        return Deadline(now)
    return Deadline(now, now() + datetime.timedelta(milliseconds=limit))


# The deadline filters compiled in a scope are bound to: the regex tests of a filter are built
# deep inside the parser, and a pipeline compiles its ``$match`` stages through a table of stage
# compilers, so the deadline travels beside the calls rather than through every signature. A
# scope lasts one synchronous compilation, never across a ``yield`` of a flow.
_SCOPE: ContextVar[Deadline | None] = ContextVar("privata_deadline_scope", default=None)


@contextmanager
def deadline_scope(deadline: Deadline | None) -> Iterator[None]:
    """Bind the filters compiled inside (``compile_filter``, ``$match`` stages) to ``deadline``."""
    token = _SCOPE.set(deadline)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def scoped_deadline() -> Deadline | None:
    """The deadline of the compilation in progress (``deadline_scope``), if any."""
    return _SCOPE.get()
