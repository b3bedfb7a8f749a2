"""Motor behind pymongo's async API: the shape Beanie 2 and ``AsyncPymongoStore`` call.

Beanie 2 and privata's async proxy talk to pymongo's ``AsyncMongoClient``/``AsyncDatabase``/
``AsyncCollection``/``AsyncCursor``. Motor 3 has the same coroutine methods for almost every
operation (``insert_one``, ``find_one``, ``update_many``, ``command`` ... take the same
arguments and return the same results), but a few calls differ in kind, and those break Beanie
and the proxy: ``aggregate``, ``list_indexes`` and ``list_collections`` are awaited in pymongo
and return a cursor at once in Motor; the client's ``close`` is awaited in pymongo only; Motor's
client has no ``append_metadata`` (``client.append_metadata`` is a database of that name, so
Beanie's call raises ``TypeError``); cursor chaining and ``clone`` hand back Motor's own cursor;
``rewind`` is not awaited, and ``to_list(0)`` answers ``[]`` where pymongo refuses it.

The classes here wrap Motor's client, database, collection and cursors and present pymongo's
shape for exactly those calls; every other attribute is Motor's own. Motor objects they return
(databases, collections, cursors) come back wrapped, and wrapped objects handed to Motor
(``drop_collection(collection)``) are unwrapped. Sessions and change streams are Motor's
(``await client.start_session()``; a change stream opens on its first read).

Motor is not imported: ``is_motor_database`` recognises Motor's classes by name, so the package
imports without Motor installed, and Motor's objects are typed ``Any``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from privata_mongo.adapters._closing import AsyncClosing
from privata_mongo.adapters._motor_cursors import (
    MotorCommandCursorAdapter,
    MotorCursorAdapter,
    started,
)

if TYPE_CHECKING:
    from pymongo.driver_info import DriverInfo

__all__ = [
    "MotorClientAdapter",
    "MotorCollectionAdapter",
    "MotorCommandCursorAdapter",
    "MotorCursorAdapter",
    "MotorDatabaseAdapter",
    "adapt_motor_database",
    "is_motor_database",
]

_MOTOR_CORE = "motor.core"


def _is_motor(value: object, agnostic_class: str) -> bool:
    """Whether ``value`` is a Motor object built on ``motor.core.<agnostic_class>``."""
    return any(
        klass.__name__ == agnostic_class and klass.__module__ == _MOTOR_CORE
        for klass in type(value).__mro__
    )


def is_motor_database(value: object) -> bool:
    """Whether ``value`` is a Motor database (asyncio or Tornado flavour)."""
    return _is_motor(value, "AgnosticDatabase")


def adapt_motor_database(database: Any) -> MotorDatabaseAdapter:
    """A Motor database with pymongo's ``AsyncDatabase`` API (its options kept)."""
    return MotorDatabaseAdapter(MotorClientAdapter(database.client), database)


class _Adapter:
    """What every adapter shares: the Motor object behind it, equality and hash by it."""

    _kind = ""  # "Collection" / "Database": pymongo refuses their truth value

    def __init__(self, motor: Any) -> None:
        self._motor = motor

    @property
    def motor(self) -> Any:
        """The Motor object behind the adapter."""
        return self._motor

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return bool(self._motor == other._motor)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._motor)

    def __bool__(self) -> bool:
        if not self._kind:
            return True
        raise NotImplementedError(
            f"{self._kind} objects do not implement truth value testing or bool(). "
            f"Please compare with None instead: {self._kind.lower()} is not None"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._motor!r})"


