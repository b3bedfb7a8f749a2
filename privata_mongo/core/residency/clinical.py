"""Internal. Clinical rows in the clinical store of their subject's region, and reads merged.

A region may have its own clinical store (``Residency.clinical``); the other regions' subjects
keep their clinical rows in the application's store (``HOME``). The residency router hands
every clinical request of a flow to ``ClinicalStores.serve`` when some region has a store of
its own, and the flow keeps seeing one collection:

- a new row goes to the store of its ``REGION_FIELD``; every other write changes rows where
  they are: one document asks the stores in turn until one matches (a replacement the store
  of its region first), many ask every store at once, and an upsert that matched nowhere
  creates the row in the store of the region it names (else the pinned or default region);
- the application's store is asked too unless the operation is pinned to regions that all
  have a store of their own: rows stored there before their region had a store of its own
  stay readable until ``transfer_region`` moves them;
- a read asks every store the operation may see (at once, on the async driver) and merges
  the answers as one store would have given them: rows in the server's sort order (MongoDB's
  comparison order, ``core.mql.values``), skip and limit applied after the merge with each
  store asked for ``skip + limit`` rows at most, counts summed, ``distinct`` values unioned in
  BSON order;
- an aggregation pipeline runs in every store and is merged only when that gives the one
  store's answer: stages that act on each document alone, then at most a ``$sort``, then
  ``$skip``/``$limit``. Any other pipeline is refused (``UnsupportedQuery``) unless the
  operation is pinned to regions sharing one store.

Round trips grow with the number of stores asked, never with the number of documents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from privata_mongo.core.mql.values import sort_directions, sort_documents, sort_key
from privata_mongo.core.ops import (
    Aggregate,
    AnyOp,
    Count,
    CreateIndex,
    Delete,
    Distinct,
    Document,
    Drop,
    DropIndex,
    EstimatedCount,
    Explain,
    FetchAll,
    Find,
    FindAndModify,
    Flow,
    Gather,
    IndexInformation,
    InRegion,
    Insert,
    InsertOutcome,
    NextBatch,
    Op,
    Query,
    Replace,
    ReplaceMany,
    Update,
    UpdateOutcome,
)
from privata_mongo.core.residency.merging import (
    HOME,
    Merged,
    Part,
    Store,
    asked_limit,
    find_window,
    keyed_projection,
    mergeable,
    stripped,
    united,
)
from privata_mongo.core.residency.placement import Residency
from privata_mongo.core.residency.runs import in_runs
from privata_mongo.core.rights.restriction import conjoined
from privata_mongo.core.schema import REGION_FIELD
from privata_mongo.errors import RegionUnavailable, UnsupportedQuery

__all__ = ["ClinicalStores"]

R = TypeVar("R")


def _sent(store: Store, op: Op[R]) -> Op[R]:
    """``op`` for ``store``: as it is for the application's store, else in its region."""
    return op if store is HOME else cast("Op[R]", InRegion(store, cast("AnyOp", op)))


