"""The request mix's constants, its patients and the window statistics, without locust.

Kept apart from the locustfile because importing locust monkey-patches the process with gevent,
which the runner (pymongo, httpx) must not be.
"""

from __future__ import annotations

import os
import random
import uuid
from typing import Any

LEVEL_RATES = {1: 100, 2: 200, 3: 500, 5: 10}
"""Offered requests per second of the constant levels.

Level 5 (the outage) offers 10 req/s, under both apps' capacity on this machine (level 4), so
the time to recover is measured against a latency the service normally holds.
"""

STEP_USERS = 5
STEP_SECONDS = 20
STEP_CAP_SECONDS = 300
P95_LIMIT_MS = float(os.environ.get("LOAD_P95_LIMIT_MS", "200"))
"""Level 4's latency limit; another one (``--p95-limit``) locates the throughput knee instead."""
ERROR_LIMIT = 0.01
RISE_FRACTION = 0.25
"""Throughput "stops rising" when a step gains less than this fraction of the rate it added."""

EXPECTED = {
    "create": 201,
    "read": 200,
    "list": 200,
    "by_email": 200,
    "update": 200,
    "visit": 201,
    "delete": 204,
}

EVENTS: list[dict[str, Any]] = []
"""Every request of this run, in the order they ended."""

BLOOD = ("A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-")
NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia")


def new_patient() -> dict[str, Any]:
    token = uuid.uuid4().hex[:12]
    return {
        "first_name": random.choice(NAMES),
        "last_name": f"Tester{token[:4]}",
        "email": f"p{token}@load.example",
        "date_of_birth": f"19{random.randint(30, 99)}-0{random.randint(1, 9)}-15",
        "phone": f"+44 20 {random.randint(1000, 9999)} {random.randint(1000, 9999)}",
        "address": {
            "street": "1 Load Street",
            "city": "Testham",
            "postcode": "T1",
            "country": "GB",
        },
        "blood_type": random.choice(BLOOD),
        "allergies": random.sample(["pollen", "penicillin", "latex", "nuts"], k=1),
    }


def window(since: float, until: float) -> dict[str, Any]:
    """p50/p95, error rate and throughput of the requests that started in ``[since, until)``."""
    chosen = [e for e in EVENTS if since <= e["t"] < until]
    times = sorted(e["ms"] for e in chosen)
    failed = sum(1 for e in chosen if not e["ok"])

    def rank(p: float) -> float:
        return times[max(0, int(len(times) * p) - 1)] if times else 0.0

    return {
        "requests": len(chosen),
        "failures": failed,
        "error_rate": failed / len(chosen) if chosen else 0.0,
        "throughput": (len(chosen) - failed) / (until - since),
        "p50_ms": rank(0.50),
        "p95_ms": rank(0.95),
    }


def broken(measured: dict[str, Any], previous: dict[str, Any] | None) -> list[str]:
    """Why a step of level 4 breaks: p95, errors, or a throughput that stopped rising."""
    reasons = []
    if measured["p95_ms"] > P95_LIMIT_MS:
        reasons.append(f"p95 {measured['p95_ms']:.0f} ms > {P95_LIMIT_MS:.0f} ms")
    if measured["error_rate"] > ERROR_LIMIT:
        reasons.append(f"errors {measured['error_rate']:.1%} > {ERROR_LIMIT:.0%}")
    if previous is not None:
        before = previous["throughput"]
        if measured["throughput"] - before < RISE_FRACTION * STEP_USERS:
            reasons.append(
                f"throughput {measured['throughput']:.1f} req/s after {before:.1f}: "
                f"rose less than {RISE_FRACTION * STEP_USERS:.2f}"
            )
    return reasons
