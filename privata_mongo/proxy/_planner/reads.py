"""Internal. pymongo's reading methods as flows: find, explain, aggregate, counts, distinct."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from privata_mongo.core.flows import aggregate, read
from privata_mongo.core.flows.common import resolve
from privata_mongo.core.flows.options import with_operation_options
from privata_mongo.core.ops import Document, Explain, Flow, Query
from privata_mongo.core.routing import plan_filter
from privata_mongo.core.schema import Side

from ._base import (
    Planned,
    PlannerBase,
    _same,
    passed,
)

__all__ = ["Reads"]

R = TypeVar("R")


class Reads(PlannerBase):
    """pymongo's reading methods as flows: find, explain, aggregate, counts, distinct."""

    def find(self, query: Query) -> Flow[None]:
        """The streaming flow of a cursor."""
        ctx = self.context()
        flow = self._audited(
            ctx, "read", lambda c: read.find(c, query), query.filter, dict(query.sort)
        )
        return with_operation_options(flow, query.options)

    def explain(self, query: Query) -> Planned[Document]:
        """The server's plan for the clinical part of a find."""
        ctx = self.context()

        def flow() -> Flow[Document]:
            clinical = yield from resolve(ctx, plan_filter(ctx.schema, query.filter))
            plan = yield from Explain(Side.CLINICAL, Query(clinical, sort=query.sort))
            return plan

        return Planned(flow(), _same)

    def aggregate(
        self,
        /,
        pipeline: Sequence[Mapping[str, Any]],
        session: Any = None,
        let: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> Flow[None]:
        """The streaming flow of an aggregation (split collections it joins are read joined)."""
        options = passed(locals(), "pipeline")
        ctx = self.context()
        options.pop("cursor", None)  # pymongo accepts and ignores the legacy cursor={} option
        stages, split = self._joins(pipeline)
        flow = self._audited(
            ctx, "aggregate", lambda c: aggregate.aggregate(c, stages, options, split), stages
        )
        return with_operation_options(flow, options)

    def count_documents(
        self, /, filter: Mapping[str, Any], session: Any = None, comment: Any = None, **kwargs: Any
    ) -> Planned[int]:
        """``count_documents``."""
        options = passed(locals(), "filter")
        ctx = self.context()
        flow = self._audited(ctx, "count", lambda c: read.count(c, filter, options), filter)
        return Planned(flow, int)

    def estimated_document_count(self, /, comment: Any = None, **kwargs: Any) -> Planned[int]:
        """``estimated_document_count``."""
        options = passed(locals())
        ctx = self.context()
        flow = self._audited(ctx, "count", lambda c: read.estimated_count(c, options))
        return Planned(flow, int)

    def distinct(
        self,
        /,
        key: str,
        filter: Mapping[str, Any] | None = None,
        session: Any = None,
        comment: Any = None,
        hint: Any = None,
        **kwargs: Any,
    ) -> Planned[list[Any]]:
        """``distinct``."""
        options = passed(locals(), "key", "filter")
        ctx = self.context()
        flow = self._audited(
            ctx, "distinct", lambda c: read.distinct(c, key, filter, options), filter, {key: 1}
        )
        return Planned(flow, list)
