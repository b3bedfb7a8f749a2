"""Connection failures reach the app as pymongo's own errors, and leave nothing half-written.

Each scenario runs the wrapped mongoengine facade and plain mongoengine side by side against the
same server and compares the exception types: the app must see exactly what it sees natively
(``AutoReconnect``, ``ServerSelectionTimeoutError`` … from ``pymongo.errors``), not a privata
wrapper. The outage test kills a FerretDB of its own (never the session's), restarts one on the
same SQLite files and checks with a raw client that every clinical row still has its identity
row and the other way round.

These tests need a server they may kill: they run with ``--backend ferretdb``; on any other
backend they are strict xfails.

Bad credentials are not covered: FerretDB v1.24 with the SQLite handler (as testkit starts it,
without ``--test-enable-new-auth``) accepts any user and password over PLAIN and rejects the
SCRAM mechanisms outright, so a wrong password cannot be told from a right one. What it does
reject (SCRAM-SHA-1, pymongo's default mechanism) is compared below.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mongoengine
import pymongo
import pytest
from pymongo import monitoring
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

import privata_mongo.mongoengine as pm
from compat_suite.requirements import requires
from privata_mongo.encryption import unseal_row
from testkit.backends import Backend
from testkit.ferretdb import start_ferretdb
from testkit.services import ServiceProcess, free_port

#: Small timeouts: each failed operation gives up within about a second.
TIMEOUTS = {"serverSelectionTimeoutMS": 500, "connectTimeoutMS": 500, "socketTimeoutMS": 1000}
DB = "connection_failures"


def _needs_ferretdb(backend: Backend) -> bool:
    """Whether this run may stop servers (elsewhere ``@requires("server_process")`` xfails)."""
    return backend.name == "ferretdb"


@pytest.fixture
def own_server(
    backend: Backend, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[ServiceProcess | None]:
    """A FerretDB only this test uses (it gets killed), or ``None`` off the ferretdb backend."""
    if not _needs_ferretdb(backend):
        yield None
        return
    server = start_ferretdb(tmp_path / "ferretdb")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def session_server_uri(backend: Backend, request: pytest.FixtureRequest) -> str | None:
    """The session's FerretDB (left running), or ``None`` off the ferretdb backend."""
    return backend.uri if _needs_ferretdb(backend) else None


def _require(value: Any) -> Any:
    assert value is not None, "no FerretDB in this run (see the xfail reason)"
    return value


@contextmanager
def _connected(host: str, **settings: Any) -> Iterator[tuple[str, str]]:
    """The facade and plain mongoengine on ``host``; yields their (unique) aliases."""
    tag = uuid.uuid4().hex[:8]
    wrapped, native = f"wrapped_{tag}", f"native_{tag}"
    options = {"host": host, "uuidRepresentation": "standard", **TIMEOUTS, **settings}
    try:
        pm.connect(db=DB, alias=wrapped, **options)
        mongoengine.connect(db=DB, alias=native, **options)
        yield wrapped, native
    finally:
        mongoengine.disconnect(wrapped)
        mongoengine.disconnect(native)


def _patient_models(wrapped: str, native: str) -> tuple[Any, Any]:
    """The same model twice: split by the facade (identity: names, e-mail) and native."""

    class Fields(mongoengine.Document):
        first_name = mongoengine.StringField(required=True)
        email = mongoengine.EmailField()
        diagnosis = mongoengine.StringField()
        visits = mongoengine.IntField(default=0)
        meta = {"abstract": True}

    class OutagePatient(Fields):
        meta = {"db_alias": wrapped, "collection": "outage_patient"}

    class NativeOutagePatient(Fields):
        meta = {"db_alias": native, "collection": "native_outage_patient"}

    return OutagePatient, NativeOutagePatient


def _error_of(operation: Callable[[], object]) -> BaseException:
    try:
        operation()
    except Exception as error:  # the type is what the test compares
        return error
    raise AssertionError(f"{operation} succeeded with the server unreachable")


def _assert_same_native_error(wrapped: BaseException, native: BaseException) -> None:
    assert type(wrapped) is type(native), (wrapped, native)
    assert type(wrapped).__module__ == "pymongo.errors", type(wrapped)
    assert isinstance(wrapped, PyMongoError)


def _kill(server: ServiceProcess) -> None:
    """Crash the server (no graceful shutdown), then reap it."""
    os.kill(server.pid, signal.SIGKILL)
    server.stop()
    assert not server.running()


