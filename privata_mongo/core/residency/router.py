"""The residency router: every identity-side and key request of a flow sent to its region.

See ``core.residency``. The router learns where subjects live from ``Located`` and from the
clinical rows the flow reads, sends what names known subjects to their regions and asks every
region (or the pinned ones) for the rest, merging the answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from privata_mongo.core.audit.records import AuditRecord
from privata_mongo.core.ops import (
    Aggregate,
    Among,
    AnyOp,
    AppendAudit,
    CacheGet,
    CacheInvalidate,
    CachePut,
    Count,
    Delete,
    DiscardKeys,
    Distinct,
    Document,
    Explain,
    FetchAll,
    Find,
    FindAndModify,
    FindErased,
    Flow,
    Gather,
    InRegion,
    Insert,
    InsertOutcome,
    LoadKeys,
    Locate,
    Located,
    NextBatch,
    Query,
    Replace,
    ReplaceKeys,
    ReplaceMany,
    ShredKeys,
    Steps,
    StoreKeys,
    Update,
)
from privata_mongo.core.pseudonym import is_pseudonym
from privata_mongo.core.residency.caching import routed_cache
from privata_mongo.core.residency.clinical import ClinicalStores
from privata_mongo.core.residency.merging import Merged
from privata_mongo.core.residency.placement import Residency
from privata_mongo.core.residency.requests import (
    FILTERED,
    KEY_REQUESTS,
    READS,
    STORE_REQUESTS,
    Fanned,
    key_name,
    linked_projection,
    merged,
    no_answer,
    subject_ids,
)
from privata_mongo.core.residency.runs import in_runs
from privata_mongo.core.rights.restriction import conjoined
from privata_mongo.core.schema import PSEUDONYM_FIELD, REGION_FIELD, Side
from privata_mongo.errors import ConfigurationError, RegionUnavailable

__all__ = ["regional"]

T = TypeVar("T")


@dataclass(slots=True)
class _Router:
    residency: Residency
    where: dict[str, str] = field(default_factory=dict)
    clinical: set[int] = field(default_factory=set)  # ids of open clinical cursors
    stores: ClinicalStores | None = None  # when some region has a clinical store of its own

    # -- learning ------------------------------------------------------------------------------

    def learn(self, rows: Iterable[Any]) -> None:
        for row in rows:
            if isinstance(row, Mapping):
                pseudonym, region = row.get(PSEUDONYM_FIELD), row.get(REGION_FIELD)
                if isinstance(pseudonym, str) and isinstance(region, str):
                    self.where[pseudonym] = region

    def regions_of(self, names: Iterable[Any]) -> tuple[dict[str, list[str]], list[str]]:
        """Known pseudonyms grouped by region (in the order met), and the unknown ones."""
        known: dict[str, list[str]] = {}
        unknown: list[str] = []
        for name in names:
            region = self.where.get(name) if isinstance(name, str) else None
            if region is None:
                unknown.append(name)
            else:
                known.setdefault(region, []).append(name)
        return known, unknown

    def locate(self, names: Sequence[str]) -> Flow[None]:
        """Read the region of pseudonyms not yet known from their clinical rows."""
        unknown = [n for n in dict.fromkeys(names) if n not in self.where]
        if unknown:
            rows = yield from self._send(
                FetchAll(
                    Side.CLINICAL,
                    Query(
                        {PSEUDONYM_FIELD: {"$in": unknown}},
                        projection={"_id": 0, PSEUDONYM_FIELD: 1, REGION_FIELD: 1},
                    ),
                )
            )
            self.learn(rows)

    # -- routing -------------------------------------------------------------------------------

    def serve(self, op: AnyOp) -> Flow[Any]:
        if isinstance(op, Among):
            return (yield from self._identity(op.op, op.regions))
        if isinstance(op, NextBatch) and isinstance(op.handle, Fanned):
            return (yield from self._next(op.handle, op.size))
        if isinstance(op, KEY_REQUESTS):
            return (yield from self._keys(op))
        if isinstance(op, CacheGet | CachePut | CacheInvalidate):
            return (yield from routed_cache(op, self.where, self.residency))
        if isinstance(op, STORE_REQUESTS) and op.side is Side.IDENTITY:
            return (yield from self._identity(op))
        sent: AnyOp = op
        if isinstance(op, AppendAudit):
            sent = AppendAudit(tuple(self._regioned(r) for r in op.records))
        elif isinstance(op, FetchAll | Find | Explain) and op.side is Side.CLINICAL:
            query = replace(op.query, projection=linked_projection(op.query.projection))
            sent = replace(op, query=replace(query, filter=self._pin(query.filter)))
        elif isinstance(op, Insert | Replace | ReplaceMany | FindAndModify) and (
            op.side is Side.CLINICAL
        ):
            sent = yield from self._stamped(op)
        if isinstance(sent, FILTERED) and sent.side is Side.CLINICAL and self.residency.pinned:
            sent = replace(sent, filter=self._pin(sent.filter))
        elif isinstance(op, Aggregate) and op.side is Side.CLINICAL and self.residency.pinned:
            sent = replace(op, pipeline=({"$match": self._pin({})}, *op.pipeline))
        result: Any = yield from self._send(sent)
        if isinstance(op, FetchAll) and op.side is Side.CLINICAL:
            return self.learned(result)
        if isinstance(op, Find | Aggregate) and op.side is Side.CLINICAL:
            self.clinical.add(id(result))
        elif isinstance(op, NextBatch) and id(op.handle) in self.clinical:
            return self.learned(result)
        elif isinstance(op, FindAndModify) and op.side is Side.CLINICAL and result:
            return self.learned((result,))[0]
        return result

    def _send(self, op: AnyOp) -> Flow[Any]:
        """``op`` sent: a clinical request to the clinical stores holding its rows."""
        if self.stores is not None and (
            (isinstance(op, STORE_REQUESTS) and op.side is Side.CLINICAL)
            or (isinstance(op, NextBatch) and isinstance(op.handle, Merged))
        ):
            return (yield from self.stores.serve(op))
        return (yield from op)

    def learned(self, rows: Sequence[Any]) -> list[Any]:
        """``rows`` learned from, without the region: the flows never see it."""
        self.learn(rows)
        return [
            {k: v for k, v in r.items() if k != REGION_FIELD}
            if isinstance(r, Mapping) and REGION_FIELD in r
            else r
            for r in rows
        ]

    def _stamped(self, op: Insert | Replace | ReplaceMany | FindAndModify) -> Flow[AnyOp]:
        """A clinical write whose new rows keep (or get) their subject's region.

        The flows build clinical rows from the application's documents; a replacement or an
        upserted row must not lose the region its subject's identity data lives in.
        """
        rows: list[Mapping[str, Any]]
        if isinstance(op, Insert):
            rows = list(op.documents)
        elif isinstance(op, ReplaceMany):
            rows = [document for _, document in op.pairs]
        elif isinstance(op, FindAndModify):
            if op.action != "replace" or not isinstance(op.document, Mapping):
                return op
            rows = [op.document]
        else:
            rows = [op.document]
        linked = [r.get(PSEUDONYM_FIELD) for r in rows if REGION_FIELD not in r]
        names = [n for n in linked if isinstance(n, str)]
        if not names:
            return op
        yield from self.locate(names)
        fallback = self.residency.pinned[0] if self.residency.pinned else self.residency.default

        def stamp(row: Mapping[str, Any]) -> Mapping[str, Any]:
            name = row.get(PSEUDONYM_FIELD)
            if REGION_FIELD in row or not isinstance(name, str):
                return row
            region = self.where.setdefault(name, fallback)
            return {**row, REGION_FIELD: region}

        if isinstance(op, Insert):
            return replace(op, documents=tuple(stamp(r) for r in op.documents))
        if isinstance(op, ReplaceMany):
            return replace(op, pairs=tuple((f, stamp(d)) for f, d in op.pairs))
        return replace(op, document=stamp(rows[0]))

    def _pin(self, filter: Mapping[str, Any]) -> Mapping[str, Any]:
        """``filter`` restricted to the subjects of the pinned regions (unchanged if none)."""
        if not self.residency.pinned:
            return filter
        return conjoined(filter, {REGION_FIELD: {"$in": list(self.residency.pinned)}})

    def _regioned(self, record: AuditRecord) -> AuditRecord:
        """``record`` naming the regions of its subjects (the ones known here)."""
        regions = sorted({self.where[s] for s in record.subjects if s in self.where})
        return replace(record, regions=tuple(regions)) if regions else record

    def _targets(self, op: AnyOp) -> list[str] | None:
        if isinstance(op, Insert):
            return [d.get("_id") for d in op.documents]  # type: ignore[misc]
        if isinstance(op, ReplaceMany):
            found = [subject_ids(f) for f, _ in op.pairs]
            return None if any(f is None for f in found) else [i for f in found for i in f or ()]
        if isinstance(op, Find | FetchAll | Explain):
            return subject_ids(op.query.filter)
        if isinstance(op, Count | Distinct | Update | Replace | Delete | FindAndModify):
            return subject_ids(op.filter)
        return None

    def _identity(self, op: AnyOp, among: Sequence[str] | None = None) -> Flow[Any]:
        """``op`` sent to its subjects' regions, or asked of every region (``among`` only)."""
        targets = self._targets(op)
        if isinstance(op, Insert):
            yield from self.locate([t for t in targets or () if is_pseudonym(t)])
            return (yield from self._insert(op))
        if targets is None:
            regions = list(self.residency.asked)
        else:
            known, unknown = self.regions_of(targets)
            regions = list(self.residency.asked) if unknown else list(known)
        if among is not None:
            regions = [r for r in regions if r in among]
            if not regions:
                return no_answer(op)
        if not regions:
            regions = [self.residency.default]
        return (yield from self._fan(op, regions))

    def _fan(self, op: AnyOp, regions: Sequence[str]) -> Flow[Any]:
        """``op`` asked of ``regions`` (at once, on the async driver), answers merged."""
        if isinstance(op, FindAndModify):  # one document at most: the regions in turn
            for region in regions:
                found = yield from InRegion(region, op)
                if found is not None:
                    return found
            return None
        if len(regions) == 1 and not isinstance(op, READS):
            return (yield from InRegion(regions[0], op))
        answered = yield from self._gather([InRegion(region, op) for region in regions])
        if isinstance(op, Find | Aggregate):
            return Fanned(answered)
        if isinstance(op, FetchAll):  # identity rows: each region's subjects are its own
            for region, rows in answered:
                self.where.update((r["_id"], region) for r in rows if isinstance(r.get("_id"), str))
        results = [result for _, result in answered]
        if len(regions) == 1 and results:
            return results[0]
        return merged(op, results) if results else no_answer(op)

    def _gather(self, asked: Sequence[InRegion]) -> Flow[list[tuple[str, Any]]]:
        """The answers of the regions ``asked``, at once.

        When the operation allows partial results (reads only), the reachable regions'
        answers, each region left out being reported.
        """
        try:
            if len(asked) == 1:
                results = [(yield from asked[0])]
            else:
                results = yield from Gather(tuple(asked))
            return list(zip([a.region for a in asked], results, strict=True))
        except RegionUnavailable:
            if not self.residency.partial or not all(isinstance(a.op, READS) for a in asked):
                raise
        kept: list[tuple[str, Any]] = []
        for each in asked:
            try:
                kept.append((each.region, (yield from each)))
            except RegionUnavailable as exc:  # noqa: PERF203 - one request per region
                self._skipped(exc.region)
        return kept

    def _skipped(self, region: str) -> None:
        if self.residency.skipped is not None:
            self.residency.skipped(region)

    def _next(self, fanned: Fanned, size: int) -> Flow[list[Document]]:
        out: list[Document] = []
        while fanned.position < len(fanned.handles) and (size <= 0 or len(out) < size):
            region, handle = fanned.handles[fanned.position]
            want = size - len(out) if size > 0 else size
            try:
                batch: list[Document] = yield from InRegion(region, NextBatch(handle, want))
            except RegionUnavailable:
                if not self.residency.partial:
                    raise
                self._skipped(region)
                batch = []
            out.extend(batch)
            if size <= 0 or len(batch) < want:
                fanned.position += 1
        return out

    def _insert(self, op: Insert) -> Flow[InsertOutcome]:
        """Identity rows in runs of one region, in order.

        An ordered insert stops where the server would have stopped, and failure indexes stay
        the caller's.
        """
        regions: list[str] = []
        for document in op.documents:
            name = document.get("_id")
            region = self.where.get(name, self.residency.default) if isinstance(name, str) else ""
            regions.append(region or self.residency.default)

        def send(region: str, part: Insert) -> Flow[InsertOutcome]:
            sent: InsertOutcome = yield from InRegion(region, part)
            return sent

        return (yield from in_runs(op, regions, send))

    def _keys(self, op: AnyOp) -> Flow[Any]:
        if isinstance(op, LoadKeys):
            return (yield from self._load(op))
        if isinstance(op, StoreKeys | ReplaceKeys):
            groups: dict[str | None, list[Mapping[str, Any]]] = {}
            owners = [key_name(d) for d in op.documents]
            yield from self.locate([n for n in owners if n is not None])
            for name, document in zip(owners, op.documents, strict=True):
                region = None if name is None else self.where.get(name, self.residency.default)
                if region is not None:
                    self._check_wrapping(region, document)
                groups.setdefault(region, []).append(document)
            for group, documents in groups.items():
                part = replace(op, documents=tuple(documents))
                yield from (part if group is None else InRegion(group, part))
            return None
        assert isinstance(op, ShredKeys | FindErased | DiscardKeys)  # noqa: S101 - the union
        subjects = [n for n in op.names if is_pseudonym(n)]
        others = tuple(n for n in op.names if not is_pseudonym(n))
        if isinstance(op, ShredKeys):
            yield from self.locate(subjects)
        known, unknown = self.regions_of(subjects)
        if isinstance(op, ShredKeys) and unknown:
            # Shred where a key is held: a tombstone in another region's vault would change it.
            for region in self.residency.regions:
                held = yield from InRegion(region, LoadKeys(tuple(unknown)))
                for name in {key_name(d) for d in held}:
                    if name in unknown:
                        known.setdefault(region, []).append(name)
                        unknown.remove(name)
            if unknown:
                known.setdefault(self.residency.default, []).extend(unknown)
            unknown = []
        results: list[Any] = []
        if others:
            results.append((yield from replace(op, names=others)))
        routes = {r: list(names) for r, names in known.items()}
        for region in self.residency.asked if unknown else ():
            routes.setdefault(region, []).extend(unknown)
        for region, routed in routes.items():
            results.append((yield from InRegion(region, replace(op, names=tuple(routed)))))
        if isinstance(op, ShredKeys):
            return sum(results)
        if isinstance(op, FindErased):
            return [n for r in results for n in r]
        return None

    def _check_wrapping(self, region: str, document: Mapping[str, Any]) -> None:
        """Refuse to store a subject's key wrapped by another region's master key."""
        wrapping = self.residency.wrapping.get(region)
        master = document.get("masterKey")
        provider = master.get("provider") if isinstance(master, Mapping) else None
        if wrapping is not None and provider != wrapping.provider:
            raise ConfigurationError(
                f"a data key of a subject of region '{region}' is wrapped by the "
                f"'{provider}' master key, not by the region's own ('{wrapping.provider}'); "
                "it was not stored: give every region its own master key"
            )

    def _load(self, op: LoadKeys) -> Flow[list[Document]]:
        found: list[Document] = []
        if op.names is None:
            found.extend((yield from op))
            for region in self.residency.regions:
                found.extend((yield from InRegion(region, op)))
            return found
        subjects = [n for n in op.names if is_pseudonym(n)]
        others = tuple(n for n in op.names if not is_pseudonym(n))
        if others:
            found.extend((yield from LoadKeys(others)))
        known, unknown = self.regions_of(subjects)
        asked = [
            InRegion(region, LoadKeys(tuple(names)))
            for region in self.residency.regions
            if (
                names := known.get(region, []) + (unknown if region in self.residency.asked else [])
            )
        ]
        if asked:
            for region, part in (yield from self._gather(asked)):
                found.extend(part)
                self.where.update((n, region) for d in part if (n := key_name(d)) is not None)
        return found


def regional(flow: Flow[T], residency: Residency) -> Flow[T]:
    """Run ``flow`` with its identity-side and key requests sent to their subjects' regions.

    ``Located`` statements are consumed here; every other request passes through unchanged
    (clinical reads that fetch the pseudonym also fetch the region, which the join hides).
    """
    router = _Router(residency, stores=ClinicalStores(residency) if residency.clinical else None)
    steps = Steps(flow)
    result: Any = None
    error: BaseException | None = None
    try:
        while True:
            op = steps.advance(result, error)
            if op is None:
                return steps.value
            result, error = None, None
            if isinstance(op, Located):
                router.where.update(op.regions)
                continue
            if isinstance(op, Locate):
                try:
                    yield from router.locate(op.names)
                    result = {n: router.where[n] for n in op.names if n in router.where}
                except GeneratorExit:
                    raise
                except Exception as exc:
                    error = exc
                continue
            try:
                result = yield from router.serve(op)
            except GeneratorExit:
                raise
            except Exception as exc:  # handed back into the flow, which decides
                error = exc
    finally:
        steps.close()
