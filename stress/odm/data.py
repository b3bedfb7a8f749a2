"""The data sets: a small and a large patient document, identity and clinical fields mixed.

The spec's data sets are JSON files of flat documents; ours are generated, deterministic, and
shaped like the documents privata exists for: a few identity fields (names, e-mail, date of
birth: encrypted by the wrapper and by hand-written CSFLE) and clinical fields (stored in
clear by both). The large document adds ~16 kB of clinical notes and readings.
"""

from __future__ import annotations

import datetime
from typing import Any

import bson

IDENTITY_FIELDS = ("first_name", "last_name", "email", "date_of_birth")
SEARCHABLE_FIELD = "email"


def small(i: int) -> dict[str, Any]:
    """Small document number ``i`` (unique e-mail)."""
    return {
        "first_name": f"First{i}",
        "last_name": f"Last{i}",
        "email": f"patient{i}@example.org",
        "date_of_birth": datetime.datetime(1950 + i % 50, 1 + i % 12, 1 + i % 28),
        "blood_type": ("A+", "B+", "O-", "AB+")[i % 4],
        "visits": i % 17,
        "notes": "routine check, no findings",
    }


def large(i: int) -> dict[str, Any]:
    """Large document number ``i``: the small one plus notes and a series of readings."""
    return {
        **small(i),
        "notes": ("Observation of the day: stable, reviewed by the ward. " * 200)[:10_000],
        "readings": [float((i * 7 + k) % 211) / 3 for k in range(750)],
    }


def size(document: dict[str, Any]) -> int:
    """Encoded BSON bytes of ``document`` (the spec's task size is in bytes of documents)."""
    return len(bson.encode(document))
