"""Internal. pymongo's find-and-modify methods as flows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pymongo import ReturnDocument

from privata_mongo.core.flows import modify
from privata_mongo.core.ops import Document
from privata_mongo.core.rights.restriction import refuse_marker

from ._base import (
    Planned,
    PlannerBase,
    _projection,
    _same,
    _sort,
    passed,
)

__all__ = ["FindAndModify"]

# What the find-and-modify flows consume themselves; every other argument is passed through.
_TAKEN = ("filter", "projection", "sort", "upsert", "return_document")

R = TypeVar("R")


class FindAndModify(PlannerBase):
    """pymongo's find-and-modify methods as flows."""

    def find_one_and_update(
        self,
        /,
        filter: Mapping[str, Any],
        update: Any,
        projection: Any = None,
        sort: Any = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        array_filters: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> Planned[Document | None]:
        """``find_one_and_update``: the document as it was (or is, ``ReturnDocument.AFTER``)."""
        options = passed(locals(), *_TAKEN, "update")
        ctx = self.context(write=True)
        refuse_marker(ctx.schema.model, update)
        order, shown, new = _sort(sort), _projection(projection), bool(return_document)
        flow = self._audited(
            ctx,
            "update",
            lambda c: modify.find_one_and_update(
                c, filter, update, order, upsert, new, shown, options
            ),
            filter,
            update,
        )
        return Planned(flow, _same, link=upsert)

    def find_one_and_replace(
        self,
        /,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        projection: Any = None,
        sort: Any = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> Planned[Document | None]:
        """``find_one_and_replace``, keeping the pseudonym; the document before or after."""
        options = passed(locals(), *_TAKEN, "replacement")
        ctx = self.context(write=True)
        refuse_marker(ctx.schema.model, replacement)
        order, shown, new = _sort(sort), _projection(projection), bool(return_document)
        flow = self._audited(
            ctx,
            "update",
            lambda c: modify.find_one_and_replace(
                c, filter, replacement, order, upsert, new, shown, options
            ),
            filter,
            replacement,
        )
        return Planned(flow, _same, link=upsert)

    def find_one_and_delete(
        self,
        /,
        filter: Mapping[str, Any],
        projection: Any = None,
        sort: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> Planned[Document | None]:
        """``find_one_and_delete``: the document as it was."""
        options = passed(locals(), *_TAKEN)
        ctx = self.context(write=True)
        order, shown = _sort(sort), _projection(projection)
        flow = self._audited(
            ctx,
            "delete",
            lambda c: modify.find_one_and_delete(c, filter, order, shown, options),
            filter,
        )
        return Planned(flow, _same)
