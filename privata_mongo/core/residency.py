"""Data residency: the region of each subject's identity data, and the router sending there.

See ``docs/residency.md``. A region has its own identity store and key vault (and its own master
key), so EU subjects' identity rows and data keys never leave EU infrastructure. The clinical
collection stays where it is: each clinical row records its subject's region next to the
pseudonym (``REGION_FIELD``), written at creation from the region the configured resolver
decided (``region_of``, a pure function of the document), and never changed by an update.

The flows do not know about regions beyond that: ``regional`` wraps a flow and routes its
requests. It learns where subjects live from what the flow states (``Located``, at an insert)
and from the clinical rows the flow reads (their ``REGION_FIELD``, added to projections that
read the pseudonym), so a join reads each batch's identity rows with one request per region
holding some of them. A request it cannot attribute to known subjects (an identity probe on a
searchable field, a count of identity rows) is asked of every region and the answers merged:
round trips grow with the number of regions, never with the number of documents, and the
clinical side keeps doing ordering, skip, limit, counts and ``distinct`` natively. Keys that
belong to no subject (the blind index key, the audit chain keys) stay in the base key vault.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from privata_mongo.core.audit.records import AuditRecord
from privata_mongo.core.failures import WriteFailure
from privata_mongo.core.ops import (
    Aggregate,
    AnyOp,
    AppendAudit,
    Count,
    CreateIndex,
    Delete,
    DiscardKeys,
    Distinct,
    Document,
    Drop,
    DropIndex,
    EstimatedCount,
    Explain,
    FetchAll,
    Find,
    FindAndModify,
    FindErased,
    Flow,
    Gather,
    IndexInformation,
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
    UpdateOutcome,
)
from privata_mongo.core.pseudonym import is_pseudonym
from privata_mongo.core.rights.restriction import conjoined
from privata_mongo.core.schema import PSEUDONYM_FIELD, REGION_FIELD, Side
from privata_mongo.errors import ConfigurationError, RegionUnavailable, UnknownRegion

__all__ = ["Residency", "Wrapping", "region_of", "regional"]

T = TypeVar("T")

_STORE = (
    Find,
    FetchAll,
    Count,
    EstimatedCount,
    Distinct,
    Explain,
    Aggregate,
    Insert,
    Update,
    Replace,
    ReplaceMany,
    Delete,
    FindAndModify,
    CreateIndex,
    DropIndex,
    IndexInformation,
    Drop,
)
_READS = (Find, FetchAll, Count, EstimatedCount, Distinct, Explain, LoadKeys, FindErased)
"""Requests a region may be left out of when the operation allows partial results."""
_FILTERED = (Count, Distinct, Update, Replace, Delete, FindAndModify)
_KEYS = (LoadKeys, StoreKeys, ReplaceKeys, ShredKeys, FindErased, DiscardKeys)


@dataclass(frozen=True, slots=True)
class Wrapping:
    """The master key new data keys of a region's subjects are wrapped with.

    Attributes:
        provider: libmongocrypt's provider name (``local:eu``, ``aws:eu`` …), one per region,
            so a key of an EU subject is never wrapped by a US master key.
        master_key: the provider's master key document (``None`` for a local key).
    """

    provider: str
    master_key: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Residency:
    """The regions of a deployment, as the core sees them: names, resolver and wrapping.

    Attributes:
        regions: the configured region names.
        default: the region of a subject the resolver does not place.
        field_name: a field of the logical document that decides the region (e.g. ``country``).
        values: the region of each value of ``field_name`` (a value that is itself a region name
            needs no entry).
        resolver: a callable deciding the region of a document (``None``: the default), used
            instead of ``field_name``.
        wrapping: how each region's new data keys are wrapped.
        pinned: the regions the operation is restricted to (``within_regions``): its
            queries see only their subjects' documents and touch only their stores (``()``:
            every region).
        partial: the operation's reads may leave out a region that cannot be reached
            (``partial_results``): its subjects' documents come without identity fields, and
            identity conditions match none of them.
        skipped: told each region left out, so the application knows the result is partial.
    """

    regions: tuple[str, ...]
    default: str
    field_name: str | None = None
    values: Mapping[Any, str] = field(default_factory=dict)
    resolver: Callable[[Mapping[str, Any]], str | None] | None = None
    wrapping: Mapping[str, Wrapping] = field(default_factory=dict)
    pinned: tuple[str, ...] = ()
    partial: bool = False
    skipped: Callable[[str], None] | None = None

    @property
    def asked(self) -> tuple[str, ...]:
        """The regions a request that names no subject is asked of."""
        return self.pinned or self.regions


def region_of(residency: Residency, document: Mapping[str, Any]) -> str:
    """The region a new data subject's identity data is stored in.

    Raises:
        UnknownRegion: the resolver named a region that is not configured (the message names
            the configured regions, never the document's value).
    """
    if residency.resolver is not None:
        chosen = residency.resolver(document)
        source = "region_resolver"
    elif residency.field_name is not None:
        value = document.get(residency.field_name)
        chosen = residency.values.get(value) if _hashable(value) else None
        if chosen is None and isinstance(value, str) and value in residency.regions:
            chosen = value
        source = f"region_field '{residency.field_name}'"
    else:
        chosen, source = None, ""
    if chosen is None:
        chosen = residency.pinned[0] if len(residency.pinned) == 1 else residency.default
    if residency.pinned and chosen not in residency.pinned:
        raise UnknownRegion(
            f"{source or 'default_region'} placed a document outside the regions the "
            f"operation is restricted to ({', '.join(residency.pinned)}); create it outside "
            "the within_regions block, or in one of those regions"
        )
    if chosen not in residency.regions:
        raise UnknownRegion(
            f"{source} placed a document in a region that is not configured; configured "
            f"regions: {', '.join(residency.regions)} (map the value with region_values, or "
            "return one of these names)"
        )
    return chosen


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


@dataclass(slots=True)
class _Fanned:
    """A cursor over one identity query asked of several regions, read region after region."""

    handles: list[tuple[str, object]]
    position: int = 0


@dataclass(slots=True)
class _Router:
    residency: Residency
    where: dict[str, str] = field(default_factory=dict)
    clinical: set[int] = field(default_factory=set)  # ids of open clinical cursors

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
            rows = yield from FetchAll(
                Side.CLINICAL,
                Query(
                    {PSEUDONYM_FIELD: {"$in": unknown}},
                    projection={"_id": 0, PSEUDONYM_FIELD: 1, REGION_FIELD: 1},
                ),
            )
            self.learn(rows)

    # -- routing -------------------------------------------------------------------------------

    def serve(self, op: AnyOp) -> Flow[Any]:
        if isinstance(op, NextBatch) and isinstance(op.handle, _Fanned):
            return (yield from self._next(op.handle, op.size))
        if isinstance(op, _KEYS):
            return (yield from self._keys(op))
        if isinstance(op, _STORE) and op.side is Side.IDENTITY:
            return (yield from self._identity(op))
        sent: AnyOp = op
        if isinstance(op, AppendAudit):
            sent = AppendAudit(tuple(self._regioned(r) for r in op.records))
        elif isinstance(op, FetchAll | Find) and op.side is Side.CLINICAL:
            query = replace(op.query, projection=_linked(op.query.projection))
            sent = replace(op, query=replace(query, filter=self._pin(query.filter)))
        elif isinstance(op, Insert | Replace | ReplaceMany | FindAndModify) and (
            op.side is Side.CLINICAL
        ):
            sent = yield from self._stamped(op)
        if isinstance(sent, _FILTERED) and sent.side is Side.CLINICAL and self.residency.pinned:
            sent = replace(sent, filter=self._pin(sent.filter))
        elif isinstance(op, Aggregate) and op.side is Side.CLINICAL and self.residency.pinned:
            sent = replace(op, pipeline=({"$match": self._pin({})}, *op.pipeline))
        result: Any = yield from sent
        if isinstance(op, FetchAll) and op.side is Side.CLINICAL:
            return self.learned(result)
        if isinstance(op, Find | Aggregate) and op.side is Side.CLINICAL:
            self.clinical.add(id(result))
        elif isinstance(op, NextBatch) and id(op.handle) in self.clinical:
            return self.learned(result)
        elif isinstance(op, FindAndModify) and op.side is Side.CLINICAL and result:
            return self.learned((result,))[0]
        return result

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
            found = [_ids(f) for f, _ in op.pairs]
            return None if any(f is None for f in found) else [i for f in found for i in f or ()]
        if isinstance(op, Find | FetchAll | Explain):
            return _ids(op.query.filter)
        if isinstance(op, Count | Distinct | Update | Replace | Delete | FindAndModify):
            return _ids(op.filter)
        return None

    def _identity(self, op: AnyOp) -> Flow[Any]:
        targets = self._targets(op)
        if isinstance(op, Insert):
            yield from self.locate([t for t in targets or () if is_pseudonym(t)])
            return (yield from self._insert(op))
        if targets is None:
            regions = list(self.residency.asked)
        else:
            known, unknown = self.regions_of(targets)
            regions = list(self.residency.asked) if unknown else list(known)
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
        if len(regions) == 1 and not isinstance(op, _READS):
            return (yield from InRegion(regions[0], op))
        answered = yield from self._gather([InRegion(region, op) for region in regions])
        if isinstance(op, Find | Aggregate):
            return _Fanned(answered)
        results = [result for _, result in answered]
        if len(regions) == 1 and results:
            return results[0]
        return _merged(op, results) if results else _nothing(op)

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
            if not self.residency.partial or not all(isinstance(a.op, _READS) for a in asked):
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

    def _next(self, fanned: _Fanned, size: int) -> Flow[list[Document]]:
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
        runs: list[tuple[str, list[int]]] = []
        for index, document in enumerate(op.documents):
            name = document.get("_id")
            region = self.where.get(name, self.residency.default) if isinstance(name, str) else ""
            region = region or self.residency.default
            if runs and runs[-1][0] == region:
                runs[-1][1].append(index)
            else:
                runs.append((region, [index]))
        if len(runs) == 1:
            only: InsertOutcome = yield from InRegion(runs[0][0], op)
            return only
        failures: list[WriteFailure] = []
        for region, indexes in runs:
            part = replace(op, documents=tuple(op.documents[i] for i in indexes))
            outcome: InsertOutcome = yield from InRegion(region, part)
            failures.extend(replace(f, index=indexes[f.index]) for f in outcome.failures)
            if op.ordered and outcome.failures:
                break
        return InsertOutcome(tuple(failures))

    def _keys(self, op: AnyOp) -> Flow[Any]:
        if isinstance(op, LoadKeys):
            return (yield from self._load(op))
        if isinstance(op, StoreKeys | ReplaceKeys):
            groups: dict[str | None, list[Mapping[str, Any]]] = {}
            owners = [_key_name(d) for d in op.documents]
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
                for name in {_key_name(d) for d in held}:
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
            for _, part in (yield from self._gather(asked)):
                found.extend(part)
        return found


def _key_name(document: Mapping[str, Any]) -> str | None:
    names = document.get("keyAltNames") or ()
    name = next(iter(names), None)
    return name if isinstance(name, str) and is_pseudonym(name) else None


def _ids(filter: Mapping[str, Any]) -> list[str] | None:
    """The pseudonyms a filter on identity rows is restricted to (``None``: any row)."""
    value = filter.get("_id")
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping) and set(value) == {"$in"}:
        return list(value["$in"])
    for clause in filter.get("$and", ()):
        found = _ids(clause)
        if found is not None:
            return found
    return None


def _linked(projection: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A clinical projection that reads the region wherever it reads the pseudonym."""
    if not projection or not projection.get(PSEUDONYM_FIELD) or REGION_FIELD in projection:
        return projection
    return {**projection, REGION_FIELD: 1}


def _nothing(op: AnyOp) -> Any:
    """The answer of no region at all (every region asked was left out)."""
    if isinstance(op, Count | EstimatedCount):
        return 0
    if isinstance(op, Explain):
        return {}
    return []


def _merged(op: AnyOp, results: list[Any]) -> Any:
    """One answer from the answers of several regions, as one store would have given it."""
    if isinstance(op, FetchAll):
        rows = [r for part in results for r in part]
        return rows[: op.query.limit] if op.query.limit > 0 else rows
    if isinstance(op, Count | EstimatedCount | Delete | ReplaceMany):
        return sum(results)
    if isinstance(op, Distinct):
        values: list[Any] = []
        for part in results:
            values.extend(v for v in part if v not in values)
        return values
    if isinstance(op, Update | Replace):
        return UpdateOutcome(
            sum(r.matched for r in results),
            sum(r.modified for r in results),
            next((r.upserted_id for r in results if r.upserted_id is not None), None),
        )
    if isinstance(op, FindAndModify):
        return None
    return results[0]


def regional(flow: Flow[T], residency: Residency) -> Flow[T]:
    """Run ``flow`` with its identity-side and key requests sent to their subjects' regions.

    ``Located`` statements are consumed here; every other request passes through unchanged
    (clinical reads that fetch the pseudonym also fetch the region, which the join hides).
    """
    router = _Router(residency)
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
