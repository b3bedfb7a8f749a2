"""Internal. The index methods of ``AsyncMockCollection``.

Indexes are created one ``IndexModel`` at a time because mongomock's own ``create_indexes``
drops options such as ``partialFilterExpression``; creating an index creates the collection, as
on a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.operations import IndexModel

from privata_mongo.embedded._cursor import AsyncMockCommandCursor
from privata_mongo.embedded._forward import COLLECTION, forward, no_session

__all__ = ["Indexes"]


class Indexes:
    """``create_index(es)``, ``drop_index(es)``, ``index_information``, ``list_indexes``."""

    _inner: Any

    async def create_index(
        self, keys: Any, session: Any = None, comment: Any = None, **kwargs: Any
    ) -> str:
        """Create an index (pymongo's key forms and options); returns its name."""
        kwargs.pop("maxTimeMS", None)
        no_session(session)
        return self._create(IndexModel(keys, **kwargs))

    async def create_indexes(
        self,
        indexes: Sequence[IndexModel],
        session: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> list[str]:
        """Create several indexes; returns their names."""
        no_session(session)
        for index in indexes:
            if not isinstance(index, IndexModel):
                raise TypeError(f"{index!r} is not an instance of pymongo.operations.IndexModel")
        return [self._create(index) for index in indexes]

    def _create(self, index: IndexModel) -> str:
        # As on a server, creating an index creates the collection (mongomock would otherwise
        # forget an empty collection once its last index is dropped). mongomock's own
        # create_indexes drops options such as partialFilterExpression: pass them one by one.
        database = self._inner.database
        if self._inner.name not in database.list_collection_names():
            database.create_collection(self._inner.name)
        options = dict(index.document)
        keys = list(options.pop("key").items())
        return str(self._inner.create_index(keys, **options))

    async def drop_index(
        self, index_or_name: Any, session: Any = None, comment: Any = None, **kwargs: Any
    ) -> None:
        """Drop one index by name or key list; ``"*"`` drops all but ``_id_``."""
        no_session(session)
        if index_or_name == "*":
            self._inner.drop_indexes()
        elif not isinstance(index_or_name, (str, list)):
            raise TypeError("index_or_name must be an instance of str or list")
        else:
            self._inner.drop_index(index_or_name)

    drop_indexes = forward(COLLECTION.drop_indexes)
    index_information = forward(COLLECTION.index_information)

    async def list_indexes(
        self, session: Any = None, comment: Any = None
    ) -> AsyncMockCommandCursor:
        """A cursor over the index documents."""
        no_session(session)
        return AsyncMockCommandCursor(self._inner.list_indexes())
