"""The async twins of ``database`` and ``client``: pymongo's ``AsyncDatabase``/``AsyncMongoClient``.

Collections are handed out by the shared ``DatabaseBase`` (split ones as
``AsyncPrivateCollection``); only the methods pymongo awaits differ from the sync twins.
``AsyncProxyClient`` wraps pymongo's ``AsyncMongoClient``, Motor (through its pymongo-shaped
API) or the embedded async adapter alike.
"""

from __future__ import annotations

from typing import Any

from bson.dbref import DBRef

from privata_mongo.proxy.aio_collection import AsyncPrivateCollection
from privata_mongo.proxy.client import ClientBase
from privata_mongo.proxy.database import DatabaseBase

__all__ = ["AsyncProxyClient", "AsyncProxyDatabase"]


class AsyncProxyDatabase(DatabaseBase):
    """pymongo's ``AsyncDatabase`` API over a real async database."""

    split_collection = AsyncPrivateCollection

    async def list_collection_names(self, *args: Any, **kwargs: Any) -> list[str]:
        """Collection names, without the identity halves of split collections."""
        return self._visible(list(await self._inner.list_collection_names(*args, **kwargs)))

    async def create_collection(self, name: str, **kwargs: Any) -> Any:
        """Create a collection (the clinical half when split) and return it."""
        await self._inner.create_collection(name, **kwargs)
        return self.get_collection(name)

    async def drop_collection(self, name_or_collection: Any, *args: Any, **kwargs: Any) -> Any:
        """Drop a collection, both halves when split."""
        result = None
        halves = self._halves(name_or_collection)
        for name in halves:
            result = await self._inner.drop_collection(name, *args, **kwargs)
        self._client.runtime.indexes.forget(self.name, halves[-1])
        return result

    async def dereference(self, dbref: DBRef, **kwargs: Any) -> Any:
        """The document a ``DBRef`` points to, joined like any other read."""
        ref = self._checked(dbref)
        return await self[ref.collection].find_one({"_id": ref.id}, **kwargs)


class AsyncProxyClient(ClientBase):
    """pymongo's ``AsyncMongoClient`` API over a real async client."""

    database_class = AsyncProxyDatabase
    asynchronous = True

    async def drop_database(self, name_or_database: Any, *args: Any, **kwargs: Any) -> None:
        """Drop a database (both halves of every split collection go with it)."""
        if isinstance(name_or_database, DatabaseBase):
            name_or_database = name_or_database.name
        await self._inner.drop_database(name_or_database, *args, **kwargs)
        self._runtime.indexes.forget(str(getattr(name_or_database, "name", name_or_database)))

    async def close(self) -> None:
        """Close the real client."""
        await self._inner.close()

    async def __aenter__(self) -> AsyncProxyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
