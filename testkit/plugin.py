"""pytest plugin: ``--backend`` (repeatable), the ``backend`` fixture parametrised over it, servers.

``--backend mongomock`` (the default) needs nothing; ``--backend ferretdb`` builds FerretDB on first
use and starts it once per session; ``--backend mongodb`` uses the server named by
``PRIVATA_TEST_MONGODB_URI``. ``redis_uri`` starts redis-server only in sessions that ask for it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest

import privata_mongo
import privata_mongo.config
from privata_mongo.encryption import MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, new_master_key
from testkit.backends import Backend, MongomockBackend, MongoUriBackend
from testkit.ferretdb import start_ferretdb
from testkit.redis import start_redis
from testkit.services import ServiceError, ServiceProcess

KNOWN_BACKENDS = ("mongomock", "ferretdb", "mongodb")
MONGODB_URI_ENV = "PRIVATA_TEST_MONGODB_URI"
_SESSION_VAULT = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--backend``."""
    parser.addoption(
        "--backend",
        action="append",
        choices=KNOWN_BACKENDS,
        help="storage backend to run backend-parametrised tests on (repeatable; "
        "default: mongomock; ferretdb needs a Go toolchain on first use; "
        f"mongodb needs {MONGODB_URI_ENV})",
    )


def selected_backends(config: pytest.Config) -> list[str]:
    """The backends chosen on the command line, in order, without repeats."""
    chosen: list[str] | None = config.getoption("--backend")
    return list(dict.fromkeys(chosen or ["mongomock"]))


def _mongodb_uri() -> str:
    uri = os.environ.get(MONGODB_URI_ENV, "").strip()
    if not uri:
        raise pytest.UsageError(
            f"--backend mongodb needs {MONGODB_URI_ENV}=mongodb://host:port/ pointing at a "
            "MongoDB server the tests may create and drop databases on"
        )
    return uri


def pytest_configure(config: pytest.Config) -> None:
    """Fail at start-up, not in every test, when the mongodb backend has no server to go to.

    Identity rows are encrypted, and a real server needs a master key: unless the environment
    names one, the session gets a fresh random key, and a key vault of its own (keys an earlier
    session stored on a long-lived server were wrapped by another key; that key vault's
    database is dropped when the session ends).
    """
    if "mongodb" in selected_backends(config):
        _mongodb_uri()
    if not os.environ.get(MASTER_KEY_ENV) and not os.environ.get(MASTER_KEY_FILE_ENV):
        os.environ[MASTER_KEY_ENV] = new_master_key()
        namespace = f"privata_test_keys_{secrets.token_hex(4)}.__keyVault"
        privata_mongo.configure(key_vault_namespace=namespace)
        config.stash[_SESSION_VAULT] = namespace


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop this session's own key vault from a server that outlives the session."""
    namespace = session.config.stash.get(_SESSION_VAULT, None)
    if namespace is None or "mongodb" not in selected_backends(session.config):
        return
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(_mongodb_uri())
    try:
        client.drop_database(namespace.partition(".")[0])
    finally:
        client.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``backend_name`` (and so ``backend``) over the selected backends."""
    if "backend_name" in metafunc.fixturenames:
        names = selected_backends(metafunc.config)
        metafunc.parametrize("backend_name", names, ids=names, scope="session")


def _start_or_fail(
    what: str, start: Callable[[Path], ServiceProcess], state_dir: Path
) -> ServiceProcess:
    """Start a server, or fail the requesting tests with the script's own message (no skip)."""
    try:
        return start(state_dir)
    except ServiceError as exc:
        message = f"{what} unavailable: {exc}"
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def ferretdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """FerretDB for the whole session, started on first request and stopped at the end."""
    with _start_or_fail("FerretDB", start_ferretdb, tmp_path_factory.mktemp("ferretdb")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """redis://127.0.0.1:<port>/0 of a redis-server started for this session on first request."""
    with _start_or_fail("redis-server", start_redis, tmp_path_factory.mktemp("redis")) as server:
        yield server.uri


@pytest.fixture
def backend(backend_name: str, request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A backend with fresh, isolated storage for this test (its own ``db_name``)."""
    if backend_name == "mongomock":
        yield MongomockBackend()
        return
    if backend_name == "ferretdb":
        server: ServiceProcess = request.getfixturevalue("ferretdb_server")
        uri_backend = MongoUriBackend("ferretdb", server.uri)
    elif backend_name == "mongodb":
        uri_backend = MongoUriBackend("mongodb", _mongodb_uri())
    else:
        raise pytest.UsageError(f"unknown backend {backend_name!r}")
    with _own_key_vault(request.config, uri_backend):
        yield uri_backend
    uri_backend.drop_database()


@contextlib.contextmanager
def _own_key_vault(config: pytest.Config, backend: MongoUriBackend) -> Iterator[None]:
    """A key vault of the test's own on a server, dropped after it (with the session's keys).

    Every test stores keys (a data key per subject, an audit chain key per database), and a
    server without an index it can use on ``keyAltNames`` (FerretDB v1.24 on SQLite) scans the
    whole vault for each look-up: a vault shared by the session grows to thousands of keys and
    every look-up with it. A test keeps its keys apart, as it keeps its database apart. When
    the environment names the master key, its vault is the environment's, and it is left alone.
    """
    session_vault = config.stash.get(_SESSION_VAULT, None)
    if session_vault is None:
        yield
        return
    saved = privata_mongo.config.current()
    database = f"privata_test_keys_{secrets.token_hex(4)}"
    privata_mongo.configure(key_vault_namespace=f"{database}.__keyVault")
    try:
        yield
    finally:
        privata_mongo.config._current = saved
        client: pymongo.MongoClient[Any] = pymongo.MongoClient(backend.uri)
        try:
            client.drop_database(database)
        finally:
            client.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@requires(feature)`` on a backend that declares the gap becomes a strict xfail."""
    from compat_suite.requirements import mark_gaps

    mark_gaps(items)
