"""The people every compatibility scenario stores, for both ODMs.

Distinct, known values, chosen to test ordering and matching: a lower-case first name (binary
string order), ties in weight and blood group, a missing phone and insurance number, an e-mail
domain shared by two people.
"""

from __future__ import annotations

import datetime

__all__ = ["ALIASES", "PEOPLE", "dt"]


def dt(year: int, month: int, day: int, hour: int = 0) -> datetime.datetime:
    """A naive datetime, as pymongo returns them (UTC by convention)."""
    return datetime.datetime(year, month, day, hour)


PEOPLE = (
    # first, last, email, phone, born, city, insurance, blood, weight, tags, scores
    ("Ada", "Lovelace", "ada@example.org", "+44 1", dt(1815, 12, 10), "London", "INS-001",
     "A+", 61, ["vip", "cardio"], [3, 5, 8]),
    ("alan", "Turing", "alan@example.org", "+44 2", dt(1912, 6, 23), "Wilmslow", "INS-002",
     "O-", 70, ["neuro"], [9, 1]),
    ("Grace", "Hopper", "grace@example.com", "+1 3", dt(1906, 12, 9), "New York", "INS-003",
     "A+", 58, ["cardio", "ortho"], [7]),
    ("Edsger", "Dijkstra", "edsger@example.nl", None, dt(1930, 5, 11), "Rotterdam", None,
     "B+", 70, [], []),
    ("Barbara", "Liskov", "barbara@example.com", "+1 5", dt(1939, 11, 7), "Los Angeles",
     "INS-005", "AB-", 55, ["vip"], [4, 4, 4]),
)  # fmt: skip

ALIASES = {"Ada": ["Countess of Lovelace"], "Grace": ["Amazing Grace", "Grandma COBOL"]}
