"""Transactions are used only where a probe proves the server rolls one back.

``hello`` naming a replica set is not enough: FerretDB 1.x started with ``--repl-set-name``
says so and ignores the transaction fields of every command. The probe
(``runtime.transactions``) also aborts a probe transaction and reads its scratch document back.
Here it answers no on mongomock, on FerretDB, and on a FerretDB started as a replica set; the
fake servers below show the decision itself (a rollback that holds, one that does not, and
``transactions="off"``). The yes on a real replica set is checked only with
``--backend mongodb`` and ``PRIVATA_TEST_MONGODB_URI`` (``docs/reliability.md``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pymongo
import pytest

import privata_mongo
from privata_mongo.config import Settings
from privata_mongo.errors import ConfigurationError
from privata_mongo.runtime.transactions import PROBE_SUFFIX, Transactions
from testkit.backends import Backend
from testkit.ferretdb import start_ferretdb

AUTO = Settings()
PROBE = AUTO.audit_collection + PROBE_SUFFIX


class _Session:
    """A session whose abort rolls back (``rolls_back``) or leaves the insert applied."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.pending: list[Any] = []

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def start_transaction(self) -> None:
        self.server.calls.append("start_transaction")

    def abort_transaction(self) -> None:
        self.server.calls.append("abort_transaction")
        if self.server.rolls_back:
            for key in self.pending:
                self.server.rows.pop(key, None)


class _Collection:
    def __init__(self, server: _Server, name: str) -> None:
        self.server, self.name = server, name

    def insert_one(self, document: dict[str, Any], session: _Session | None = None) -> None:
        self.server.calls.append(f"insert_one {self.name}")
        self.server.rows[document["_id"]] = document
        if session is not None:
            session.pending.append(document["_id"])

    def find_one(self, filter: dict[str, Any]) -> Any:
        self.server.calls.append("find_one")
        return self.server.rows.get(filter["_id"])

    def delete_one(self, filter: dict[str, Any]) -> None:
        self.server.calls.append("delete_one")
        self.server.rows.pop(filter["_id"], None)


class _Server:
    """A database and its client: ``hello`` as given, a rollback that holds or not."""

    def __init__(self, hello: dict[str, Any], *, rolls_back: bool) -> None:
        self.hello, self.rolls_back = hello, rolls_back
        self.rows: dict[str, Any] = {}
        self.calls: list[str] = []
        self.client = self
        self.admin = self

    def command(self, name: str) -> dict[str, Any]:
        self.calls.append(name)
        return self.hello

    def start_session(self) -> _Session:
        return _Session(self)

    def get_collection(self, name: str) -> _Collection:
        return _Collection(self, name)


REPLICA_SET = {"ok": 1.0, "isWritablePrimary": True, "setName": "rs0"}


def test_a_replica_set_that_rolls_the_probe_back_has_transactions() -> None:
    server = _Server(REPLICA_SET, rolls_back=True)
    transactions = Transactions()
    assert transactions.available(server, AUTO) is True
    assert server.calls == [
        "hello",
        "start_transaction",
        f"insert_one {PROBE}",
        "abort_transaction",
        "find_one",
    ]
    assert server.rows == {}
    assert transactions.available(server, AUTO) is True  # probed once per connection
    assert server.calls.count("hello") == 1


def test_a_replica_set_that_keeps_the_aborted_write_has_none_and_loses_the_scratch_row() -> None:
    server = _Server(REPLICA_SET, rolls_back=False)  # FerretDB with --repl-set-name
    assert Transactions().available(server, AUTO) is False
    assert server.calls[-2:] == ["find_one", "delete_one"]
    assert server.rows == {}


def test_a_standalone_server_is_not_probed_further_than_hello() -> None:
    server = _Server({"ok": 1.0, "isWritablePrimary": True}, rolls_back=True)
    assert Transactions().available(server, AUTO) is False
    assert server.calls == ["hello"]


def test_transactions_off_probes_nothing() -> None:
    server = _Server(REPLICA_SET, rolls_back=True)
    transactions = Transactions()
    assert transactions.available(server, Settings(transactions="off")) is False
    assert server.calls == []
    assert transactions.verdict is None


def test_configure_takes_only_auto_or_off() -> None:
    with pytest.raises(ConfigurationError, match='transactions must be "auto" or "off"'):
        privata_mongo.configure(transactions="on")
    assert privata_mongo.config.current().transactions == "auto"


def test_the_probe_finds_what_the_backend_offers(backend: Backend) -> None:
    """No on mongomock and FerretDB; on ``--backend mongodb``, yes exactly on a replica set."""
    client = backend.client()
    try:
        database = client[backend.db_name]
        replica_set = backend.name == "mongodb" and bool(
            client.admin.command("hello").get("setName")
        )
        transactions = Transactions()
        assert transactions.available(database, AUTO) is replica_set
        assert transactions.verdict is replica_set
        assert database[PROBE].count_documents({}) == 0  # no scratch row is left
    finally:
        client.close()


def test_a_ferretdb_that_reports_a_replica_set_is_not_trusted(tmp_path: Path) -> None:
    with contextlib.closing(_Stopping(start_ferretdb(tmp_path, repl_set_name="rs0"))) as server:
        client: pymongo.MongoClient[Any] = pymongo.MongoClient(server.uri)
        try:
            assert client.admin.command("hello").get("setName") == "rs0"
            database = client["probe_test"]
            transactions = Transactions()
            assert transactions.available(database, AUTO) is False
            assert transactions.verdict is False
            assert database[PROBE].count_documents({}) == 0  # the row it kept was removed
        finally:
            client.close()


class _Stopping:
    """A started server that ``contextlib.closing`` stops."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.uri: str = service.uri

    def close(self) -> None:
        self.service.stop()


class _AsyncServer(_Server):
    """``_Server`` with pymongo's async shape: awaited commands, session and collection."""

    async def command(self, name: str) -> dict[str, Any]:  # type: ignore[override]
        return _Server.command(self, name)

    def start_session(self) -> Any:
        session = _Session(self)

        class _Awaited:
            async def __aenter__(self) -> _Awaited:
                return self

            async def __aexit__(self, *exc: object) -> None:
                return None

            async def start_transaction(self) -> None:
                session.start_transaction()

            async def abort_transaction(self) -> None:
                session.abort_transaction()

            pending = session.pending

        return _Awaited()

    def get_collection(self, name: str) -> Any:
        inner = _Collection(self, name)

        class _Awaited:
            async def insert_one(self, document: dict[str, Any], session: Any = None) -> None:
                inner.insert_one(document, session)

            async def find_one(self, filter: dict[str, Any]) -> Any:
                return inner.find_one(filter)

            async def delete_one(self, filter: dict[str, Any]) -> None:
                inner.delete_one(filter)

        return _Awaited()


@pytest.mark.parametrize(("rolls_back", "expected"), [(True, True), (False, False)])
async def test_the_async_probe_decides_alike(rolls_back: bool, expected: bool) -> None:
    server = _AsyncServer(REPLICA_SET, rolls_back=rolls_back)
    transactions = Transactions()
    assert await transactions.available_async(server, AUTO) is expected
    assert server.rows == {}
    assert await transactions.available_async(server, AUTO) is expected
    assert server.calls.count("hello") == 1
    assert await Transactions().available_async(server, Settings(transactions="off")) is False
