"""Internal. pymongo's writing methods as flows: inserts, updates, replacements, deletes, bulks."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any, TypeVar

from pymongo.errors import InvalidOperation
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)

from privata_mongo.core.flows import bulk, write
from privata_mongo.core.ops import UpdateOutcome
from privata_mongo.core.rights.restriction import refuse_marker
from privata_mongo.core.schema import Side
from privata_mongo.proxy.errors import bulk_counts, check_sent

from ._base import (
    Planned,
    PlannerBase,
    _BulkRecorder,
    _sort,
    passed,
)

__all__ = ["Writes"]

R = TypeVar("R")


class Writes(PlannerBase):
    """pymongo's writing methods as flows: inserts, updates, replacements, deletes, bulks."""

    def insert_one(
        self,
        document: Any,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
    ) -> Planned[InsertOneResult]:
        """``insert_one``; like pymongo, an ``_id`` is added to the caller's mapping."""
        if not isinstance(document, MutableMapping):
            raise TypeError(
                "document must be an instance of dict, bson.son.SON, "
                "bson.raw_bson.RawBSONDocument, or a type that inherits from "
                "collections.MutableMapping"
            )
        options = passed(locals(), "document")
        ctx = self.context()
        if "_id" not in document:
            document["_id"] = ctx.new_object_id()
        check_sent(document, "insert")
        flow = self._audited(
            ctx, "create", lambda c: write.insert(c, [document], True, options), dict(document)
        )
        return Planned(
            flow, lambda _: InsertOneResult(document["_id"], self._acknowledged), link=True
        )

    def insert_many(
        self,
        documents: Sequence[Any],
        ordered: bool = True,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
    ) -> Planned[InsertManyResult]:
        """``insert_many``: each document is written whole (both halves) or not at all."""
        if isinstance(documents, Mapping) or not documents:
            raise TypeError("documents must be a non-empty list")
        options = passed(locals(), "documents", "ordered")
        ctx = self.context()
        for document in documents:
            if "_id" not in document:
                document["_id"] = ctx.new_object_id()
        ids = [d["_id"] for d in documents]
        schema = ctx.schema
        visible = [
            {k: v for k, v in d.items() if schema.side_of(k) is Side.CLINICAL} for d in documents
        ]
        batch = list(documents)
        return Planned(
            self._audited(
                ctx,
                "create",
                lambda c: write.insert(c, batch, ordered, options),
                *map(dict, documents),
            ),
            lambda _: InsertManyResult(ids, self._acknowledged),
            link=True,
            single=False,
            documents=visible,
        )

    def _update(
        self,
        filter: Mapping[str, Any],
        update: Any,
        multi: bool,
        upsert: bool,
        options: dict[str, Any],
        sort: Any = None,
    ) -> Planned[UpdateResult]:
        if isinstance(update, Mapping):
            check_sent(update, "update")
        ctx, order = self.context(write=True), _sort(sort)
        refuse_marker(ctx.schema.model, update)
        flow = self._audited(
            ctx,
            "update",
            lambda c: write.update(c, filter, update, multi, upsert, options, order),
            filter,
            update,
        )
        return Planned(flow, self._update_result, link=upsert)

    def update_one(
        self,
        filter: Mapping[str, Any],
        update: Any,
        upsert: bool = False,
        bypass_document_validation: bool | None = None,
        collation: Any = None,
        array_filters: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        sort: Any = None,
        comment: Any = None,
    ) -> Planned[UpdateResult]:
        """``update_one``: the first matching document (by ``sort`` when given)."""
        options = passed(locals(), "filter", "update", "upsert", "sort")
        return self._update(filter, update, False, upsert, options, sort)

    def update_many(
        self,
        filter: Mapping[str, Any],
        update: Any,
        upsert: bool = False,
        array_filters: Any = None,
        bypass_document_validation: bool | None = None,
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
    ) -> Planned[UpdateResult]:
        """``update_many``."""
        options = passed(locals(), "filter", "update", "upsert")
        return self._update(filter, update, True, upsert, options)

    def replace_one(
        self,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        upsert: bool = False,
        bypass_document_validation: bool | None = None,
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        sort: Any = None,
        comment: Any = None,
    ) -> Planned[UpdateResult]:
        """``replace_one``, keeping the replaced document's pseudonym."""
        options = passed(locals(), "filter", "replacement", "upsert", "sort")
        check_sent(replacement, "update")
        ctx = self.context(write=True)
        refuse_marker(ctx.schema.model, replacement)
        order = _sort(sort)
        flow = self._audited(
            ctx,
            "update",
            lambda c: write.replace_one(c, filter, replacement, upsert, options, order),
            filter,
            replacement,
        )
        return Planned(flow, self._update_result, link=upsert)

    def _delete(
        self, filter: Mapping[str, Any], multi: bool, options: dict[str, Any]
    ) -> Planned[DeleteResult]:
        ctx = self.context(write=True)
        return Planned(
            self._audited(ctx, "delete", lambda c: write.delete(c, filter, multi, options), filter),
            lambda n: DeleteResult({"n": n, "ok": 1.0}, self._acknowledged),
        )

    def delete_one(
        self,
        filter: Mapping[str, Any],
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
    ) -> Planned[DeleteResult]:
        """``delete_one`` (identity row first)."""
        options = passed(locals(), "filter")
        return self._delete(filter, False, options)

    def delete_many(
        self,
        filter: Mapping[str, Any],
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
        let: Any = None,
        comment: Any = None,
    ) -> Planned[DeleteResult]:
        """``delete_many`` (identity rows first)."""
        options = passed(locals(), "filter")
        return self._delete(filter, True, options)

    def _update_result(self, outcome: UpdateOutcome) -> UpdateResult:
        return UpdateResult(self._raw_result(outcome), self._acknowledged)

    def _raw_result(self, outcome: UpdateOutcome) -> dict[str, Any]:
        """The server's reply when one operation made it; else one shaped as this backend's."""
        if outcome.raw is not None:
            return dict(outcome.raw)
        upserted = outcome.upserted_id is not None
        raw: dict[str, Any] = {
            "n": 1 if upserted else outcome.matched,
            "nModified": outcome.modified,
            "ok": 1.0,
            "updatedExisting": outcome.matched > 0,
        }
        if upserted:
            raw["upserted"] = outcome.upserted_id
        if self._mongomock_style:
            # mongomock's reply carries these too; matching it keeps full_result native there.
            raw.update(err=None, ok=1, upserted=outcome.upserted_id)
        return raw

    def bulk_write(
        self,
        requests: Sequence[Any],
        ordered: bool = True,
        bypass_document_validation: bool | None = None,
        session: Any = None,
        comment: Any = None,
        let: Any = None,
    ) -> Planned[BulkWriteResult]:
        """``bulk_write``: each request runs through its own method's flow, with its options."""
        options = passed(locals(), "requests", "ordered")
        ctx = self.context(write=True)
        recorder = _BulkRecorder(ctx.new_object_id)
        for request in requests:
            adder = getattr(request, "_add_to_bulk", None)
            if adder is None:
                raise TypeError(f"{request!r} is not a valid request")
            adder(recorder)
        if not recorder.requests:
            raise InvalidOperation("No operations to execute")
        for sent in recorder.requests:
            for part in ("update", "replacement"):
                refuse_marker(ctx.schema.model, getattr(sent, part, None))
        return Planned(
            self._audited(
                ctx, "bulk_write", lambda c: bulk.bulk(c, recorder.requests, ordered, options)
            ),
            lambda outcome: BulkWriteResult(
                {**bulk_counts(outcome), "writeErrors": [], "writeConcernErrors": []},
                self._acknowledged,
            ),
            link=True,
        )
