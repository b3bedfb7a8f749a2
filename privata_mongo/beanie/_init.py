"""``init_beanie`` with Beanie's signature, handing Beanie a privata proxy database.

Beanie's own initializer runs unchanged; it receives an ``AsyncProxyDatabase`` around the
application's database (pymongo's ``AsyncDatabase``, the embedded backend, or Motor through its
adapter), so every collection Beanie uses is split when its model holds identity data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import beanie
from beanie.odm.utils.init import Initializer
from pymongo import AsyncMongoClient

from privata_mongo.adapters.motor import adapt_motor_database, is_motor_database
from privata_mongo.beanie._describe import REGISTRY
from privata_mongo.beanie._redact import install as install_redaction
from privata_mongo.proxy.aio_database import AsyncProxyClient, AsyncProxyDatabase
from privata_mongo.runtime import build_runtime

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

    from privata_mongo.embedded import AsyncMockDatabase

__all__ = ["embedded_database", "init_beanie", "proxy_database"]


def embedded_database(name: str) -> AsyncMockDatabase:
    """An in-process database (mongomock behind pymongo's async API), for demos and tests.

    Pass it to ``init_beanie(database=...)``; no server is needed. The embedded backend is
    imported here, not with this module, so that the facade works without mongomock.

    Raises:
        ConfigurationError: mongomock (the ``mock`` extra) is not installed; the message says
            ``pip install "privata-mongo[mock]"``.
    """
    from privata_mongo.embedded import embedded_database as embedded

    return embedded(name)


def proxy_database(database: Any) -> AsyncProxyDatabase:
    """The privata proxy around an async database (idempotent).

    A Motor database is first given pymongo's async API (``privata_mongo.adapters.motor``):
    Beanie 2 and the proxy call that API, and Motor differs from it in a few calls.
    """
    if isinstance(database, AsyncProxyDatabase):
        return database
    if is_motor_database(database):
        database = adapt_motor_database(database)
    runtime = build_runtime(database.client, asynchronous=True, check=True)
    client = AsyncProxyClient(database.client, REGISTRY, runtime)
    proxied: AsyncProxyDatabase = client[database.name]
    return proxied


async def init_beanie(
    database: Any = None,
    connection_string: str | None = None,
    document_models: Sequence[Any] | None = None,
    allow_index_dropping: bool = False,
    recreate_views: bool = False,
    skip_indexes: bool = False,
) -> None:
    """Beanie's ``init_beanie``; the database Beanie keeps is a privata proxy.

    Raises:
        ValueError: as Beanie does, for a missing or doubled database/connection string, or
            missing document models.
    """
    if (connection_string is None) == (database is None):
        raise ValueError("connection_string parameter or database parameter must be set")
    if document_models is None:
        raise ValueError("document_models parameter must be set")
    if connection_string is not None:
        database = AsyncMongoClient(connection_string).get_default_database()
    models = [Initializer.get_model(m) if isinstance(m, str) else m for m in document_models]
    REGISTRY.add(models)
    # The proxy has AsyncDatabase's API; Beanie's annotation names the concrete class.
    proxied = cast("AsyncDatabase[Any]", proxy_database(database))
    await beanie.init_beanie(
        database=proxied,
        document_models=models,
        allow_index_dropping=allow_index_dropping,
        recreate_views=recreate_views,
        skip_indexes=skip_indexes,
    )
    install_redaction(models)
