"""The request mix and the levels' shapes, for ``locust -f stress/load/locustfile.py``.

Each simulated user is a clinic front desk working on the patients it registered: it creates
patients, reads them by id, pages the list, finds one by e-mail, updates one (a clinical and an
identity field in turn), records a visit and sometimes deletes one. Every user sends at most one
request per second (``constant_throughput(1)``), so a level's offered rate is its user count:
level 1 is 100 users for 100 req/s. A user only touches patients it created itself, so no
request races another user's delete, and every answer but the expected status is an error.

Every request carries ``X-Request-Id: <kind>-<hex>`` (the example runs each request under the
gateway's headers, so privata's audit records name it) and is logged to ``$LOAD_EVENTS`` (JSON
lines: start time, kind, request id, status, success, milliseconds) when the run ends: the
runner joins the audit collection to that log. ``$LOAD_LEVEL`` picks the shape;
``$LOAD_DURATION`` the seconds of levels 1-3 and 5; level 4's steps are written to
``$LOAD_STEPS``.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locust import LoadTestShape, constant_throughput, events, task
from locust.contrib.fasthttp import FastHttpUser

from stress.load.mix import (
    EVENTS,
    EXPECTED,
    LEVEL_RATES,
    STEP_CAP_SECONDS,
    STEP_SECONDS,
    STEP_USERS,
    broken,
    new_patient,
    window,
)


@dataclass
class Known:
    """A patient this user created: its id and e-mail."""

    id: str
    email: str


class FrontDesk(FastHttpUser):
    """One front desk: one request per second at most, on its own patients."""

    wait_time = constant_throughput(1.0)

    def on_start(self) -> None:
        self.known: list[Known] = []
        self.turn = 0
        self.create()

    def _call(self, kind: str, method: str, path: str, body: Any = None) -> Any:
        rid = f"{kind}-{uuid.uuid4().hex}"
        started = time.time()
        status, payload = 0, None
        with self.client.request(
            method,
            path,
            name=kind,
            json=body,
            headers={
                "X-Actor": "front-desk",
                "X-Purpose": "treatment",
                "X-Legal-Basis": "art9-2h",
                "X-Request-Id": rid,
            },
            catch_response=True,
        ) as response:
            status = response.status_code or 0
            ok = status == EXPECTED[kind]
            if ok:
                response.success()
                if status != 204:
                    payload = response.json()
            else:
                response.failure(f"{kind}: HTTP {status}")
        EVENTS.append(
            {
                "t": started,
                "kind": kind,
                "rid": rid,
                "status": status,
                "ok": ok,
                "ms": (time.time() - started) * 1000.0,
            }
        )
        return payload

    def _mine(self) -> Known | None:
        if not self.known:
            self.create()
        return random.choice(self.known) if self.known else None

    @task(2)
    def create(self) -> None:
        body = new_patient()
        created = self._call("create", "POST", "/patients", body)
        if created is not None:
            self.known.append(Known(created["id"], body["email"]))

    @task(8)
    def read(self) -> None:
        if (patient := self._mine()) is not None:
            self._call("read", "GET", f"/patients/{patient.id}")

    @task(1)
    def list_page(self) -> None:
        self._call("list", "GET", "/patients?limit=20")

    @task(2)
    def by_email(self) -> None:
        if (patient := self._mine()) is not None:
            self._call("by_email", "GET", f"/patients?email={patient.email}")

    @task(2)
    def update(self) -> None:
        if (patient := self._mine()) is not None:
            self.turn += 1
            change: dict[str, Any] = (
                {"allergies": ["pollen", "latex"]}
                if self.turn % 2
                else {"phone": f"+44 20 {random.randint(1000, 9999)} 0000"}
            )
            self._call("update", "PATCH", f"/patients/{patient.id}", change)

    @task(2)
    def visit(self) -> None:
        if (patient := self._mine()) is not None:
            body = {"at": "2026-12-01T10:00:00Z", "reason": "check-up"}
            self._call("visit", "POST", f"/patients/{patient.id}/visits", body)

    @task(1)
    def delete(self) -> None:
        if len(self.known) > 1:
            patient = self.known.pop(random.randrange(len(self.known)))
            self._call("delete", "DELETE", f"/patients/{patient.id}")


def _level() -> int:
    return int(os.environ.get("LOAD_LEVEL", "1"))


class ConstantRate(LoadTestShape):
    """Levels 1, 2, 3 and 5: the level's rate in users, ramped over 5 s, for the duration."""

    def tick(self) -> tuple[int, float] | None:
        level = _level()
        if level == 4:
            return self._steps()
        users = LEVEL_RATES[level]
        duration = float(os.environ.get("LOAD_DURATION", "60"))
        if self.get_run_time() >= duration:
            return None
        return users, users / 5.0

    # Level 4 lives in the same class: locust takes the one shape class a locustfile defines.
    def _steps(self) -> tuple[int, float] | None:
        run_time = self.get_run_time()
        if not hasattr(self, "steps"):
            self.steps: list[dict[str, Any]] = []
            self.origin = time.time() - run_time
        step = int(run_time // STEP_SECONDS)
        if step > len(self.steps):  # a step just ended: judge it
            done = len(self.steps)
            start = self.origin + done * STEP_SECONDS
            # the first 5 s ramp the new users in; judge the step's steady part
            measured = window(start + 5.0, start + STEP_SECONDS)
            measured |= {"step": done + 1, "users": STEP_USERS * (done + 1)}
            measured["broken_by"] = broken(measured, self.steps[-1] if self.steps else None)
            self.steps.append(measured)
            self._write()
            if measured["broken_by"] or run_time >= STEP_CAP_SECONDS:
                return None
        users = STEP_USERS * (step + 1)
        return users, float(STEP_USERS)

    def _write(self) -> None:
        if path := os.environ.get("LOAD_STEPS"):
            Path(path).write_text(json.dumps(self.steps, indent=1))


@events.quitting.add_listener
def _write_events(environment: Any, **kwargs: Any) -> None:
    if path := os.environ.get("LOAD_EVENTS"):
        with Path(path).open("w") as out:
            for event in EVENTS:
                out.write(json.dumps(event) + "\n")
