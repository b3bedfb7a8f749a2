"""The async twins of ``database`` and ``client``: pymongo's ``AsyncDatabase``/``AsyncMongoClient``.

Collections are handed out by the shared ``DatabaseBase`` (split ones as
``AsyncPrivateCollection``); only the methods pymongo awaits differ from the sync twins.
``AsyncProxyClient`` wraps pymongo's ``AsyncMongoClient``, Motor (through its pymongo-shaped
API) or the embedded async adapter alike.
"""

from __future__ import annotations

import inspect
from typing import Any

from bson.dbref import DBRef
from pymongo.errors import BulkWriteError, OperationFailure

from privata_mongo.proxy._commands import Call, refuse_split_pipeline
from privata_mongo.proxy._protected import refuse, refuse_database, refuse_pipeline
from privata_mongo.proxy._write_stages import BATCH, WriteStage, stage_failure
from privata_mongo.proxy.aio_collection import AsyncPrivateCollection
from privata_mongo.proxy.aio_cursor import AsyncProxyCommandCursor, batches_of
from privata_mongo.proxy.client import ClientBase
from privata_mongo.proxy.database import CommandRequest, DatabaseBase

__all__ = ["AsyncProxyClient", "AsyncProxyDatabase"]


class AsyncProxyDatabase(DatabaseBase):
    """pymongo's ``AsyncDatabase`` API over a real async database."""

    split_collection = AsyncPrivateCollection

    async def command(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """``command``, as pymongo's: on a split collection, run through the split (``_commands``).

        Commands on other collections and admin commands reach the server unchanged.
        """
        request = self._command("command", args, kwargs)
        if request.call is None:
            return dict(await self._inner.command(*args, **kwargs))
        return await self._run_command(request, request.call)

    async def cursor_command(self, *args: Any, **kwargs: Any) -> Any:
        """``cursor_command``: a ``find`` or ``aggregate`` of a split collection, joined."""
        request = self._command("cursor_command", args, kwargs)
        if request.call is None:
            return await self._inner.cursor_command(*args, **kwargs)
        call = self._cursor_call(request.call)
        call_args, call_kwargs = request.arguments(call)
        result = getattr(self[call.collection], call.method)(*call_args, **call_kwargs)
        return await result if inspect.isawaitable(result) else result

    async def aggregate(self, pipeline: Any, *args: Any, **kwargs: Any) -> Any:
        """A database-level aggregation; one reading or writing a split collection is refused."""
        refuse_split_pipeline(self, pipeline, "Database.aggregate")
        refuse_pipeline(self, pipeline, "Database.aggregate")
        return await self._inner.aggregate(pipeline, *args, **kwargs)

    async def write_out(self, stage: WriteStage, documents: Any) -> Any:
        """Write a pipeline's documents as its ``$out``/``$merge`` would (``_write_stages``).

        ``documents``: an async cursor, or an awaitable of one. Returns the empty cursor
        ``aggregate`` returns for such a pipeline.
        """
        target = self._stage_target(stage)
        if inspect.isawaitable(documents):
            documents = await documents
        try:
            if stage.replace:
                await target.delete_many({})
            batch: list[Any] = []
            async for document in documents:
                batch.append(document)
                if len(batch) == BATCH:
                    await self._write_batch(target, stage, batch)
                    batch = []
            await self._write_batch(target, stage, batch)
        except BulkWriteError as exc:
            raise stage_failure(exc) from None
        return AsyncProxyCommandCursor(target, batches_of([]))

    @staticmethod
    async def _write_batch(target: Any, stage: WriteStage, batch: list[Any]) -> None:
        requests = stage.requests(batch)
        if requests:
            await target.bulk_write(requests, ordered=True)

    async def _run_command(self, request: CommandRequest, call: Call) -> dict[str, Any]:
        call_args, call_kwargs = request.arguments(call)
        try:
            result = getattr(self[call.collection], call.method)(*call_args, **call_kwargs)
            if inspect.isawaitable(result):
                result = await result
            if call.cursor:
                result = await result.to_list(None)
        except BulkWriteError as exc:
            return call.failed(exc)
        except OperationFailure as exc:
            return request.failed(exc)
        return call.reply(result)

    async def list_collection_names(self, *args: Any, **kwargs: Any) -> list[str]:
        """Collection names, without the identity halves of split collections."""
        return self._visible(list(await self._inner.list_collection_names(*args, **kwargs)))

    async def create_collection(self, name: str, **kwargs: Any) -> Any:
        """Create a collection (the clinical half when split) and return it."""
        refuse(self, name, "create_collection")
        await self._inner.create_collection(name, **kwargs)
        return self.get_collection(name)

    async def drop_collection(self, name_or_collection: Any, *args: Any, **kwargs: Any) -> Any:
        """Drop a collection, both halves when split."""
        result = None
        halves = self._halves(name_or_collection)
        for name in halves:
            refuse(self, name, "drop_collection")
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
        refuse_database(self[str(getattr(name_or_database, "name", name_or_database))], "drop")
        await self._inner.drop_database(name_or_database, *args, **kwargs)
        self._runtime.indexes.forget(str(getattr(name_or_database, "name", name_or_database)))

    async def close(self) -> None:
        """Close the real client."""
        await self._inner.close()

    async def __aenter__(self) -> AsyncProxyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
