"""Drive a core flow with no database: each expected request is answered from a script.

The driver fails on any request the script does not expect, so a test pins the exact order of
I/O of an operation — which is where the privacy rules live (identity before clinical, audit
before returning, and so on).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from privata_mongo.core.crypto.holds import holding
from privata_mongo.core.ops import AnyOp, Document, Emit, Flow, Steps

__all__ = ["ScriptedDriver", "UnexpectedOp"]

T = TypeVar("T")

Expectation = type | Callable[[AnyOp], bool]


class UnexpectedOp(AssertionError):
    """A flow issued a request the script did not expect at that point."""


@dataclass
class ScriptedDriver:
    """Answers a flow's requests in order.

    ``script`` holds ``(expectation, answer)`` pairs: the expectation is an op class or a
    predicate over the op; the answer is sent back, or thrown in if it is an exception.
    ``Emit`` requests are collected in ``emitted`` and need no script entry.
    """

    script: Sequence[tuple[Expectation, Any]]
    seen: list[AnyOp] = field(default_factory=list)
    emitted: list[Document] = field(default_factory=list)

    def run(self, flow: Flow[T]) -> T:
        """Run ``flow`` to its end against the script; every entry must be used."""
        remaining = list(self.script)
        steps = Steps(holding(flow))  # as the drivers run it (``drivers._dispatch.routed``)
        op = steps.advance()
        while op is not None:
            self.seen.append(op)
            if isinstance(op, Emit):
                self.emitted.extend(op.documents)
                op = steps.advance()
                continue
            if not remaining:
                raise UnexpectedOp(f"unexpected request {op!r}: the script is exhausted")
            expected, reply = remaining.pop(0)
            ok = isinstance(op, expected) if isinstance(expected, type) else expected(op)
            if not ok:
                raise UnexpectedOp(f"unexpected request {op!r}; the script expected {expected!r}")
            if isinstance(reply, BaseException):
                op = steps.advance(error=reply)
            else:
                op = steps.advance(reply)
        if remaining:
            raise UnexpectedOp(f"flow ended with {len(remaining)} scripted requests unused")
        return steps.value