@requires("server_process")
def test_an_outage_fails_reads_and_writes_natively_and_leaves_nothing_half_written(
    own_server: ServiceProcess | None, tmp_path: Path
) -> None:
    server: ServiceProcess = _require(own_server)
    with _connected(server.uri) as (wrapped, native):
        Patient, NativePatient = _patient_models(wrapped, native)
        for i in range(3):
            fields = {"first_name": f"P{i}", "email": f"p{i}@example.org", "diagnosis": "J45"}
            Patient(**fields).save()
            NativePatient(**fields).save()
        ada = Patient.objects.get(first_name="P0")
        native_ada = NativePatient.objects.get(first_name="P0")

        _kill(server)

        # The same operations, in the same order, on both connections.
        read = _error_of(lambda: list(Patient.objects))
        native_read = _error_of(lambda: list(NativePatient.objects))
        _assert_same_native_error(read, native_read)
        assert isinstance(read, ConnectionFailure)

        fresh = {"first_name": "Q", "email": "q@example.org", "diagnosis": "E11"}
        write = _error_of(lambda: Patient(**fresh).save())
        native_write = _error_of(lambda: NativePatient(**fresh).save())
        _assert_same_native_error(write, native_write)
        assert isinstance(write, ConnectionFailure)

        ada.first_name, ada.diagnosis = "Changed", "Changed"
        native_ada.first_name, native_ada.diagnosis = "Changed", "Changed"
        update = _error_of(ada.save)
        native_update = _error_of(native_ada.save)
        _assert_same_native_error(update, native_update)

        count = _error_of(lambda: Patient.objects.count())
        native_count = _error_of(lambda: NativePatient.objects.count())
        _assert_same_native_error(count, native_count)

    # Back up on the same SQLite files (a new port): every logical document is whole.
    with start_ferretdb(server.state_dir) as restarted:
        with pymongo.MongoClient(restarted.uri, **TIMEOUTS) as raw:
            clinical = list(raw[DB]["outage_patient"].find())
            identity = list(raw[DB]["outage_patient__identity"].find())
            assert len(clinical) == 3
            pseudonyms = [row["_pseudonym"] for row in clinical]
            assert sorted(pseudonyms) == sorted(row["_id"] for row in identity)
            assert all(row["diagnosis"] == "J45" for row in clinical)
            plain = [unseal_row(raw[DB], row) for row in identity]
            assert sorted(row["first_name"] for row in plain) == ["P0", "P1", "P2"]
            assert raw[DB]["native_outage_patient"].count_documents({}) == 3

        with _connected(restarted.uri) as (wrapped, native):
            Patient, _ = _patient_models(wrapped, native)
            assert sorted((p.first_name, p.diagnosis) for p in Patient.objects) == [
                ("P0", "J45"),
                ("P1", "J45"),
                ("P2", "J45"),
            ]


class _KillAfterIdentityInsert(monitoring.CommandListener):
    """Crashes the server right after it acknowledged an insert into an identity collection."""

    def __init__(self, server: ServiceProcess) -> None:
        self.server = server
        self.armed = False
        self._identity_inserts: set[int] = set()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get("insert") if event.command_name == "insert" else None
        if self.armed and isinstance(target, str) and target.endswith("__identity"):
            self._identity_inserts.add(event.request_id)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.request_id in self._identity_inserts:
            self.armed = False
            _kill(self.server)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Failures are the test's to observe."""


@requires("server_process")
def test_a_crash_between_the_two_inserts_leaves_no_clinical_row_without_identity(
    own_server: ServiceProcess | None,
) -> None:
    """Identity is written first: a crash in between may strand an identity row that no query
    reaches, but never leaves clinical data whose subject cannot be found (or erased)."""
    server: ServiceProcess = _require(own_server)
    crash = _KillAfterIdentityInsert(server)
    with _connected(server.uri, event_listeners=[crash]) as (wrapped, native):
        Patient, _ = _patient_models(wrapped, native)
        Patient(first_name="Whole", email="whole@example.org", diagnosis="J45").save()
        crash.armed = True
        error = _error_of(
            lambda: Patient(first_name="Cut", email="cut@example.org", diagnosis="E11").save()
        )
        assert isinstance(error, ConnectionFailure)
        assert type(error).__module__ == "pymongo.errors"
        assert not server.running()

    with start_ferretdb(server.state_dir) as restarted:
        with pymongo.MongoClient(restarted.uri, **TIMEOUTS) as raw:
            clinical = list(raw[DB]["outage_patient"].find())
            identity_ids = {row["_id"] for row in raw[DB]["outage_patient__identity"].find()}
        assert {row["_pseudonym"] for row in clinical} <= identity_ids
        assert [row["diagnosis"] for row in clinical] == ["J45"]
        with _connected(restarted.uri) as (wrapped, native):
            Patient, _ = _patient_models(wrapped, native)
            assert [(p.first_name, p.diagnosis) for p in Patient.objects] == [("Whole", "J45")]


@requires("server_process")
def test_a_port_with_no_server_fails_natively(backend: Backend) -> None:
    _require(True if _needs_ferretdb(backend) else None)
    with _connected(f"mongodb://127.0.0.1:{free_port()}/") as (wrapped, native):
        Patient, NativePatient = _patient_models(wrapped, native)
        read = _error_of(lambda: Patient.objects.first())
        native_read = _error_of(lambda: NativePatient.objects.first())
        _assert_same_native_error(read, native_read)
        assert isinstance(read, ConnectionFailure)

        fields = {"first_name": "P", "email": "p@example.org", "diagnosis": "J45"}
        write = _error_of(lambda: Patient(**fields).save())
        native_write = _error_of(lambda: NativePatient(**fields).save())
        _assert_same_native_error(write, native_write)
        assert isinstance(write, ConnectionFailure)


@requires("server_process")
def test_a_rejected_authentication_fails_natively(session_server_uri: str | None) -> None:
    uri: str = _require(session_server_uri)
    with _connected(uri, username="someone", password="made-up") as (wrapped, native):  # noqa: S106 - a made-up password the server must refuse
        Patient, NativePatient = _patient_models(wrapped, native)
        read = _error_of(lambda: Patient.objects.first())
        native_read = _error_of(lambda: NativePatient.objects.first())
        _assert_same_native_error(read, native_read)
        assert isinstance(read, OperationFailure)
        assert isinstance(native_read, OperationFailure)
        assert (read.code, read.details) == (native_read.code, native_read.details)
