"""Pre-fork servers: workers forked from a process that used the connection audit their writes.

The child runs no pytest: it saves, reports through a pipe and leaves with ``os._exit``.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import pytest
from bson import ObjectId

import privata_mongo.mongoengine as pm
from compat_suite.requirements import requires
from privata_mongo import access_context
from privata_mongo.audit import audit_collection, subject_of, verify

WORKERS = 4


def _patient() -> Any:
    class WorkerPatient(pm.Document):
        first_name = pm.StringField()
        ward = pm.StringField()
        meta = {"collection": "worker_patient"}

    return WorkerPatient


def _fork_and_save(Patient: Any, worker: int) -> tuple[int, int]:
    """Fork a worker that saves one document; ``(pid, read end of its report pipe)``."""
    read, write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write)
        return pid, read
    os.close(read)  # the child, from here on: no assertion, no pytest, only a report
    code, report = 1, b"no report"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymongo warns that its client predates the fork
            with access_context(actor=f"worker{worker}", purpose="treatment"):
                saved = Patient(first_name=f"W{worker}", ward="B").save()
        code, report = 0, str(saved.id).encode()
    except BaseException as exc:
        report = type(exc).__name__.encode()
    finally:
        os.write(write, report)
        os._exit(code)


@requires("forked_processes")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # os.fork() in a threaded process
def test_forked_workers_each_audit_their_own_saves(connected: Any) -> None:
    Patient = _patient()
    with access_context(actor="boot", purpose="treatment"):
        Patient(first_name="Ada", ward="A").save()
        assert [p.first_name for p in Patient.objects] == ["Ada"]  # the parent read once
    children = [_fork_and_save(Patient, worker) for worker in range(WORKERS)]
    reports = []
    for pid, read in children:
        _, status = os.waitpid(pid, 0)
        reports.append((os.waitstatus_to_exitcode(status), os.read(read, 200).decode()))
        os.close(read)
    assert [code for code, _ in reports] == [0] * WORKERS, reports

    trail = audit_collection(connected)
    creates = {
        subject
        for record in trail.find({"operation": "create", "outcome": "ok"})
        for subject in record["subjects"]
    }
    for _, saved_id in reports:
        assert subject_of(connected, "worker_patient", ObjectId(saved_id)) in creates
    worker_streams = {r["stream"] for r in trail.find({"actor": {"$regex": "^worker"}})}
    assert len(worker_streams) == WORKERS
    assert verify(trail).ok
