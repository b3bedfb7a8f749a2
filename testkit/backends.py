"""Backends the suites run on, each able to hand out fresh, isolated databases.

A backend is a parameter of the suites (``--backend mongomock --backend ferretdb``), never a copy
of them. Each test gets its own database name; the backend drops it afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import mongomock
import pymongo
from mongomock.store import ServerStore

__all__ = ["Backend", "MongoUriBackend", "MongomockBackend", "beanie_database", "fresh_db_name"]


def fresh_db_name(prefix: str = "t") -> str:
    """A database name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@dataclass
class Backend:
    """One storage backend as the suites see it.

    ``mongoengine_settings()`` are the keyword arguments for ``connect()`` (besides ``db`` and
    ``alias``) that reach this backend; ``client()`` opens an independent raw client on the same
    data, for assertions on what is really stored (the caller closes it). ``db_name`` is this
    test's own database: pass it as ``db=`` and look there with the raw client.
    """

    name: str
    uri: str | None = None
    _settings: Callable[[], dict[str, Any]] = field(default=dict, repr=False)
    _client: Callable[[], Any] = field(default=lambda: None, repr=False)
    db_name: str = field(default_factory=fresh_db_name)

    def mongoengine_settings(self) -> dict[str, Any]:
        """Keyword arguments for ``mongoengine.connect`` that point at this backend."""
        return {"uuidRepresentation": "standard", **self._settings()}

    def client(self) -> Any:
        """A raw sync client on the same data (pymongo-shaped)."""
        return self._client()


class MongomockBackend(Backend):
    """mongomock, with one in-memory server store per test so that raw clients share data."""

    def __init__(self) -> None:
        store = ServerStore()
        client_class = functools.partial(mongomock.MongoClient, _store=store)
        super().__init__(
            name="mongomock",
            _settings=lambda: {"mongo_client_class": client_class},
            _client=lambda: mongomock.MongoClient(_store=store),
        )


class MongoUriBackend(Backend):
    """A real server reached by URI: FerretDB started by the suite, or a MongoDB given to it.

    Both sides use the standard UUID representation, so a ``UUIDField`` written through
    mongoengine reads back as ``uuid.UUID`` from the raw client.
    """

    def __init__(self, name: str, uri: str) -> None:
        super().__init__(
            name=name,
            uri=uri,
            _settings=lambda: {"host": uri},
            _client=lambda: pymongo.MongoClient(uri, uuidRepresentation="standard"),
        )

    def drop_database(self) -> None:
        """Drop this test's database (the suites call this at teardown)."""
        with self.client() as client:
            client.drop_database(self.db_name)


@contextlib.asynccontextmanager
async def beanie_database(backend: Backend, **options: Any) -> AsyncIterator[Any]:
    """An async database for ``init_beanie`` on ``backend``, closed afterwards.

    On mongomock a store of its own (the embedded async adapter); on a server this test's
    database through ``pymongo.AsyncMongoClient(uri, **options)``.
    """
    from privata_mongo.embedded import AsyncMockClient

    client: Any = (
        AsyncMockClient(ServerStore())
        if backend.uri is None
        else pymongo.AsyncMongoClient(backend.uri, **options)
    )
    try:
        yield client[backend.db_name]
    finally:
        await client.close()
