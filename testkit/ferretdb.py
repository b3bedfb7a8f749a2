"""FerretDB (SQLite handler) on loopback: a real MongoDB wire-protocol server for the suites.

``start_ferretdb(state_dir)`` builds FerretDB on first use (``scripts/ferretdb.sh install``: Go
toolchain required, about a minute cold, instant once cached), starts it on a free 127.0.0.1
port with its SQLite files and log in ``state_dir``, and returns once ``hello`` answers.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from testkit.services import ServiceProcess, run_script, start_service

__all__ = ["FERRETDB_VERSION", "hello_ok", "install_ferretdb", "start_ferretdb"]

#: The version scripts/ferretdb.sh builds; keep the two in step.
FERRETDB_VERSION = "v1.24.2"


def install_ferretdb(timeout: float = 1800.0) -> Path:
    """Build (or reuse) the pinned FerretDB binary and return its path.

    Raises:
        testkit.services.ServiceError: the Go toolchain is missing or the build failed; the
            message is the script's.
    """
    return Path(run_script("ferretdb.sh", "install", timeout=timeout))


def hello_ok(uri: str, timeout_ms: int = 500) -> bool:
    """Whether the server at ``uri`` answers ``hello`` right now."""
    # Refused connections fail here at once; pymongo would wait out its server selection.
    parts = urlsplit(uri)
    try:
        socket.create_connection((parts.hostname, parts.port or 27017), timeout=1).close()
    except OSError:
        return False
    client: MongoClient[dict[str, object]] = MongoClient(
        uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
    )
    try:
        return bool(client.admin.command("hello").get("ok"))
    except PyMongoError:
        return False
    finally:
        client.close()


def start_ferretdb(
    state_dir: Path,
    timeout: float = 60.0,
    port: int | None = None,
    repl_set_name: str | None = None,
) -> ServiceProcess:
    """Start FerretDB with its data and log under ``state_dir``; ``.uri`` is a mongodb:// URI.

    ``port`` restarts a server where its clients expect it (a free port when ``None``). The
    caller owns the returned handle and must ``stop()`` it (it is also a context manager).
    ``repl_set_name`` starts it as FerretDB's ``--repl-set-name`` does: ``hello`` then names a
    replica set, though FerretDB 1.x runs no transactions (the case the transaction probe of
    ``runtime.transactions`` must not be fooled by).
    """
    install_ferretdb()
    return start_service(
        name="ferretdb",
        script="ferretdb.sh",
        state_dir=state_dir,
        uri_for=lambda port: f"mongodb://127.0.0.1:{port}/",
        ready=hello_ok,
        timeout=timeout,
        port=port,
        env={"FERRETDB_REPL_SET_NAME": repl_set_name} if repl_set_name else None,
    )


@contextlib.contextmanager
def server_uri(uri: str | None, prefix: str = "ferretdb-") -> Iterator[str]:
    """``uri`` when one is given; otherwise a FerretDB started for the block, in a temporary dir.

    What the benchmarks that take ``--uri`` do when they are given none.
    """
    if uri is not None:
        yield uri
        return
    with (
        tempfile.TemporaryDirectory(prefix=prefix) as state,
        start_ferretdb(Path(state)) as server,
    ):
        yield server.uri
