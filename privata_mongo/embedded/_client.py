"""Internal. ``AsyncMockClient``: pymongo's ``AsyncMongoClient`` API over mongomock's client.

This is the one module of the package that imports mongomock, so it is where a missing ``mock``
extra is reported, with the command that installs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from pymongo.driver_info import DriverInfo
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from privata_mongo.adapters._closing import AsyncClosing
from privata_mongo.embedded._database import AsyncMockDatabase, build_info
from privata_mongo.embedded._forward import CLIENT, derive, forward, no_session
from privata_mongo.embedded._options import MockOptions
from privata_mongo.errors import ConfigurationError

_MISSING_MOCK = (
    "the embedded backend needs mongomock, which cannot be imported; "
    'install the "mock" extra: pip install "privata-mongo[mock]"'
)
try:
    import mongomock
    from mongomock.store import ServerStore
except ImportError as missing:
    raise ConfigurationError(_MISSING_MOCK) from missing

if TYPE_CHECKING:
    pass

__all__ = ["AsyncMockClient", "embedded_database"]


def embedded_database(name: str, store: ServerStore | None = None) -> AsyncMockDatabase:
    """An in-memory database with pymongo's async API, e.g. for ``init_beanie(database=...)``.

    Args:
        name: the database name.
        store: a ``mongomock.store.ServerStore`` to share data with other clients (sync
            mongomock clients included); a fresh, private one when omitted.
    """
    return AsyncMockClient(store)[name]


class AsyncMockClient(MockOptions, AsyncClosing):
    """pymongo's ``AsyncMongoClient`` API over a ``mongomock.MongoClient``.

    Args:
        store: the in-memory server; clients given the same store see the same data.
        **kwargs: passed to ``mongomock.MongoClient`` (``host`` with a default database in its
            URI, ``tz_aware``, ``read_preference`` ...).
    """

    def __init__(self, store: ServerStore | None = None, **kwargs: Any) -> None:
        # mongomock's stub calls its client pymongo's MongoClient; it is not: keep it untyped.
        self._inner: Any = mongomock.MongoClient(_store=store, **kwargs)
        self._driver_info: list[DriverInfo] = []

    def __repr__(self) -> str:
        return f"AsyncMockClient({self._inner!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AsyncMockClient):
            return bool(self._inner is other._inner)
        return NotImplemented

    def __hash__(self) -> int:
        return id(self._inner)

    def __getitem__(self, name: str) -> AsyncMockDatabase:
        return self.get_database(name)

    @property
    def inner(self) -> Any:
        """The mongomock client (untyped)."""
        return self._inner

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the client was created for; nothing listens there."""
        host, port = self._inner.address
        return str(host), int(port)

    @property
    def write_concern(self) -> WriteConcern:
        """The server default: every write is acknowledged in process."""
        return WriteConcern()

    @property
    def read_concern(self) -> ReadConcern:
        """The server default."""
        return ReadConcern()

    @property
    def driver_info(self) -> tuple[DriverInfo, ...]:
        """What libraries announced through ``append_metadata`` (Beanie does)."""
        return tuple(self._driver_info)

    get_database = derive(CLIENT.get_database, AsyncMockDatabase)
    get_default_database = derive(CLIENT.get_default_database, AsyncMockDatabase)
    list_database_names = forward(CLIENT.list_database_names)

    async def drop_database(
        self, name_or_database: str | AsyncMockDatabase, session: Any = None, comment: Any = None
    ) -> None:
        """Drop a database and every collection in it."""
        no_session(session)
        if isinstance(name_or_database, AsyncMockDatabase):
            name_or_database = name_or_database.name
        if not isinstance(name_or_database, str):
            raise TypeError("name_or_database must be an instance of str or a Database")
        self._inner.drop_database(name_or_database)

    async def server_info(self, session: Any = None) -> dict[str, Any]:
        """The emulated server's build information."""
        no_session(session)
        return build_info(self._inner)

    def append_metadata(self, driver_info: DriverInfo) -> None:
        """Record a library's driver metadata, as pymongo 4.14+ does for its handshake."""
        if not isinstance(driver_info, DriverInfo):
            raise TypeError(
                f"driver_info must be an instance of DriverInfo, not {type(driver_info)}"
            )
        self._driver_info.append(driver_info)

    def start_session(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Always refused: mongomock has neither sessions nor transactions."""
        raise NotImplementedError(
            "the embedded (mongomock) backend has no sessions or transactions; "
            "run session-bound code against a MongoDB server"
        )

    async def close(self) -> None:
        """Nothing to release; the store keeps its data for other clients."""
