"""Retention: subjects past a model's retention period are erased or pseudonymised.

A model holding identity fields declares ``privacy["retention"] = {"days": N, "field": ...,
"then": ...}`` (``core.rights.policy``). ``enforce`` finds, per such model, the subjects whose
documents of the model are *all* older than ``N`` days by the clinical date ``field`` (a
document without the date never expires, and one recent document keeps its subject), leaves
out the subjects whose erasure is already logged as done, appends one ``retention`` record per
model (its pseudonyms and their count, also when it is zero: every run is on the trail), and
then runs the erasure of each subject (``core.rights.erasure.erase``: its own log entry,
receipt and ``erase`` records), with every model's documents kept when ``then`` is
``pseudonymise``. Running it again erases nobody twice: it is idempotent.
"""

from __future__ import annotations

import datetime
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from privata_mongo.core.ops import Op
from privata_mongo.core.rights.access import Subject
from privata_mongo.core.rights.datamap import DataMap
from privata_mongo.core.rights.erasure import DONE, LoadErasure, Now, erase
from privata_mongo.core.rights.policy import PSEUDONYMISE
from privata_mongo.core.rights.receipt import ErasureReceipt

__all__ = ["RETENTION", "Expired", "RecordRetention", "enforce"]

RETENTION = "retention"
"""The audited operation of a retention run (one record per model with a period)."""


@dataclass(frozen=True, slots=True)
class Expired(Op[list[str]]):
    """Request: the pseudonyms whose every document of ``model`` has ``field`` before ``cutoff``."""

    model: str
    field: str
    cutoff: datetime.datetime


@dataclass(frozen=True, slots=True)
class RecordRetention(Op[None]):
    """Statement: append the ``retention`` record of one model (fail closed)."""

    model: str
    pseudonyms: tuple[str, ...]


def enforce(
    data_map: DataMap, now: datetime.datetime | None = None, *, batch: int = 1000
) -> Generator[Any, Any, list[ErasureReceipt]]:
    """Erase or pseudonymise every subject past retention; the receipts of this run.

    ``now`` defaults to the clock's time (a test or a catch-up run passes its own).
    """
    at = now if now is not None else (yield from Now())
    receipts: list[ErasureReceipt] = []
    for entry in data_map.models:
        retention = entry.retention
        if retention is None:
            continue
        cutoff = at - datetime.timedelta(days=retention.days)
        due = []
        for pseudonym in (yield from Expired(entry.name, retention.field, cutoff)):
            logged = yield from LoadErasure(pseudonym)
            if logged is None or logged.get("state") != DONE:
                due.append(pseudonym)
        yield RecordRetention(entry.name, tuple(due))
        keep = retention.then == PSEUDONYMISE
        for pseudonym in due:
            receipt = yield from erase(data_map, Subject(pseudonym), keep=keep, batch=batch)
            receipts.append(receipt)
    return receipts
