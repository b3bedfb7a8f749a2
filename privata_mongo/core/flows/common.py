"""Steps every flow shares: resolving probes, reading identity rows, joining batches.

Identity rows pass through ``unseal`` on their way in and ``seal`` on their way out; these are
the only places the storage format (encryption, ``keys``) touches the flows. Server predicates
on identity rows pass through ``keys.blind_filter``, projections through ``keys.project_rows``.

``touched``, ``linked`` and ``computed_from`` are how flows state, where they know it, whom an
operation reached: the audit records what they say and nothing else.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from privata_mongo.core import cache
from privata_mongo.core.crypto.keys import (
    blind_filter,
    project_rows,
    seal_rows,
    stored_projection,
    unseal_rows,
)
from privata_mongo.core.mql.budget import Deadline, deadline_from
from privata_mongo.core.mql.match import UnsupportedOperator, compile_filter
from privata_mongo.core.ops import (
    Document,
    Effect,
    FetchAll,
    Flow,
    Intends,
    Pause,
    Query,
    Touched,
    Unfinished,
)
from privata_mongo.core.projection import ProjectionPlan, including
from privata_mongo.core.rights.restriction import RESTRICTION_FIELD, conjoined
from privata_mongo.core.routing import FilterPlan, Probe, plan_filter, substitute
from privata_mongo.core.schema import (
    LEASE_FIELD,
    ORDER_FIELD,
    PSEUDONYM_FIELD,
    VERSION_FIELD,
    Side,
)
from privata_mongo.core.split import identity_values, join
from privata_mongo.errors import UnsupportedQuery

from .context import Context
from .lease import BACKOFF_CAP, BACKOFF_START
from .region_pin import among, probed_regions

logger = logging.getLogger(__name__)

__all__ = [
    "READ_AGAIN",
    "Kept",
    "chunks",
    "computed_from",
    "deleted_meanwhile",
    "fetch_identities",
    "intends",
    "join_batch",
    "joined_projection",
    "linked",
    "operation_deadline",
    "refuse_collation",
    "resolve",
    "resolve_filter",
    "seal",
    "stamped",
    "strip_link",
    "too_many",
    "touched",
    "unfinished",
    "unseal",
    "untorn",
    "without_deleted",
]

READ_AGAIN = 2
"""Reads of a document whose halves' versions differ while no writer holds it, before it is
returned as it is (its rows were written outside the write protocol)."""


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), max(size, 1)):
        yield items[start : start + size]


def touched(
    ctx: Context,
    subjects: Iterable[str] = (),
    fields: Iterable[str] = (),
    *,
    written: int = 0,
    effect: Effect = "write",
) -> Flow[None]:
    """State to the audit what this step reached (see ``ops.Touched``); nothing if unaudited."""
    if not ctx.audit:
        return
    declared = Touched(tuple(subjects), frozenset(fields), written, effect)
    if declared.subjects or declared.fields or declared.written:
        yield declared


def intends(
    ctx: Context,
    subjects: Iterable[str],
    fields: Iterable[str] = (),
    kind: Literal["create", "update", "delete"] = "update",
) -> Flow[None]:
    """State whom the next writes will change, before they run (see ``ops.Intends``).

    Nothing if unaudited. Raises ``AuditUnavailable`` (thrown in by the audit wrapper) when the
    intent cannot be stored: the caller has written nothing yet and lets it propagate.
    """
    if not ctx.audit:
        return
    declared = Intends(tuple(subjects), frozenset(fields), kind)
    if declared.subjects:
        yield declared


def unfinished(ctx: Context) -> Flow[None]:
    """Say that the operation's intents must stay if it fails now (``ops.Unfinished``)."""
    if ctx.audit:
        yield Unfinished()


