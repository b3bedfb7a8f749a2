"""The storage port contract on every adapter this repository ships.

One suite (``privata_mongo.testing.contract``), four adapters: ``PymongoStore`` over mongomock
and over pymongo, ``AsyncPymongoStore`` over the embedded async mongomock adapter and over
pymongo's ``AsyncMongoClient``. The mongomock adapters run with ``--backend mongomock``, the
pymongo ones with ``--backend ferretdb`` (or ``mongodb``); each test gets the backend's fresh
database from testkit's ``backend`` fixture.

``pytest_generate_tests`` below lists the (backend, flavour, check) cells from the same
``--backend`` selection, each with its backend's declared gaps as strict xfails, and the
``backend_name`` fixture here feeds each cell's backend to testkit's own ``backend`` fixture.

Backend gaps come from compat_suite/requirements.py, the repository's one table of them, as
strict xfails with their measured reason.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import mongomock
import pymongo
import pytest

from compat_suite.requirements import FEATURES, gaps_for
from privata_mongo.adapters.pymongo_async_store import AsyncPymongoStore
from privata_mongo.adapters.pymongo_calls import IdentityRedaction
from privata_mongo.adapters.pymongo_store import PymongoStore
from privata_mongo.core.failures import WriteFailed, WriteFailure
from privata_mongo.core.ops import Find, Insert, InsertOutcome, Update
from privata_mongo.embedded import embedded_database
from privata_mongo.testing import contract
from testkit.backends import Backend
from testkit.plugin import selected_backends

FLAVOURS = ("sync", "async")


@dataclass(frozen=True)
class Cell:
    """One adapter: a backend crossed with the sync or async store."""

    backend_name: str
    flavour: str

    def expected_failures(self, check: contract.Check) -> list[pytest.MarkDecorator]:
        """Strict xfails for the check's declared backend gaps."""
        gaps = gaps_for(self.backend_name, sorted(check.requires))
        reasons = [f"{self.backend_name} lacks {feature}: {why}" for feature, why in gaps.items()]
        if not reasons:
            return []
        return [pytest.mark.xfail(reason="; ".join(reasons), strict=True)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``case`` over (backend, flavour, check) for the selected backends."""
    if "case" not in metafunc.fixturenames:
        return
    cells = [
        Cell(name, flavour) for name in selected_backends(metafunc.config) for flavour in FLAVOURS
    ]
    metafunc.parametrize(
        "case",
        [
            pytest.param(
                (cell, check),
                marks=cell.expected_failures(check),
                id=f"{cell.backend_name}-{cell.flavour}-{check.name}",
            )
            for cell in cells
            for check in contract.CHECKS
        ],
    )


@pytest.fixture
def backend_name(case: tuple[Cell, contract.Check]) -> str:
    """The cell's backend, for testkit's ``backend`` fixture."""
    return case[0].backend_name


@pytest.fixture
def cell_backend(request: pytest.FixtureRequest) -> Backend:
    """testkit's ``backend`` fixture for the cell (fetched by name: see the module docstring)."""
    backend: Backend = request.getfixturevalue("backend")
    return backend


@pytest.fixture
async def make_store(
    case: tuple[Cell, contract.Check], cell_backend: Backend
) -> AsyncIterator[contract.StoreFactory]:
    """A store factory over the cell's adapter, on this test's fresh database."""
    cell, _ = case
    db_name = cell_backend.db_name
    closers: list[Callable[[], Any]] = []
    database: Any
    if cell.flavour == "sync":  # mongomock.MongoClient or pymongo.MongoClient
        client = cell_backend.client()
        closers.append(client.close)
        database, store_class = client[db_name], PymongoStore
    elif cell_backend.uri is None:  # in-process: nothing to close
        database, store_class = embedded_database(db_name), AsyncPymongoStore
    else:
        aclient: pymongo.AsyncMongoClient[dict[str, Any]] = pymongo.AsyncMongoClient(
            cell_backend.uri, uuidRepresentation="standard"
        )
        closers.append(aclient.close)
        database, store_class = aclient[db_name], AsyncPymongoStore

    def make(name: str, *, identity: bool) -> Any:
        redaction = IdentityRedaction("ContractPatient", f"{db_name}.{name}") if identity else None
        return store_class(database[name], redaction)

    try:
        yield make
    finally:
        for close in closers:
            result = close()
            if result is not None:
                await result


async def test_store_honours_the_port(
    case: tuple[Cell, contract.Check], make_store: contract.StoreFactory
) -> None:
    _, check = case
    await check(make_store)


def test_contract_features_are_declared_backend_features() -> None:
    names = {check.name for check in contract.CHECKS}
    assert set(contract.FEATURES) <= set(FEATURES)
    assert len(names) == len(contract.CHECKS)


def test_checks_cover_every_port_method() -> None:
    from privata_mongo.ports import storage

    methods = {
        name
        for protocol in (storage.DocumentStore, storage.BatchCursor)
        for name in dir(protocol)
        if not name.startswith("_")
    }
    modules = [contract] + [
        importlib.import_module(f"{contract.__name__}.{module.name}")
        for module in pkgutil.iter_modules(contract.__path__)
    ]
    source = "".join(inspect.getsource(module) for module in modules)
    for method in sorted(methods):
        assert f"store.{method}(" in source or f"cursor.{method}(" in source, method


class _SwallowingStore(PymongoStore):
    """A broken adapter: its cursors ignore the batch size, its inserts raise."""

    def execute(self, op: Any, /) -> Any:
        if isinstance(op, Insert) and len(op.documents) > 1:
            raise RuntimeError("bulk inserts are not supported")
        result = super().execute(op)
        if isinstance(op, Find):
            cursor = result
            cursor.next_batch = lambda size: cursor.__class__.next_batch(cursor, size + 1)
        return result


async def test_verify_names_the_checks_a_broken_adapter_fails() -> None:
    client: Any = mongomock.MongoClient()
    database = client["contract_meta"]

    def make(name: str, *, identity: bool) -> _SwallowingStore:
        return _SwallowingStore(database[name])

    try:
        with pytest.raises(contract.ContractViolation) as raised:
            await contract.verify(make, lacking=["find_and_modify_projection"])
    finally:
        client.close()
    failed = raised.value.failures
    assert {"find_reads_in_batches", "insert_stores_documents_as_given"} <= set(failed)
    assert "find_and_modify_projects" not in failed
    assert "bulk inserts are not supported" in str(raised.value)
    assert isinstance(failed["insert_stores_documents_as_given"], RuntimeError)


class _LeakingStore(PymongoStore):
    """A broken identity adapter: its duplicate-key errors quote the value, as MongoDB's do."""

    def execute(self, op: Any, /) -> Any:
        if isinstance(op, Insert):
            outcome = super().execute(op)
            return InsertOutcome(
                tuple(
                    WriteFailure(
                        f.index, f.code, f"{f.message}: {op.documents[f.index]}", f.details
                    )
                    for f in outcome.failures
                )
            )
        if isinstance(op, Update):
            try:
                return super().execute(op)
            except WriteFailed as failed:
                raise WriteFailed(f"{failed.message}: {op.update}", failed.code) from None
        return super().execute(op)


@pytest.mark.parametrize(
    "name", ["identity_insert_duplicate_is_redacted", "identity_update_duplicate_is_redacted"]
)
async def test_identity_checks_catch_a_store_that_leaks_values(name: str) -> None:
    (check,) = [c for c in contract.CHECKS if c.name == name]
    client: Any = mongomock.MongoClient()
    try:
        with pytest.raises(AssertionError, match="a stored value reached an error"):
            await check(lambda collection, *, identity: _LeakingStore(client["meta"][collection]))
    finally:
        client.close()


def test_checks_lacking_a_feature_leave_out_the_checks_that_need_it() -> None:
    kept = contract.checks(lacking=["duplicate_key_on_update"])
    assert "update_duplicate_key_raises_write_failed" not in {c.name for c in kept}
    assert len(kept) == len(contract.CHECKS) - 1
    assert all(c.description for c in contract.CHECKS)
    with pytest.raises(ValueError, match="unknown features"):
        contract.checks(lacking=["time_travel"])
