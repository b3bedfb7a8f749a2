"""Internal. The refusal of writes that would reach a restricted subject, at no extra cost.

A write flow reads the rows it will change before it writes them (to lease them, to name
their subjects for the audit, to delete their identity rows first). ``guarded`` runs such a
flow and has those reads bring the restriction marker too: a row the guard clause selects
throws ``ProcessingRestricted`` into the flow at that read, before anything is written, and
the flow and its audit wrapper handle it as any failed read. Only a write whose rows were not
read first (an unaudited server-side update) costs one probe of its own, and so does a write
reading its rows in several batches (a ``delete_many`` past ``batch_size``): a full first batch
means more may follow, and a restricted row in a later one would be met after the earlier ones
were written, so the guard clause is asked over the cursor's whole filter, once, before the
flow receives the first batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypeVar

from privata_mongo.core.mql.match import compile_filter
from privata_mongo.core.ops import (
    AnyOp,
    Delete,
    Document,
    FetchAll,
    Find,
    FindAndModify,
    Flow,
    NextBatch,
    Query,
    Replace,
    Update,
)
from privata_mongo.core.rights.restriction import (
    RESTRICTION_FIELD,
    Visibility,
    conjoined,
    restricted_error,
)
from privata_mongo.core.schema import PSEUDONYM_FIELD, Side

__all__ = ["guarded"]

T = TypeVar("T")

_WRITES = (Update, Replace, Delete, FindAndModify)


def _inclusive(projection: Mapping[str, Any] | None) -> bool:
    """Whether ``projection`` lists the fields it keeps (the marker must then be added)."""
    if not projection:
        return False
    return any(v not in (0, False) for k, v in projection.items())  # {"_id": 1} keeps ids only


def _covered(filter: Mapping[str, Any], read: list[Mapping[str, Any]], ids: set[str]) -> bool:
    """Whether the rows a write selects were all read (and checked) already.

    A conjunction selects a subset of what each of its parts selects, so one part naming
    only ids already checked covers it (a write re-stating its filter beside the ids it read).
    """
    if any(dict(filter) == dict(f) for f in read):
        return True
    parts = filter.get("$and") if len(filter) == 1 else None
    if isinstance(parts, list):
        return any(isinstance(part, Mapping) and _checked_ids(part, ids) for part in parts)
    return _checked_ids(filter, ids)


def _checked_ids(filter: Mapping[str, Any], ids: set[str]) -> bool:
    """Whether ``filter`` is ``{_id: X}`` or ``{_id: {$in: [...]}}`` of rows already checked."""
    target = filter.get("_id") if len(filter) == 1 else None
    if isinstance(target, Mapping) and set(target) == {"$in"}:
        return all(repr(i) in ids for i in target["$in"])
    return target is not None and not isinstance(target, Mapping) and repr(target) in ids


def guarded(flow: Flow[T], rules: Visibility, model: str) -> Flow[T]:
    """Run the write ``flow``, refusing it at the first restricted row it reads or would write.

    Raises:
        ProcessingRestricted: thrown into ``flow`` (and out of it, unless it handles it).
    """
    guard = rules.guard
    if guard is None:
        return (yield from flow)
    blocked = compile_filter(guard)
    handles: dict[int, tuple[bool, Mapping[str, Any] | None]] = {}  # open clinical cursors:
    # whether the marker was added, and the filter still to probe past a full first batch
    read: list[Mapping[str, Any]] = []
    ids: set[str] = set()
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            op: AnyOp = flow.throw(error) if error is not None else flow.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        result, error = None, None
        sent: AnyOp = op
        added = False
        if isinstance(op, FetchAll | Find) and op.side is Side.CLINICAL:
            added = _inclusive(op.query.projection)
            if added:
                projection = {**dict(op.query.projection or {}), RESTRICTION_FIELD: 1}
                sent = replace(op, query=replace(op.query, projection=projection))
        elif (
            isinstance(op, _WRITES)
            and op.side is Side.CLINICAL
            and not _covered(op.filter, read, ids)
        ):
            try:
                found = yield from _probe(op.filter, guard)
            except Exception as exc:
                error = exc
                continue
            if found:
                error = restricted_error(model, rules.purpose, _pseudonyms(found))
                continue
            read.append(op.filter)
        try:
            result = yield from sent
        except GeneratorExit:
            flow.close()
            raise
        except Exception as exc:
            error = exc
            continue
        rows: list[Document] | None = None
        if isinstance(op, FetchAll) and op.side is Side.CLINICAL:
            rows = result
            read.append(op.query.filter)
        elif isinstance(op, Find) and op.side is Side.CLINICAL:
            handles[id(result)] = (added, op.query.filter)
            read.append(op.query.filter)
        elif isinstance(op, NextBatch) and id(op.handle) in handles:
            added, whole = handles[id(op.handle)]
            handles[id(op.handle)] = (added, None)
            rows = result
            if whole is not None and len(rows) >= op.size > 0 and not any(map(blocked, rows)):
                try:
                    found = yield from _probe(whole, guard)
                except Exception as exc:
                    error = exc
                    continue
                if found:
                    result = None
                    error = restricted_error(model, rules.purpose, _pseudonyms(found))
                    continue
        if rows is not None:
            hit = [r for r in rows if blocked(r)]
            if hit:
                result = None
                error = restricted_error(model, rules.purpose, _pseudonyms(hit))
                continue
            ids.update(repr(r["_id"]) for r in rows if "_id" in r)
            if added:
                result = [{k: v for k, v in r.items() if k != RESTRICTION_FIELD} for r in rows]


def _probe(filter: Mapping[str, Any], guard: Mapping[str, Any]) -> Flow[list[Document]]:
    """One server-side read: a row of ``filter`` that ``guard`` forbids writing, if any."""
    probe = Query(conjoined(filter, guard), projection={"_id": 0, PSEUDONYM_FIELD: 1}, limit=1)
    return (yield from FetchAll(Side.CLINICAL, probe))


def _pseudonyms(rows: list[Document]) -> tuple[str, ...]:
    return tuple(p for r in rows if isinstance(p := r.get(PSEUDONYM_FIELD), str))