def linked(rows: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The pseudonyms the clinical ``rows`` link to: the data subjects those rows belong to."""
    return tuple(p for row in rows if isinstance(p := row.get(PSEUDONYM_FIELD), str))


def computed_from(
    rows: Sequence[Mapping[str, Any]], results: Iterable[Mapping[str, Any]]
) -> tuple[str, ...]:
    """The subjects whose ``rows`` (read with their link) the in-process ``results`` came from.

    A result that is one of the rows (same ``_id``: matched, sorted, reshaped) came from its
    own subject; if any result is not (a group, a computed document), every row read may have
    contributed, and every subject read is named.
    """
    by_id = {
        _key(row["_id"]): p
        for row in rows
        if "_id" in row and isinstance(p := row.get(PSEUDONYM_FIELD), str)
    }
    found: list[str] = []
    for result in results:
        pseudonym = by_id.get(_key(result["_id"])) if "_id" in result else None
        if pseudonym is None:
            return linked(rows)
        found.append(pseudonym)
    return tuple(found)


def _key(value: Any) -> Any:
    """A dictionary key for any ``_id`` (documents and lists compare by their repr)."""
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return (type(value).__name__, value)


def unseal(ctx: Context, rows: list[Document]) -> Flow[list[Document]]:
    """Turn stored identity rows into plain identity documents (decrypting, ``keys``)."""
    return (yield from unseal_rows(ctx, rows))


def seal(ctx: Context, rows: list[Document], *, fresh: bool = False) -> Flow[list[Document]]:
    """Turn plain identity documents into the form stored in the identity collection.

    ``fresh``: the rows belong to new pseudonyms (inserts), whose keys need no lookup.
    """
    return (yield from seal_rows(ctx, rows, fresh=fresh))


def strip_link(document: Mapping[str, Any]) -> Document:
    """A clinical document without the internal pseudonym link and version."""
    hidden = (PSEUDONYM_FIELD, VERSION_FIELD, RESTRICTION_FIELD)
    return {k: v for k, v in document.items() if k not in hidden}


def too_many(ctx: Context, what: str, fields: Iterable[str]) -> UnsupportedQuery:
    """The error for a query that would read more identity rows than the scan limit allows."""
    names = ", ".join(sorted(fields)) or "identity fields"
    limit = ctx.schema.scan_limit
    return UnsupportedQuery(
        f"{ctx.schema.model}: {what} on {names} is evaluated in the process and would read "
        f"more than {limit} documents; add a condition on a clinical field or an equality "
        "condition on an identity field to narrow it, or raise the limit "
        "(meta privacy 'scan_limit' or privata_mongo.configure(scan_limit=...))",
        model=ctx.schema.model,
        field=names,
    )


def refuse_collation(
    ctx: Context, fields: Iterable[str], options: Mapping[str, Any] | None
) -> None:
    """Refuse a collation that would have to apply to identity fields.

    Identity values are compared in the process or through blind-index terms, byte for byte:
    a collation (case- or accent-insensitive matching, numeric ordering) cannot reach them, and
    ignoring it would return other documents, in another order, than the native query.

    Raises:
        UnsupportedQuery: ``options`` carry a collation and ``fields`` is not empty.
    """
    if not options or options.get("collation") is None:
        return
    names = sorted(set(fields))
    if names:
        raise UnsupportedQuery(
            f"{ctx.schema.model}: a collation cannot apply to the identity fields "
            f"{', '.join(names)} (they are matched and sorted exactly, in the process or by "
            "blind index); drop the collation, or filter and sort on clinical fields",
            model=ctx.schema.model,
            field=names[0],
        )


def operation_deadline(ctx: Context, options: Mapping[str, Any] | None) -> Deadline:
    """When in-process work of an operation starting now must stop (``maxTimeMS``, CSOT).

    The limit is the smallest of the operation's ``maxTimeMS`` and the client-side timeout in
    force when it started (``Context.time_limit_ms``).
    """
    if ctx.time_limit_ms is None:
        return deadline_from(ctx.now, options)
    return deadline_from(ctx.now, {**(options or {}), "timeoutMS": ctx.time_limit_ms})


@dataclass(slots=True)
class Kept:
    """Identity rows a read's probe found, as stored, for the join of the same read.

    A find by a searchable field (``email``) finds its subjects' identity rows by their blind
    terms, then joins the clinical documents with those very rows: the probe reads them whole
    (with the join's ``projection``) instead of reading their ids and the rows again. Only
    reads keep them, and only a probe matching at most one join batch (``batch_size``); a
    write reads the rows it changes under its lease. The join still checks each row's version
    against its clinical document (``untorn``), so a row changed in between is read again.
    """

    projection: Mapping[str, Any] | None
    rows: dict[str, Document] = field(default_factory=dict)


def resolve(
    ctx: Context,
    plan: FilterPlan,
    options: Mapping[str, Any] | None = None,
    keep: Kept | None = None,
) -> Flow[dict[str, Any]]:
    """Resolve every probe of ``plan`` and return the purely clinical filter.

    ``options`` are the operation's: a collation there is refused if the filter has identity
    conditions (``refuse_collation``). ``keep``: a read that joins the identity rows its
    probes find asks for them whole, once (``Kept``).
    """
    refuse_collation(ctx, plan.identity_fields if plan.probes else (), options)
    sets: list[list[str]] = []
    if plan.probes:
        logger.debug(
            "%s: %d identity probe(s) on %s, %d evaluated in the process",
            ctx.schema.model,
            len(plan.probes),
            ", ".join(sorted(plan.identity_fields)),
            sum(p.process is not None for p in plan.probes),
        )
    deadline = operation_deadline(ctx, options)
    regions = yield from probed_regions(ctx, plan)
    for probe in plan.probes:
        sets.append((yield from _resolve_probe(ctx, probe, deadline, keep, regions)))  # noqa: PERF401 - a sub-flow
    resolved: dict[str, Any] = substitute(plan.template, sets)
    return restricted(ctx, resolved)


def restricted(ctx: Context, clinical_filter: dict[str, Any]) -> dict[str, Any]:
    """``clinical_filter`` under the operation's restriction clauses (``Context.restriction``).

    Subjects absent under the operation's purpose are left out of the filter, so the server's
    counts, pages and ``distinct`` agree with what is returned. (A write's refusal of
    restricted subjects is ``core.rights.guard``, which checks the rows the write reads.)
    """
    rules = ctx.restriction
    if rules is None:
        return clinical_filter
    if rules.visible is None:
        return clinical_filter
    return conjoined(clinical_filter, rules.visible)


def resolve_filter(ctx: Context, filter: Mapping[str, Any] | None) -> Flow[dict[str, Any]]:
    """Plan and resolve a logical filter in one step."""
    return (yield from resolve(ctx, plan_filter(ctx.schema, filter)))


def _resolve_probe(
    ctx: Context,
    probe: Probe,
    deadline: Deadline,
    keep: Kept | None = None,
    regions: tuple[str, ...] | None = None,
) -> Flow[list[str]]:
    """The pseudonyms ``probe`` matches; ``regions``: the only regions that can hold them."""
    schema = ctx.schema
    if probe.process is None:
        pushed = yield from blind_filter(ctx, probe.server)
        projection = {"_id": 1} if keep is None else stored_projection(ctx, keep.projection)
        rows = yield from among(
            regions,
            FetchAll(Side.IDENTITY, Query(pushed, projection=projection, limit=ctx.max_in + 1)),
        )
        if len(rows) > ctx.max_in:
            raise UnsupportedQuery(
                f"{schema.model}: the condition on {', '.join(sorted(probe.fields))} matches more "
                f"than {ctx.max_in} data subjects; add a condition on a clinical field",
                model=schema.model,
                field=", ".join(sorted(probe.fields)),
            )
        if keep is not None and len(rows) <= ctx.batch_size:
            keep.rows.update((row["_id"], row) for row in rows)
        return [row["_id"] for row in rows]
    try:
        matcher = compile_filter(probe.process, deadline)
    except UnsupportedOperator as exc:
        raise UnsupportedQuery(
            f"{schema.model}: {exc.operator} cannot be evaluated on identity fields "
            f"({', '.join(sorted(probe.fields))}); use query operators instead",
            model=schema.model,
            field=", ".join(sorted(probe.fields)),
        ) from None
    server: dict[str, Any] = yield from blind_filter(ctx, probe.server)
    if probe.narrowing is not None:
        linked = yield from FetchAll(
            Side.CLINICAL,
            Query(
                probe.narrowing,
                projection={PSEUDONYM_FIELD: 1, "_id": 0},
                limit=schema.scan_limit + 1,
            ),
        )
        if len(linked) <= schema.scan_limit:
            candidates = {
                "_id": {"$in": [r[PSEUDONYM_FIELD] for r in linked if PSEUDONYM_FIELD in r]}
            }
            server = {"$and": [candidates, server]} if server else candidates
    projection = stored_projection(ctx, dict.fromkeys(sorted(probe.fields), 1))
    rows = yield from among(
        regions,
        FetchAll(Side.IDENTITY, Query(server, projection=projection, limit=schema.scan_limit + 1)),
    )
    if len(rows) > schema.scan_limit:
        raise too_many(ctx, "a condition", probe.fields)
    plain = yield from unseal(ctx, rows)
    deadline.check()
    matched = [row["_id"] for row in plain if matcher(row)]  # the matcher checks the deadline
    logger.debug(
        "%s: in-process condition on %s read %d identity rows, %d matched",
        schema.model,
        ", ".join(sorted(probe.fields)),
        len(rows),
        len(matched),
    )
    return matched


def fetch_identities(
    ctx: Context,
    pseudonyms: Sequence[str],
    projection: Mapping[str, Any] | None = None,
    *,
    cached: bool = True,
    kept: Mapping[str, Document] | None = None,
) -> Flow[dict[str, Document]]:
    """Identity documents by pseudonym, one read per ``ctx.batch_size`` pseudonyms.

    With a cache (``core.cache``), the rows it holds as stored are used and the others read
    and offered to it; ``cached=False`` reads every row from the store (a reader that found
    a document torn reads both halves where they are written). ``kept``: rows as stored that
    the operation's probe read already (``Kept``), used first.
    """
    found: dict[str, Document] = {}
    unique = list(dict.fromkeys(pseudonyms))
    if cached and kept:
        rows = [kept[p] for p in unique if p in kept]
        unique = [p for p in unique if p not in kept]
        for row in project_rows(ctx, (yield from unseal(ctx, rows)), projection):
            found[row["_id"]] = row
    if cached:
        rows, unique = yield from cache.cached_rows(ctx, unique)
        for row in project_rows(ctx, (yield from unseal(ctx, rows)), projection):
            found[row["_id"]] = row
    for chunk in chunks(unique, ctx.batch_size):
        rows = yield from FetchAll(
            Side.IDENTITY,
            # One server round trip for the whole chunk: n ids match at most n rows, and a
            # limit lets the server close the cursor instead of waiting for a getMore.
            Query(
                {"_id": {"$in": list(chunk)}},
                projection=stored_projection(ctx, projection),
                limit=len(chunk),
                batch_size=len(chunk),
            ),
        )
        yield from cache.keep_rows(ctx, rows)
        for row in project_rows(ctx, (yield from unseal(ctx, rows)), projection):
            found[row["_id"]] = row
    return found


def with_order(projection: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """An identity projection that also reads the recorded key order, which ``join`` follows.

    Only an inclusion needs it added: an exclusion or no projection reads it anyway.
    """
    if not projection:
        return projection
    including = any(
        (isinstance(v, Mapping) and "$elemMatch" in v) or (not isinstance(v, Mapping) and v)
        for k, v in projection.items()
        if k != "_id"
    )
    return {**projection, ORDER_FIELD: 1} if including else projection


def joined_projection(plan: ProjectionPlan) -> Mapping[str, Any] | None:
    """The identity fields ``join_batch`` reads for ``plan`` (bookkeeping included)."""
    return including(with_order(plan.identity), VERSION_FIELD, LEASE_FIELD)


def join_batch(
    ctx: Context,
    documents: Sequence[Mapping[str, Any]],
    plan: ProjectionPlan,
    versions: bool = False,
    kept: Kept | None = None,
) -> Flow[list[Document]]:
    """Join a batch of clinical documents with their identity rows in one read.

    ``versions``: the clinical rows were read with ``VERSION_FIELD`` (``stamped``), so a
    document read across a concurrent update is detected and read again (``untorn``).
    ``kept``: the rows the read's probe found already (``Kept``).
    """
    if not plan.fetch_identity:
        return [strip_link(d) for d in documents]
    pseudonyms = [d[PSEUDONYM_FIELD] for d in documents if PSEUDONYM_FIELD in d]
    identities: dict[str, Document] = {}
    wanted = joined_projection(plan)
    if pseudonyms:
        identities = yield from fetch_identities(
            ctx, pseudonyms, wanted, kept=kept.rows if kept is not None else None
        )
    if versions and identities:
        documents, identities = yield from untorn(ctx, documents, identities, plan)
    documents = yield from without_deleted(ctx, documents, identities)
    joined = [join(d, identities.get(d.get(PSEUDONYM_FIELD, "")), ctx.schema) for d in documents]
    if plan.hide_id:
        for document in joined:
            document.pop("_id", None)
    return joined


def deleted_meanwhile(
    ctx: Context, pseudonyms: Iterable[str], identities: Mapping[str, Document]
) -> Flow[set[str]]:
    """The subjects among ``pseudonyms`` whose document was deleted since its clinical read.

    A delete removes the clinical row first, then the identity row, then shreds the key
    (``write.delete_rows``). A reader that read a clinical row just before the delete can find
    its identity row gone, or its key shredded (the row reads without identity values), by
    the time it reads them: the document was deleted in between. So the subjects whose
    identity row holds no identity values are looked up again in the clinical collection (by
    the link: a pseudonym names one document): those with no clinical row left were deleted,
    and the reader leaves their documents out, as a read after the delete would. Those still
    there are documents without identity values (an erased subject, whose documents erasure
    kept pseudonymised; a document that never had identity values), returned as they are.

    One more clinical read (the links only) per batch holding such subjects; none otherwise.
    """
    suspects = list(
        dict.fromkeys(p for p in pseudonyms if not identity_values(identities.get(p) or {}))
    )
    if not suspects:
        return set()
    rows = yield from FetchAll(
        Side.CLINICAL,
        Query({PSEUDONYM_FIELD: {"$in": suspects}}, projection={PSEUDONYM_FIELD: 1, "_id": 0}),
    )
    gone = set(suspects) - {r.get(PSEUDONYM_FIELD) for r in rows}
    if gone:
        logger.debug("%s: %d document(s) deleted while read, left out", ctx.schema.model, len(gone))
    return gone


def without_deleted(
    ctx: Context, documents: Sequence[Mapping[str, Any]], identities: Mapping[str, Document]
) -> Flow[list[Mapping[str, Any]]]:
    """``documents`` without those deleted between their two reads (``deleted_meanwhile``)."""
    gone = yield from deleted_meanwhile(ctx, linked(documents), identities)
    if not gone:
        return list(documents)
    return [d for d in documents if d.get(PSEUDONYM_FIELD) not in gone]


def stamped(projection: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A clinical projection that also reads the version a reader compares (``untorn``)."""
    return including(projection, VERSION_FIELD)


def _torn(document: Mapping[str, Any], identities: Mapping[str, Document]) -> bool:
    identity = identities.get(document.get(PSEUDONYM_FIELD, ""))
    return identity is not None and document.get(VERSION_FIELD) != identity.get(VERSION_FIELD)


def _held(row: Mapping[str, Any], now: Any) -> bool:
    lease = row.get(LEASE_FIELD)
    return isinstance(lease, Mapping) and lease.get("x") is not None and lease["x"] > now


def untorn(
    ctx: Context,
    documents: Sequence[Mapping[str, Any]],
    identities: dict[str, Document],
    plan: ProjectionPlan,
) -> Flow[tuple[list[Mapping[str, Any]], dict[str, Document]]]:
    """Read again the documents whose two halves were read across a concurrent update.

    A writer under lease gives both halves of a document the same version, the identity
    half first; a clinical row and an identity row with unequal versions were therefore read
    on either side of an update (or during one). While the identity row is held, the reader
    waits for the writer (jittered back-off); once it is free, one more read of both halves is
    whole, unless further updates completed between the two reads again, which a busy
    document's readers meet repeatedly: while the versions keep changing from one read to
    the next, writers are at work and the reader goes on reading. Only a pair torn the same
    way twice in a row (written by other means than an update, such as a crashed writer or an
    operator's repair) is read again at most ``READ_AGAIN`` times and then returned as it is.
    Waiting and reading again are bounded together by ``write_wait``. A document deleted
    meanwhile is left out, as a read after the delete would.
    """
    current = list(documents)
    until = None
    attempt = quick = 0
    previous: dict[str, tuple[Any, Any]] = {}
    while True:
        torn = {repr(d["_id"]) for d in current if "_id" in d and _torn(d, identities)}
        if not torn:
            return current, identities
        now = ctx.now()
        until = until or now + datetime.timedelta(seconds=ctx.write_wait)
        if now >= until:
            logger.warning(
                "%s: %d document(s) stayed torn while writers ran; returned as read",
                ctx.schema.model,
                len(torn),
            )
            return current, identities
        versions = {
            repr(d["_id"]): (
                d.get(VERSION_FIELD),
                identities[d[PSEUDONYM_FIELD]].get(VERSION_FIELD),
            )
            for d in current
            if repr(d.get("_id")) in torn
        }
        if any(
            _held(identities[d[PSEUDONYM_FIELD]], now)
            for d in current
            if repr(d.get("_id")) in torn
        ):
            yield Pause(min(BACKOFF_CAP, BACKOFF_START * 2 ** min(attempt, 16)) * ctx.jitter())
            attempt += 1
        else:
            if versions != previous:
                quick = 0  # torn anew since the last read: an update completed in between
            if quick >= READ_AGAIN:
                return current, identities
            quick += 1
        previous = versions
        rows = yield from FetchAll(
            Side.CLINICAL,
            Query(
                {"_id": {"$in": [d["_id"] for d in current if repr(d.get("_id")) in torn]}},
                projection=stamped(plan.clinical),
            ),
        )
        fresh = {repr(r["_id"]): r for r in rows}
        linked_again = [r[PSEUDONYM_FIELD] for r in rows if PSEUDONYM_FIELD in r]
        # A cached row older than its clinical half reads as torn too: read where written.
        yield from cache.forget_rows(ctx, linked_again)
        identities.update(
            (
                yield from fetch_identities(
                    ctx,
                    linked_again,
                    joined_projection(plan),
                    cached=False,
                )
            )
        )
        current = [
            fresh[repr(d["_id"])] if repr(d.get("_id")) in torn else d
            for d in current
            if repr(d.get("_id")) not in torn or repr(d["_id"]) in fresh
        ]
