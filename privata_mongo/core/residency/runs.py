"""An insert split into runs of consecutive documents bound for the same place.

The router splits an identity insert by region and the clinical fan-out splits a clinical
insert by store: both keep the caller's order and the caller's failure indexes, and an
ordered insert stops where one server would have stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
from typing import TypeVar

from privata_mongo.core.failures import WriteFailure
from privata_mongo.core.ops import Flow, Insert, InsertOutcome

__all__ = ["in_runs"]

K = TypeVar("K", bound=Hashable)


def in_runs(
    op: Insert,
    destinations: Sequence[K],
    send: Callable[[K, Insert], Flow[InsertOutcome]],
) -> Flow[InsertOutcome]:
    """Send ``op`` to ``destinations[i]`` for its ``i``-th document, one request per run.

    Args:
        op: the insert as the flow made it.
        destinations: where each of its documents goes, in order.
        send: the flow that sends an insert to one destination.
    """
    runs: list[tuple[K, list[int]]] = []
    for index, where in enumerate(destinations):
        if runs and runs[-1][0] == where:
            runs[-1][1].append(index)
        else:
            runs.append((where, [index]))
    if len(runs) == 1:
        only: InsertOutcome = yield from send(runs[0][0], op)
        return only
    failures: list[WriteFailure] = []
    for where, indexes in runs:
        part = replace(op, documents=tuple(op.documents[i] for i in indexes))
        outcome: InsertOutcome = yield from send(where, part)
        failures.extend(replace(f, index=indexes[f.index]) for f in outcome.failures)
        if op.ordered and outcome.failures:
            break
    return InsertOutcome(tuple(failures))