@dataclass(slots=True)
class ClinicalStores:
    """Every clinical request of one flow, sent to the clinical stores holding its rows."""

    residency: Residency

    # -- where ---------------------------------------------------------------------------------

    def store_of(self, region: Any) -> Store:
        """The clinical store of ``region``'s subjects."""
        return region if isinstance(region, str) and region in self.residency.clinical else HOME

    def stores(self) -> list[Store]:
        """The stores an operation may see: the application's, and those of its regions.

        The application's store is left out only when the operation is pinned to regions
        that all have a store of their own: a pin touches only the pinned stores. Otherwise
        it is asked too, so rows stored there before their region had a store of its own (or
        migrated in place) stay readable until ``transfer_region`` moves them.
        """
        own = [self.store_of(r) for r in self.residency.asked]
        if self.residency.pinned and HOME not in own:
            return list(dict.fromkeys(own))
        return list(dict.fromkeys([HOME, *own]))

    def _preferring(self, stores: Sequence[Store], row: Any) -> list[Store]:
        """``stores`` with the store of ``row``'s region first (where a replacement is)."""
        if not isinstance(row, Mapping) or REGION_FIELD not in row:
            return list(stores)
        first = self.store_of(row[REGION_FIELD])
        return [first, *(s for s in stores if s != first)] if first in stores else list(stores)

    def _placed(self) -> Store:
        """The store of a row that names no region (an upsert): the pinned or default one."""
        pinned = self.residency.pinned
        return self.store_of(pinned[0] if pinned else self.residency.default)

    # -- serving -------------------------------------------------------------------------------

    def serve(self, op: AnyOp) -> Flow[Any]:
        """``op`` (a clinical store request, or a batch of a merged cursor) answered."""
        if isinstance(op, NextBatch) and isinstance(op.handle, Merged):
            return (yield from self._next(op.handle, op.size))
        if isinstance(op, Insert):
            return (yield from self._insert(op))
        stores = self.stores()
        if len(stores) == 1 and isinstance(op, Find | Aggregate) and stores[0] is not HOME:
            # one region's store: the server skips and limits; batches are read in the region,
            # so an unreachable server is reported naming it
            handle = yield from _sent(stores[0], op)
            return Merged([Part(stores[0], handle)], [])
        if len(stores) == 1:
            return (yield from _sent(stores[0], op))
        if isinstance(op, Find):
            return (yield from self._find(op, stores))
        if isinstance(op, Aggregate):
            return (yield from self._aggregate(op, stores))
        if isinstance(op, FetchAll):
            return (yield from self._fetch_all(op, stores))
        if isinstance(op, Count):
            return (yield from self._count(op, stores))
        if isinstance(op, EstimatedCount):
            return sum(r for _, r in (yield from self._gather(stores, op, read=True)))
        if isinstance(op, Distinct):
            return (yield from self._distinct(op, stores))
        if isinstance(op, ReplaceMany):  # in place, wherever each row is
            return sum(n for _, n in (yield from self._gather(stores, op, read=False)))
        if isinstance(op, Update | Delete | Replace):
            return (yield from self._change(op, stores))
        if isinstance(op, FindAndModify):
            return (yield from self._find_and_modify(op, stores))
        if isinstance(op, CreateIndex):
            answers = yield from self._gather(stores, op, read=False)
            return answers[0][1]
        if isinstance(op, DropIndex | Drop):
            yield from self._gather(stores, op, read=False)
            return None
        assert isinstance(op, IndexInformation | Explain)  # noqa: S101 - the union
        return (yield from _sent(stores[0], op))  # the indexes are the same in every store

    def _gather(self, stores: Sequence[Store], op: AnyOp, *, read: bool) -> Flow[list[Any]]:
        """``op`` asked of ``stores`` at once: ``(store, answer)`` pairs.

        A read with partial results allowed leaves out the regions that cannot be reached.
        """
        return (yield from self._gather_each([(s, op) for s in stores], read=read))

    def _gather_each(
        self, asked: Sequence[tuple[Store, AnyOp]], *, read: bool
    ) -> Flow[list[tuple[Store, Any]]]:
        """Each ``(store, op)`` asked at once: ``(store, answer)`` pairs, in order.

        A read with partial results allowed asks the stores one by one instead, leaving out
        those whose region cannot be reached: a batch read from a cursor cannot be asked
        again, so the answers of the others must not be lost with a failed ``Gather``.
        """
        if read and self.residency.partial:
            kept: list[tuple[Store, Any]] = []
            for store, op in asked:
                try:
                    kept.append((store, (yield from _sent(store, op))))
                except RegionUnavailable as exc:  # noqa: PERF203 - one request per store
                    self._skipped(exc.region)
            return kept
        if len(asked) == 1:
            results = [(yield from _sent(*asked[0]))]
        else:
            results = yield from Gather(tuple(cast("AnyOp", _sent(s, o)) for s, o in asked))
        return list(zip([s for s, _ in asked], results, strict=True))

    def _skipped(self, region: str) -> None:
        if self.residency.skipped is not None:
            self.residency.skipped(region)

    # -- reads ---------------------------------------------------------------------------------

    def _refuse_collation(self, options: Mapping[str, Any], sort: Sequence[Any]) -> None:
        if sort and options.get("collation"):
            raise UnsupportedQuery(
                f"{self.residency.model or 'this model'}: a sort with a collation cannot be "
                "merged across the clinical stores of several regions; pin the operation to "
                "one region (within_regions) or sort without a collation",
                model=self.residency.model,
            )

    def _window(
        self, query: Query
    ) -> tuple[Query, list[tuple[str, int]], int, int | None, tuple[str, ...]]:
        """What each store is asked for a page: no skip, ``skip + limit`` rows, the sort keys.

        Returns the query to send, the sort, the page's skip and limit (applied after the
        merge) and the sort keys to strip from the rows before the application sees them.
        """
        sort = sort_directions(query.sort) if query.sort else []
        self._refuse_collation(query.options, sort)
        skip, limit = find_window(query.skip, query.limit)
        projection, strip = keyed_projection(query.projection, sort)
        asked = replace(query, skip=0, limit=asked_limit(skip, limit), projection=projection)
        return asked, sort, skip, limit, strip

    def _find(self, op: Find, stores: Sequence[Store]) -> Flow[Merged]:
        asked, sort, skip, limit, strip = self._window(op.query)
        opened = yield from self._gather(stores, replace(op, query=asked), read=True)
        parts = [Part(store, handle) for store, handle in opened]
        return Merged(parts, sort, skip, limit, strip)

    def _aggregate(self, op: Aggregate, stores: Sequence[Store]) -> Flow[Merged]:
        shape = mergeable(op.pipeline, self.residency.identity_collection)
        if shape is None:
            model = self.residency.model or "this model"
            raise UnsupportedQuery(
                f"{model}: this aggregation pipeline cannot be merged across the clinical "
                "stores of several regions (only stages that act on each document alone, "
                "around one $sort/$skip/$limit window, can); pin the aggregation to one "
                "region with within_regions",
                model=self.residency.model,
            )
        self._refuse_collation(op.options, shape.sort)
        if shape.limit == 0:
            return Merged([], shape.sort, 0, 0)
        stages = list(shape.head)
        if shape.sort:
            stages.append({"$sort": dict(shape.sort)})
        if shape.limit is not None:
            stages.append({"$limit": shape.skip + shape.limit})
        asked = replace(op, pipeline=tuple(stages))
        opened = yield from self._gather(stores, asked, read=True)
        merged = Merged(
            [Part(store, handle) for store, handle in opened],
            shape.sort,
            shape.skip,
            shape.limit,
        )
        if not shape.tail:
            return merged
        return (yield from self._tail(op, merged, shape.tail))

    def _tail(
        self, op: Aggregate, window: Merged, tail: Sequence[Mapping[str, Any]]
    ) -> Flow[Merged]:
        """The stages after a window, run in each store on its rows the window kept.

        Two requests per store: the window's rows (bounded by its limit), then the tail on
        them by ``_id``. Rows come back in the window's order while the tail keeps ``_id``.
        """
        picked = yield from self._pick(window, 0)
        kept: dict[Store, list[Any]] = {}
        for store, row in picked:
            kept.setdefault(store, []).append(row["_id"])
        asked = [
            (store, replace(op, pipeline=({"$match": {"_id": {"$in": ids}}}, *tail)))
            for store, ids in kept.items()
        ]
        opened = yield from self._gather_each(asked, read=True)
        rows: list[Document] = []
        for store, handle in opened:
            batch: list[Document] = yield from _sent(store, NextBatch(handle, 0))
            rows.extend(batch)
        position = {repr(row["_id"]): n for n, (_, row) in enumerate(picked)}
        rows.sort(key=lambda r: position.get(repr(r.get("_id")), len(position)))
        return Merged([Part(HOME, None, rows, done=True)], [])

    def _next(self, merged: Merged, size: int) -> Flow[list[Document]]:
        """The next ``size`` rows of a merged cursor (``size <= 0``: all the rest)."""
        picked = yield from self._pick(merged, size)
        return [stripped(row, merged.strip) for _, row in picked]

    def _pick(self, merged: Merged, size: int) -> Flow[list[tuple[Store, Document]]]:
        out: list[tuple[Store, Document]] = []
        while size <= 0 or len(out) < size:
            if merged.limit is not None and merged.returned >= merged.limit:
                break
            waiting = [
                p
                for p in (merged.parts if merged.sort else merged.parts[:1])
                if not p.buffer and not p.done
            ]
            if waiting:
                yield from self._fill(waiting, size)
            live = [p for p in merged.parts if p.buffer]
            if not live:
                if all(p.done for p in merged.parts):
                    break
                merged.parts = [p for p in merged.parts if not p.done]
                continue
            if merged.sort:
                part = min(live, key=lambda p: sort_key(p.buffer[0], merged.sort))
            else:
                part = live[0]
            row = part.buffer.pop(0)
            if not part.buffer and part.done and not merged.sort:
                merged.parts.remove(part)
            if merged.skipped < merged.skip:
                merged.skipped += 1
                continue
            merged.returned += 1
            out.append((part.store, row))
        return out

    def _fill(self, parts: Sequence[Part], size: int) -> Flow[None]:
        """The next batch of each of ``parts``, read at once (one part per store)."""
        asked = [(p.store, NextBatch(p.handle, size)) for p in parts]
        answered = dict((yield from self._gather_each(asked, read=True)))
        for part in parts:
            if part.store not in answered:  # its region was left out (partial results)
                part.done = True
                continue
            batch = answered[part.store]
            part.buffer = list(batch)
            if size <= 0 or len(batch) < size:
                part.done = True

    def _fetch_all(self, op: FetchAll, stores: Sequence[Store]) -> Flow[list[Document]]:
        asked, sort, skip, limit, strip = self._window(op.query)
        answered = yield from self._gather(stores, replace(op, query=asked), read=True)
        rows: list[Mapping[str, Any]] = [r for _, part in answered for r in part]
        if sort:
            rows = sort_documents(rows, sort)
        end = None if limit is None else skip + limit
        return [stripped(dict(r), strip) for r in rows[skip:end]]

    def _count(self, op: Count, stores: Sequence[Store]) -> Flow[int]:
        options = dict(op.options)
        skip = int(options.pop("skip", 0) or 0)
        limit = int(options.pop("limit", 0) or 0) or None
        if limit is not None:
            options["limit"] = skip + limit
        answered = yield from self._gather(stores, replace(op, options=options), read=True)
        total: int = max(sum(n for _, n in answered) - skip, 0)
        return total if limit is None else min(total, limit)

    def _distinct(self, op: Distinct, stores: Sequence[Store]) -> Flow[list[Any]]:
        answered = yield from self._gather(stores, op, read=True)
        return united([list(part) for _, part in answered])

    # -- writes --------------------------------------------------------------------------------

    def _insert(self, op: Insert) -> Flow[InsertOutcome]:
        """Rows in runs of one store, in order.

        An ordered insert stops where one store would have stopped, and failure indexes stay
        the caller's.
        """
        if not op.documents:
            empty: InsertOutcome = yield from _sent(HOME, op)
            return empty
        stores = [self.store_of(r.get(REGION_FIELD, self.residency.default)) for r in op.documents]

        def send(store: Store, part: Insert) -> Flow[InsertOutcome]:
            sent: InsertOutcome = yield from _sent(store, part)
            return sent

        return (yield from in_runs(op, stores, send))

    def _upsert_store(self, op: Update | Replace | FindAndModify) -> Store:
        document = op.update if isinstance(op, Update) else op.document
        if isinstance(document, Mapping):
            for part in (document, document.get("$set"), document.get("$setOnInsert")):
                if isinstance(part, Mapping) and isinstance(part.get(REGION_FIELD), str):
                    return self.store_of(part[REGION_FIELD])
        return self._placed()

    def _change(self, op: Update | Delete | Replace, stores: Sequence[Store]) -> Flow[Any]:
        """One document: the stores in turn until one matches; many: every store at once."""
        if isinstance(op, Delete):
            return (yield from self._delete(op, stores))
        plain: Update | Replace = replace(op, upsert=False)
        outcome = UpdateOutcome(0, 0)
        if isinstance(op, Update) and op.multi:
            answered = [r for _, r in (yield from self._gather(stores, plain, read=False))]
            outcome = UpdateOutcome(
                sum(r.matched for r in answered), sum(r.modified for r in answered)
            )
        else:
            preferred = self._preferring(stores, op.document if isinstance(op, Replace) else None)
            for store in preferred:
                found: UpdateOutcome = yield from _sent(store, plain)
                if found.matched:
                    return found
        if op.upsert and not outcome.matched:
            upserted: UpdateOutcome = yield from _sent(self._upsert_store(op), op)
            return upserted
        return outcome

    def _delete(self, op: Delete, stores: Sequence[Store]) -> Flow[int]:
        if op.multi:
            return sum(n for _, n in (yield from self._gather(stores, op, read=False)))
        for store in stores:
            deleted: int = yield from _sent(store, op)
            if deleted:
                return deleted
        return 0

    def _find_and_modify(self, op: FindAndModify, stores: Sequence[Store]) -> Flow[Document | None]:
        plain = replace(op, upsert=False)
        if op.sort:
            sort = sort_directions(op.sort)
            self._refuse_collation(op.options, sort)
            keys, _ = keyed_projection({"_id": 1}, sort)
            probe = FetchAll(
                op.side,
                Query(op.filter, projection=keys, sort=op.sort, limit=1, options=op.options),
            )
            answered = yield from self._gather(stores, probe, read=False)
            heads = [(store, rows[0]) for store, rows in answered if rows]
            if heads:
                store, head = min(heads, key=lambda h: sort_key(h[1], sort))
                chosen = replace(plain, filter=conjoined(op.filter, {"_id": head["_id"]}))
                found: Document | None = yield from _sent(store, chosen)
                if found is not None or not op.upsert:
                    return found
        else:
            for store in self._preferring(stores, op.document):
                found = yield from _sent(store, plain)
                if found is not None:
                    return found
        if not op.upsert:
            return None
        return (yield from _sent(self._upsert_store(op), op))
