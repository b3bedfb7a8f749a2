"""pymongo's ``Collection`` over a split collection, run synchronously.

Every method is planned once, with pymongo's own signature, in ``_planner.Planner``, and listed
once in ``SplitCollectionBase``; this shell only runs a plan with the sync driver, answering
with pymongo's result and error types. Its async twin (``aio_collection``) is the same shell,
awaited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from privata_mongo.core.ops import Document, Flow, Query
from privata_mongo.drivers.sync import run, stream
from privata_mongo.proxy._collection_base import SplitCollectionBase
from privata_mongo.proxy._planner import Planned
from privata_mongo.proxy._write_stages import ends_in_write, write_stage
from privata_mongo.proxy.cursor import ProxyCommandCursor, ProxyCursor, batches_of
from privata_mongo.proxy.errors import native_errors

__all__ = ["PrivateCollection"]

R = TypeVar("R")


class PrivateCollection(SplitCollectionBase):
    """A logical collection stored as an identity and a clinical collection."""

    def _run(self, plan: Callable[..., Planned[R]], /, *args: Any, **kwargs: Any) -> R:
        return self._call(plan(self._plans, *args, **kwargs))

    def _call(self, planned: Planned[R]) -> R:
        if planned.link and not self._linked():
            self._call(self._plans.ensure_link())
            self._link_done()
        with native_errors(planned.single, planned.documents, self._terse):
            result = planned.finish(run(planned.flow, self._binding))
        self._unlinked(planned)
        return result

    def _stream(self, flow: Flow[None]) -> Iterator[tuple[Document, ...]]:
        with native_errors(terse=self._terse):
            yield from stream(flow, self._binding)

    def _stream_find(self, query: Query) -> Iterator[tuple[Document, ...]]:
        return self._stream(self._plans.find(query))

    def _explain(self, query: Query) -> Document:
        return self._call(self._plans.explain(query))

    def _read_peer(self, collection: str, filter: Mapping[str, Any]) -> list[Document]:
        return list(self._database[collection].find(filter))

    def find(self, *args: Any, **kwargs: Any) -> ProxyCursor:
        """A cursor over the logical documents matching ``filter``."""
        return ProxyCursor(self, *args, **kwargs)

    def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> Document | None:
        """The first matching document, or ``None``."""
        args, kwargs = self._one(filter, args, kwargs)
        return next(self.find(*args, **kwargs), None)

    def aggregate(self, pipeline: Any, *args: Any, **kwargs: Any) -> ProxyCommandCursor:
        """Run an aggregation pipeline with native results (``$out``: ``_write_stages``)."""
        stage = write_stage(self._database, self.schema, pipeline)
        if stage is not None:
            documents = self.aggregate(stage.read, *args, **kwargs)
            return self._database.write_out(stage, documents)  # type: ignore[no-any-return]
        flow = self._plans.aggregate(pipeline, *args, **kwargs)
        cursor = ProxyCommandCursor(self, self._stream(flow))
        if ends_in_write(pipeline):  # run now, as pymongo does: the write is the point
            return ProxyCommandCursor(self, batches_of(list(cursor)))
        return cursor

    def list_indexes(self, session: Any = None, comment: Any = None) -> ProxyCommandCursor:
        """Index documents of both halves, as one collection would list them."""
        documents = self._call(self._plans.list_indexes(session, comment))
        return ProxyCommandCursor(self, batches_of(documents))
