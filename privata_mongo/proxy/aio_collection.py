"""pymongo's ``AsyncCollection`` over a split collection: the twin of ``collection``, awaited.

Every method is planned once in ``_planner.Planner`` and listed once in ``SplitCollectionBase``;
this shell runs a plan with the async driver. Read it side by side with ``collection``: only
``await`` differs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

from privata_mongo.core.ops import Document, Flow, Query
from privata_mongo.drivers.aio import run, stream
from privata_mongo.proxy._collection_base import SplitCollectionBase
from privata_mongo.proxy._planner import Planned
from privata_mongo.proxy._write_stages import ends_in_write, write_stage
from privata_mongo.proxy.aio_cursor import AsyncProxyCommandCursor, AsyncProxyCursor, batches_of
from privata_mongo.proxy.errors import native_errors

__all__ = ["AsyncPrivateCollection"]

R = TypeVar("R")


class AsyncPrivateCollection(SplitCollectionBase):
    """A logical collection stored as an identity and a clinical collection, awaited."""

    async def _run(self, plan: Callable[..., Planned[R]], /, *args: Any, **kwargs: Any) -> R:
        return await self._call(plan(self._plans, *args, **kwargs))

    async def _call(self, planned: Planned[R]) -> R:
        if planned.link and not self._linked():
            await self._call(self._plans.ensure_link())
            self._link_done()
        with native_errors(planned.single, planned.documents, self._terse):
            result = planned.finish(await run(planned.flow, self._binding))
        self._unlinked(planned)
        return result

    async def _stream(self, flow: Flow[None]) -> AsyncIterator[tuple[Document, ...]]:
        with native_errors(terse=self._terse):
            async for batch in stream(flow, self._binding):
                yield batch

    def _stream_find(self, query: Query) -> AsyncIterator[tuple[Document, ...]]:
        return self._stream(self._plans.find(query))

    async def _explain(self, query: Query) -> Document:
        return await self._call(self._plans.explain(query))

    async def _read_peer(self, collection: str, filter: Mapping[str, Any]) -> list[Document]:
        documents: list[Document] = await self._database[collection].find(filter).to_list()
        return documents

    def find(self, *args: Any, **kwargs: Any) -> AsyncProxyCursor:
        """A cursor over the logical documents matching ``filter``."""
        return AsyncProxyCursor(self, *args, **kwargs)

    async def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> Document | None:
        """The first matching document, or ``None``."""
        args, kwargs = self._one(filter, args, kwargs)
        return await anext(self.find(*args, **kwargs), None)

    async def aggregate(self, pipeline: Any, *args: Any, **kwargs: Any) -> AsyncProxyCommandCursor:
        """Run an aggregation pipeline with native results (``$out``: ``_write_stages``)."""
        stage = write_stage(self._database, self.schema, pipeline)
        if stage is not None:
            documents = await self.aggregate(stage.read, *args, **kwargs)
            return await self._database.write_out(stage, documents)  # type: ignore[no-any-return]
        flow = self._plans.aggregate(pipeline, *args, **kwargs)
        cursor = AsyncProxyCommandCursor(self, self._stream(flow))
        if ends_in_write(pipeline):  # run now, as pymongo does: the write is the point
            return AsyncProxyCommandCursor(self, batches_of(await cursor.to_list()))
        return cursor

    async def list_indexes(
        self, session: Any = None, comment: Any = None
    ) -> AsyncProxyCommandCursor:
        """Index documents of both halves, as one collection would list them."""
        documents = await self._call(self._plans.list_indexes(session, comment))
        return AsyncProxyCommandCursor(self, batches_of(documents))
