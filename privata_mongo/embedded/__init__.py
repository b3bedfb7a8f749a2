"""The embedded backend: pymongo 4's async API over mongomock, in process, with no server.

A backend, not one of privata's adapters: it stands where a MongoDB server would, for tests,
examples and demos. Beanie 2 and privata's ``AsyncPymongoStore`` talk to pymongo's async API, and
upstream has no in-process stand-in for it (mongomock is synchronous, mongomock-motor targets
Motor). The classes here mirror pymongo's -- ``AsyncMockClient`` ``AsyncMongoClient``,
``AsyncMockDatabase`` ``AsyncDatabase``, ``AsyncMockCollection`` ``AsyncCollection``,
``AsyncMockCursor`` ``AsyncCursor``, ``AsyncMockCommandCursor`` ``AsyncCommandCursor`` -- with the
same methods, signatures, return types (pymongo's result classes) and errors (pymongo's error
classes, raised by mongomock itself), so Beanie runs unmodified on an in-memory store. mongomock
is in-process, so each coroutine calls it directly: no threads.

The fidelity is mongomock's: what it cannot do (sessions, views, change streams, ``let``) raises
``NotImplementedError`` rather than answering wrongly. ``embedded_database(name)`` is the one-line
entry point (``privata_mongo.beanie.embedded_database`` is the same, for applications)::

    await init_beanie(database=embedded_database("app"), document_models=[Patient])

mongomock comes with the optional ``mock`` extra. Without it this package does not import (a
``ConfigurationError`` names the extra to install); nothing else in privata imports it before
``embedded_database()`` is called, so the facades work without mongomock.
"""

from __future__ import annotations

from privata_mongo.embedded._client import AsyncMockClient, embedded_database
from privata_mongo.embedded._collection import AsyncMockCollection
from privata_mongo.embedded._cursor import AsyncMockCommandCursor, AsyncMockCursor
from privata_mongo.embedded._database import AsyncMockDatabase

__all__ = [
    "AsyncMockClient",
    "AsyncMockCollection",
    "AsyncMockCommandCursor",
    "AsyncMockCursor",
    "AsyncMockDatabase",
    "embedded_database",
]
