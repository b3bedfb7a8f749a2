"""Internal. pymongo's index and collection methods as flows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from privata_mongo.core.flows import admin
from privata_mongo.core.ops import Document, Flow
from privata_mongo.proxy._cursor_spec import index_list

from ._base import (
    Planned,
    PlannerBase,
    _same,
    list_index_documents,
    passed,
)

__all__ = ["Admin"]

R = TypeVar("R")


class Admin(PlannerBase):
    """pymongo's index and collection methods as flows."""

    def ensure_link(self) -> Planned[None]:
        """The clinical collection's internal index on the pseudonym link."""
        return Planned(admin.ensure_link_index(self.context()), _same)

    def create_index(
        self, /, keys: Any, session: Any = None, comment: Any = None, **kwargs: Any
    ) -> Planned[str]:
        """Create an index on the side that stores its fields."""
        options = passed(locals(), "keys")
        flow = admin.create_index(self.context(), tuple(index_list(keys)), options)
        return Planned(flow, str, link=True)

    def create_indexes(
        self, /, indexes: Sequence[Any], session: Any = None, comment: Any = None, **kwargs: Any
    ) -> Planned[list[str]]:
        """Create several ``IndexModel`` indexes, each on the side that stores its fields."""
        common = passed(locals(), "indexes")
        ctx = self.context()

        def flow() -> Flow[list[str]]:
            names = []
            for model in indexes:
                document = dict(model.document)
                keys = tuple(document.pop("key").items())
                names.append((yield from admin.create_index(ctx, keys, {**document, **common})))
            return names

        return Planned(flow(), list, link=True)

    def index_information(
        self, session: Any = None, comment: Any = None
    ) -> Planned[dict[str, Any]]:
        """Indexes of both halves by name, as one collection would list them."""
        options = passed(locals())
        return Planned(admin.index_information(self.context(), options), dict)

    def list_indexes(self, session: Any = None, comment: Any = None) -> Planned[list[Document]]:
        """Index documents of both halves, as one collection would list them."""
        options = passed(locals())
        return Planned(admin.index_information(self.context(), options), list_index_documents)

    def drop_index(
        self, /, index_or_name: Any, session: Any = None, comment: Any = None, **kwargs: Any
    ) -> Planned[None]:
        """Drop an index by name or keys."""
        options = passed(locals(), "index_or_name")
        if isinstance(index_or_name, str):
            name = index_or_name
        else:
            name = admin.index_name(tuple(index_list(index_or_name)))
        return Planned(admin.drop_index(self.context(), name, options), _same)

    def drop_indexes(
        self, /, session: Any = None, comment: Any = None, **kwargs: Any
    ) -> Planned[None]:
        """Drop every application index of both halves."""
        options = passed(locals())
        return Planned(admin.drop_indexes(self.context(), options), _same)

    def drop(
        self, session: Any = None, comment: Any = None, encrypted_fields: Any = None
    ) -> Planned[None]:
        """Drop both halves (identity first)."""
        options = passed(locals())
        return Planned(admin.drop(self.context(), options), _same, unlink=True)