class MotorCollectionAdapter(_Adapter):
    """pymongo's ``AsyncCollection`` API over a Motor collection.

    Args:
        database: the adapted database the collection belongs to.
        motor_collection: the Motor collection.
    """

    _kind = "Collection"

    def __init__(self, database: MotorDatabaseAdapter, motor_collection: Any) -> None:
        super().__init__(motor_collection)
        self._database = database

    @property
    def database(self) -> MotorDatabaseAdapter:
        """The adapted database."""
        return self._database

    @property
    def name(self) -> str:
        """The collection name."""
        return str(self._motor.name)

    @property
    def full_name(self) -> str:
        """``database.collection``."""
        return str(self._motor.full_name)

    def with_options(self, **options: Any) -> MotorCollectionAdapter:
        """The same collection with other read/write options."""
        return MotorCollectionAdapter(self._database, self._motor.with_options(**options))

    def find(self, *args: Any, **kwargs: Any) -> MotorCursorAdapter:
        """A cursor over the matching documents (nothing is sent until it is read)."""
        return MotorCursorAdapter(self._motor.find(*args, **kwargs), self)

    def find_raw_batches(self, *args: Any, **kwargs: Any) -> MotorCursorAdapter:
        """A cursor over raw BSON batches."""
        return MotorCursorAdapter(self._motor.find_raw_batches(*args, **kwargs), self)

    async def aggregate(self, pipeline: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a pipeline; the command is sent before the cursor is returned."""
        return await started(self._motor.aggregate(pipeline, *args, **kwargs), self)

    async def aggregate_raw_batches(self, pipeline: Any, **kwargs: Any) -> Any:
        """Run a pipeline returning raw BSON batches."""
        return await started(self._motor.aggregate_raw_batches(pipeline, **kwargs), self)

    async def list_indexes(self, session: Any = None, **kwargs: Any) -> Any:
        """A cursor over the index documents."""
        return await started(self._motor.list_indexes(session=session, **kwargs), self)

    async def list_search_indexes(self, *args: Any, **kwargs: Any) -> Any:
        """A cursor over the search index documents."""
        return await started(self._motor.list_search_indexes(*args, **kwargs), self)

    async def watch(self, *args: Any, **kwargs: Any) -> Any:
        """Motor's change stream on this collection (it opens on its first read)."""
        return self._motor.watch(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(self._motor, name)
        if _is_motor(value, "AgnosticCollection"):
            return MotorCollectionAdapter(self._database, value)  # a sub-collection
        return value

    def __getitem__(self, name: str) -> MotorCollectionAdapter:
        return MotorCollectionAdapter(self._database, self._motor[name])


def _unwrapped(value: Any) -> Any:
    """The Motor object behind an adapter (Motor's own methods take only Motor's objects)."""
    return value.motor if isinstance(value, _Adapter) else value


class MotorDatabaseAdapter(_Adapter):
    """pymongo's ``AsyncDatabase`` API over a Motor database.

    Args:
        client: the adapted client.
        motor_database: the Motor database.
    """

    _kind = "Database"

    def __init__(self, client: MotorClientAdapter, motor_database: Any) -> None:
        super().__init__(motor_database)
        self._client = client

    @property
    def client(self) -> MotorClientAdapter:
        """The adapted client."""
        return self._client

    @property
    def name(self) -> str:
        """The database name."""
        return str(self._motor.name)

    def get_collection(self, name: str, **options: Any) -> MotorCollectionAdapter:
        """A collection by name."""
        return MotorCollectionAdapter(self, self._motor.get_collection(name, **options))

    def with_options(self, **options: Any) -> MotorDatabaseAdapter:
        """The same database with other read/write options."""
        return MotorDatabaseAdapter(self._client, self._motor.with_options(**options))

    async def create_collection(self, name: str, **kwargs: Any) -> MotorCollectionAdapter:
        """Create a collection and return it."""
        return MotorCollectionAdapter(self, await self._motor.create_collection(name, **kwargs))

    async def drop_collection(self, name_or_collection: Any, *args: Any, **kwargs: Any) -> Any:
        """Drop a collection by name or object."""
        return await self._motor.drop_collection(_unwrapped(name_or_collection), *args, **kwargs)

    async def validate_collection(self, name_or_collection: Any, *args: Any, **kwargs: Any) -> Any:
        """Validate a collection by name or object."""
        target = _unwrapped(name_or_collection)
        return await self._motor.validate_collection(target, *args, **kwargs)

    async def list_collections(self, *args: Any, **kwargs: Any) -> MotorCommandCursorAdapter:
        """A cursor over the collection documents."""
        cursor = await self._motor.list_collections(*args, **kwargs)
        return MotorCommandCursorAdapter(cursor, self.get_collection("$cmd"))

    async def aggregate(self, pipeline: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a database-level pipeline; the command is sent before the cursor is returned."""
        return await started(
            self._motor.aggregate(pipeline, *args, **kwargs), self.get_collection("$cmd")
        )

    async def cursor_command(self, *args: Any, **kwargs: Any) -> MotorCommandCursorAdapter:
        """Run a command that returns a cursor."""
        cursor = await self._motor.cursor_command(*args, **kwargs)
        return MotorCommandCursorAdapter(cursor, self.get_collection("$cmd"))

    async def watch(self, *args: Any, **kwargs: Any) -> Any:
        """Motor's change stream on this database (it opens on its first read)."""
        return self._motor.watch(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(
                f"Database has no attribute {name!r}. To access the {name} collection, "
                f"use database[{name!r}]."
            )
        value = getattr(self._motor, name)
        if _is_motor(value, "AgnosticCollection"):
            return MotorCollectionAdapter(self, value)  # pymongo's database.<name>
        return value

    def __getitem__(self, name: str) -> MotorCollectionAdapter:
        return self.get_collection(name)


class MotorClientAdapter(_Adapter, AsyncClosing):
    """pymongo's ``AsyncMongoClient`` API over a Motor client.

    ``await adapter.close()`` closes the Motor client, as ``AsyncMongoClient.close`` closes
    pymongo's.
    """

    def get_database(self, name: str | None = None, **options: Any) -> MotorDatabaseAdapter:
        """A database by name (the URI's default database when ``name`` is ``None``)."""
        return MotorDatabaseAdapter(self, self._motor.get_database(name, **options))

    def get_default_database(
        self, default: str | None = None, **options: Any
    ) -> MotorDatabaseAdapter:
        """The database named in the connection string, else ``default``."""
        return MotorDatabaseAdapter(self, self._motor.get_default_database(default, **options))

    def append_metadata(self, driver_info: DriverInfo) -> None:
        """Add a library's driver metadata to the handshake, on pymongo 4.14+ underneath."""
        # Looked up on the class: pymongo's client answers unknown attribute names with a
        # (callable) database, as Motor's does.
        append = getattr(type(self._motor.delegate), "append_metadata", None)
        if append is not None:
            append(self._motor.delegate, driver_info)

    async def drop_database(self, name_or_database: Any, *args: Any, **kwargs: Any) -> None:
        """Drop a database by name or object."""
        await self._motor.drop_database(_unwrapped(name_or_database), *args, **kwargs)

    async def list_databases(self, *args: Any, **kwargs: Any) -> MotorCommandCursorAdapter:
        """A cursor over the database documents."""
        cursor = await self._motor.list_databases(*args, **kwargs)
        return MotorCommandCursorAdapter(cursor, self.get_database("admin").get_collection("$cmd"))

    async def watch(self, *args: Any, **kwargs: Any) -> Any:
        """Motor's change stream on the whole deployment (it opens on its first read)."""
        return self._motor.watch(*args, **kwargs)

    async def close(self) -> None:
        """Close the Motor client (awaited, as pymongo's async ``close`` is)."""
        self._motor.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(self._motor, name)
        if is_motor_database(value):
            return MotorDatabaseAdapter(self, value)  # pymongo's client.<name>
        return value

    def __getitem__(self, name: str) -> MotorDatabaseAdapter:
        return self.get_database(name)
