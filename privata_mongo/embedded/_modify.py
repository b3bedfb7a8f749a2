"""Internal. The ``find_one_and_*`` methods of ``AsyncMockCollection``, over mongomock's own.

mongomock's versions take pymongo's arguments but silently ignore ``array_filters``, ``let`` and
``collation``; here those raise ``NotImplementedError`` instead of answering wrongly, and
pymongo's projection and sort forms are normalised before mongomock sees them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from privata_mongo.embedded._cursor import (
    Document,
    SortSpec,
    UpdateSpec,
    no_session,
    projection_document,
    sort_list,
    unsupported,
)

__all__ = ["FindAndModify"]


class FindAndModify:
    """``find_one_and_update``, ``find_one_and_replace``, ``find_one_and_delete``."""

    _inner: Any

    async def find_one_and_update(
        self,
        filter: Mapping[str, Any],
        update: UpdateSpec,
        projection: Mapping[str, Any] | Iterable[str] | None = None,
        sort: SortSpec | None = None,
        upsert: bool = False,
        return_document: bool = False,
        array_filters: Sequence[Mapping[str, Any]] | None = None,
        hint: Any = None,
        session: Any = None,
        let: Mapping[str, Any] | None = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> Document | None:
        """Update the first match; the document before or after (``return_document``)."""
        no_session(session)
        unsupported("array_filters", array_filters)
        unsupported("let", let)
        unsupported("collation", kwargs.pop("collation", None))
        found: Document | None = self._inner.find_one_and_update(
            filter,
            update,
            projection=projection_document(projection),
            sort=sort_list(sort) if sort else None,
            upsert=upsert,
            return_document=return_document,
        )
        return found

    async def find_one_and_replace(
        self,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        projection: Mapping[str, Any] | Iterable[str] | None = None,
        sort: SortSpec | None = None,
        upsert: bool = False,
        return_document: bool = False,
        hint: Any = None,
        session: Any = None,
        let: Mapping[str, Any] | None = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> Document | None:
        """Replace the first match; the document before or after (``return_document``)."""
        no_session(session)
        unsupported("let", let)
        unsupported("collation", kwargs.pop("collation", None))
        found: Document | None = self._inner.find_one_and_replace(
            filter,
            replacement,
            projection=projection_document(projection),
            sort=sort_list(sort) if sort else None,
            upsert=upsert,
            return_document=return_document,
        )
        return found

    async def find_one_and_delete(
        self,
        filter: Mapping[str, Any],
        projection: Mapping[str, Any] | Iterable[str] | None = None,
        sort: SortSpec | None = None,
        hint: Any = None,
        session: Any = None,
        let: Mapping[str, Any] | None = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> Document | None:
        """Delete the first match and return it."""
        no_session(session)
        unsupported("let", let)
        unsupported("collation", kwargs.pop("collation", None))
        found: Document | None = self._inner.find_one_and_delete(
            filter,
            projection=projection_document(projection),
            sort=sort_list(sort) if sort else None,
        )
        return found
