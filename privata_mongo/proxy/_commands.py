"""Internal. Database commands on split collections, as calls of the split collection's methods.

``Database.command("count", "patient", query=...)`` would run on the clinical half alone and
answer wrongly without a word (identity fields are not there, ``_pseudonym`` is). So a command
whose value names a split collection is translated, through one table, into the pymongo method
of the split collection that does the same thing, and the method's result is shaped as the
server's reply (``{"n": ..., "ok": 1.0}``, a ``cursor`` document with a ``firstBatch`` ...).
A command the table cannot translate exactly is refused with ``UnsupportedQuery`` naming it
and the remedy; commands on other collections and admin commands are not translated at all
(``translate`` answers ``None``) and go to the server unchanged.

The translation is data: a ``Call`` names the method, its arguments and how its result (a
cursor's documents, drained) becomes the reply, so the sync and async databases share it and
differ only in awaiting the call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bson.son import SON
from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, ReturnDocument, UpdateMany
from pymongo import UpdateOne as PyUpdateOne
from pymongo.errors import BulkWriteError

from privata_mongo.errors import UnsupportedQuery

if TYPE_CHECKING:
    from privata_mongo.proxy.database import DatabaseBase

__all__ = ["Call", "command_document", "refuse_split_pipeline", "translate"]

Reply = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Call:
    """One method call on a split collection that does what a command asks.

    Attributes:
        collection: the split collection's name.
        method: the name of its pymongo method.
        args: positional arguments.
        kwargs: keyword arguments.
        reply: turns the method's result (a cursor's documents as a list, when ``cursor``) into
            the server's reply to the command.
        cursor: the method returns a cursor, to be drained before ``reply``.
        bulk: a ``BulkWriteError`` is an answer (``ok: 1`` with ``writeErrors``), as the server
            reports write errors of an insert, update or delete command.
    """

    collection: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    reply: Callable[[Any], Reply]
    cursor: bool = False
    bulk: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def failed(self, error: BulkWriteError) -> Reply:
        """The server's reply to a write command some of whose statements failed."""
        return _bulk_reply(self.extra["kind"], error.details, failed=True)


def command_document(
    command: str | Mapping[str, Any], value: Any, kwargs: Mapping[str, Any]
) -> SON[str, Any]:
    """The command document pymongo would send: ``{command: value, **kwargs}`` or a copy."""
    if isinstance(command, str):
        spec = SON([(command, value)])
        spec.update(kwargs)
        return spec
    return SON(command)


def refuse_split_pipeline(database: DatabaseBase, pipeline: Any, where: str) -> None:
    """A database-level pipeline that joins or writes a split collection is refused."""
    if not isinstance(pipeline, Sequence):
        return
    named = database.split_targets(pipeline) | _written_split(database, pipeline)
    if named:
        name = sorted(named)[0]
        raise UnsupportedQuery(
            f"{where}: the pipeline reads or writes the split collection {name!r}, which the "
            f"server holds in two halves; run it on the collection (database[{name!r}]"
            ".aggregate(...)) so that its documents are joined",
            model=_model(database, name),
        )


def translate(database: DatabaseBase, spec: Mapping[str, Any]) -> Call | None:
    """The split collection's method call that runs ``spec``, or ``None`` to send it unchanged.

    Raises:
        UnsupportedQuery: the command targets a split collection (or would write or read one
            from the server side) and cannot be translated exactly.
    """
    if not spec:
        return None
    name = next(iter(spec))
    target = spec[name]
    lowered = name.lower()
    if lowered in _BY_SCOPE:
        _refuse_by_scope(database, name, spec)
        return None
    if lowered == "create" and isinstance(spec.get("viewOn"), str):
        source = spec["viewOn"]
        if database.schema_of(source) is not None:
            raise _refused(
                database,
                source,
                "create",
                "a view over a split collection would show its clinical half alone",
                "read the collection through the wrapper (find or aggregate) instead of a view",
            )
        refuse_split_pipeline(database, spec.get("pipeline"), "create (view)")
        return None
    if lowered == "aggregate" and not isinstance(target, str):
        refuse_split_pipeline(database, spec.get("pipeline"), "aggregate")
        return None
    if not isinstance(target, str) or database.schema_of(target) is None:
        if lowered == "aggregate" and isinstance(target, str) and _reaches_split(database, spec):
            # the collection's own aggregate joins and writes split collections through them
            return _aggregate(database, name, target, spec)
        return None
    if lowered in _PASSED:
        return None
    build = _TABLE.get(lowered)
    if build is None:
        remedy = _REMEDIES.get(lowered, _DEFAULT_REMEDY)
        raise _refused(database, target, name, "cannot be run on a split collection", remedy)
    return build(database, name, target, spec)


# ---------------------------------------------------------------------------------------------
# The table: command name → method call and reply
# ---------------------------------------------------------------------------------------------


def _options(
    spec: Mapping[str, Any],
    name: str,
    target: str,
    database: DatabaseBase,
    known: Mapping[str, str],
) -> dict[str, Any]:
    """The command's fields as the method's keyword arguments; an unknown field is refused."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key == name or key in _IGNORED:
            continue
        if key not in known:
            raise _refused(
                database,
                target,
                name,
                f"with the field {key!r} is not translated for a split collection",
                f"call the collection's own method (database[{target!r}]) with that option",
            )
        if known[key]:
            out[known[key]] = value
    return out


def _count(database: DatabaseBase, name: str, target: str, spec: Mapping[str, Any]) -> Call:
    options = _options(spec, name, target, database, _COUNT_FIELDS)
    query = options.pop("filter", None) or {}
    for key in ("limit", "skip"):
        if key in options:
            options[key] = abs(int(options[key]))
            if not options[key]:
                del options[key]
    return Call(target, "count_documents", (query,), options, lambda n: {"n": n, "ok": 1.0})


def _distinct(database: DatabaseBase, name: str, target: str, spec: Mapping[str, Any]) -> Call:
    options = _options(spec, name, target, database, _DISTINCT_FIELDS)
    key = options.pop("key")
    query = options.pop("filter", None)
    return Call(target, "distinct", (key, query), options, lambda v: {"values": v, "ok": 1.0})


def _find(database: DatabaseBase, name: str, target: str, spec: Mapping[str, Any]) -> Call:
    options = _options(spec, name, target, database, _FIND_FIELDS)
    query = options.pop("filter", None) or {}
    if "sort" in options:
        options["sort"] = list(dict(options["sort"]).items())
    if "limit" in options:
        options["limit"] = abs(int(options["limit"]))
    if options.pop("single_batch", False) and "limit" not in options:
        options["limit"] = 1
    return Call(target, "find", (query,), options, _cursor_reply(database, target), cursor=True)


def _aggregate(database: DatabaseBase, name: str, target: str, spec: Mapping[str, Any]) -> Call:
    if spec.get("explain"):
        raise _refused(
            database,
            target,
            name,
            "with explain would show the plan of the clinical half only",
            f"call database[{target!r}].aggregate(...) and read its results",
        )
    options = _options(spec, name, target, database, _AGGREGATE_FIELDS)
    pipeline = options.pop("pipeline", [])
    return Call(
        target, "aggregate", (pipeline,), options, _cursor_reply(database, target), cursor=True
    )


def _find_and_modify(
    database: DatabaseBase, name: str, target: str, spec: Mapping[str, Any]
) -> Call:
    options = _options(spec, name, target, database, _FIND_AND_MODIFY_FIELDS)
    query = options.pop("filter", None) or {}
    if options.pop("upsert", False):
        raise _refused(
            database,
            target,
            name,
            "with upsert cannot report the upserted id in lastErrorObject",
            f"call database[{target!r}].find_one_and_update(..., upsert=True)",
        )
    if "sort" in options:
        options["sort"] = list(dict(options["sort"]).items())
    remove, update = options.pop("remove", False), options.pop("update", None)
    new = options.pop("new", False)
    if remove:
        if update is not None:
            raise _refused(
                database, target, name, "with both remove and update", "choose one of them"
            )
        return Call(
            target,
            "find_one_and_delete",
            (query,),
            options,
            lambda value: {
                "lastErrorObject": {"n": int(value is not None)},
                "value": value,
                "ok": 1.0,
            },
        )
    options["return_document"] = ReturnDocument.AFTER if new else ReturnDocument.BEFORE
    replaces = isinstance(update, Mapping) and not any(str(k).startswith("$") for k in update)
    if replaces:
        options.pop("array_filters", None)
    return Call(
        target,
        "find_one_and_replace" if replaces else "find_one_and_update",
        (query, update),
        options,
        lambda value: {
            "lastErrorObject": {"n": int(value is not None), "updatedExisting": value is not None},
            "value": value,
            "ok": 1.0,
        },
    )


def _insert(database: DatabaseBase, name: str, target: str, spec: Mapping[str, Any]) -> Call:
    options = _options(spec, name, target, database, _WRITE_FIELDS["insert"])
    # copies: the server, not the driver, gives a raw command's documents their ids
    requests = [InsertOne(dict(document)) for document in options.pop("documents", [])]
    return _bulk_call(target, "insert", requests, options)


def _update(database: DatabaseBase, name: str, target: str, spec: Mapping[str, Any]) -> Call:
    options = _options(spec, name, target, database, _WRITE_FIELDS["update"])
    requests: list[Any] = []
    for statement in options.pop("updates", []):
        extra = {
            _STATEMENT[key]: value
            for key, value in statement.items()
            if key in _STATEMENT and value is not None
        }
        unknown = set(statement) - {"q", "u", "upsert", "multi", *_STATEMENT}
        if unknown:
            raise _refused(
                database,
                target,
                name,
                f"with the statement field {sorted(unknown)[0]!r} is not translated",
                f"call database[{target!r}].bulk_write(...) with that option",
            )
        update, upsert = statement["u"], bool(statement.get("upsert", False))
        if isinstance(update, Mapping) and not any(str(k).startswith("$") for k in update):
            extra.pop("array_filters", None)
            requests.append(ReplaceOne(statement["q"], update, upsert=upsert, **extra))
        elif statement.get("multi"):
            requests.append(UpdateMany(statement["q"], update, upsert=upsert, **extra))
        else:
            requests.append(PyUpdateOne(statement["q"], update, upsert=upsert, **extra))
    return _bulk_call(target, "update", requests, options)


def _delete(database: DatabaseBase, name: str, target: str, spec: Mapping[str, Any]) -> Call:
    options = _options(spec, name, target, database, _WRITE_FIELDS["delete"])
    requests: list[Any] = []
    for statement in options.pop("deletes", []):
        extra = {
            _STATEMENT[key]: value
            for key, value in statement.items()
            if key in ("collation", "hint") and value is not None
        }
        one = statement.get("limit", 0) == 1
        requests.append((DeleteOne if one else DeleteMany)(statement["q"], **extra))
    return _bulk_call(target, "delete", requests, options)


def _bulk_call(target: str, kind: str, requests: list[Any], options: dict[str, Any]) -> Call:
    return Call(
        target,
        "bulk_write",
        (requests,),
        options,
        lambda result: _bulk_reply(kind, result.bulk_api_result, failed=False),
        bulk=True,
        extra={"kind": kind},
    )


def _bulk_reply(kind: str, counts: Mapping[str, Any], *, failed: bool) -> Reply:
    """An insert, update or delete command's reply from pymongo's bulk counts."""
    reply: Reply
    if kind == "insert":
        reply = {"n": counts.get("nInserted", 0)}
    elif kind == "delete":
        reply = {"n": counts.get("nRemoved", 0)}
    else:
        upserted = list(counts.get("upserted") or [])
        reply = {
            "n": counts.get("nMatched", 0) + len(upserted),
            "nModified": counts.get("nModified", 0),
        }
        if upserted:
            reply["upserted"] = [{"index": u["index"], "_id": u["_id"]} for u in upserted]
    if failed:
        reply["writeErrors"] = [
            {k: v for k, v in error.items() if k != "op"} for error in counts.get("writeErrors", [])
        ]
    reply["ok"] = 1.0
    return reply


def _cursor_reply(database: DatabaseBase, target: str) -> Callable[[Any], Reply]:
    """A command cursor's reply: every document in the first batch, nothing left on the server."""
    namespace = f"{database.name}.{target}"

    def reply(documents: Any) -> Reply:
        return {
            "cursor": {"firstBatch": list(documents), "id": 0, "ns": namespace},
            "ok": 1.0,
        }

    return reply


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------


def _model(database: DatabaseBase, name: str) -> str:
    schema = database.schema_of(name)
    return schema.model if schema is not None else name


def _refused(
    database: DatabaseBase, target: str, command: str, why: str, remedy: str
) -> UnsupportedQuery:
    return UnsupportedQuery(
        f"{_model(database, target)}: the {command} command on the split collection "
        f"{target!r} {why}; {remedy}",
        model=_model(database, target),
    )


def _refuse_by_scope(database: DatabaseBase, name: str, spec: Mapping[str, Any]) -> None:
    """``eval`` names its collection in the code's scope (mongoengine's ``exec_js``)."""
    code = spec[name]
    scope = getattr(code, "scope", None) or {}
    target = scope.get("collection")
    if isinstance(target, str) and database.schema_of(target) is not None:
        raise _refused(
            database,
            target,
            name,
            "would run JavaScript over the clinical half, which holds no identity fields",
            "use QuerySet.aggregate (a $group is merged in the process) or compute it in the "
            "application",
        )


def _reaches_split(database: DatabaseBase, spec: Mapping[str, Any]) -> bool:
    """Whether an aggregate command's pipeline joins or writes a split collection."""
    pipeline = spec.get("pipeline")
    if not isinstance(pipeline, Sequence):
        return False
    return bool(database.split_targets(pipeline) or _written_split(database, pipeline))


def _written_split(database: DatabaseBase, pipeline: Sequence[Any]) -> set[str]:
    """Split collections a database-level pipeline's ``$out``/``$merge`` would write."""
    found: set[str] = set()
    for stage in pipeline:
        if not isinstance(stage, Mapping):
            continue
        for key in ("$out", "$merge"):
            spec = stage.get(key)
            target = spec if isinstance(spec, str) else None
            if isinstance(spec, Mapping):
                into = spec.get("into", spec.get("coll"))
                target = into if isinstance(into, str) else None
                if isinstance(into, Mapping) and into.get("db") in (None, database.name):
                    target = into.get("coll")
            if isinstance(target, str) and database.schema_of(target) is not None:
                found.add(target)
    return found


_DEFAULT_REMEDY = (
    "call the collection's own method (database[name].<method>), which runs over both halves"
)
_REMEDIES = {
    "mapreduce": "use QuerySet.aggregate with $group (merged in the process), or for "
    "item_frequencies an aggregation with $unwind and $group",
    "listindexes": "call database[name].list_indexes()",
    "createindexes": "call database[name].create_indexes(...) (mongoengine: ensure_indexes)",
    "dropindexes": "call database[name].drop_index(...) or drop_indexes()",
    "drop": "call database.drop_collection(name), which drops both halves",
    "collstats": "count with database[name].count_documents({}) or estimated_document_count()",
    "validate": "validate the collection's halves on database.inner",
    "renamecollection": "rename both halves on database.inner and update the model's collection",
}

# Commands that name a collection in a field rather than as their value
_BY_SCOPE = frozenset({"eval", "$eval"})
# Commands on a split collection that do the same thing on its clinical half
_PASSED = frozenset({"create"})
# Fields of every command that describe its transport, not its meaning
_IGNORED = frozenset(
    {"$db", "lsid", "$clusterTime", "$readPreference", "readConcern", "writeConcern", "apiVersion"}
)

_COUNT_FIELDS = {
    "query": "filter",
    "limit": "limit",
    "skip": "skip",
    "hint": "hint",
    "collation": "collation",
    "maxTimeMS": "maxTimeMS",
    "comment": "comment",
    "fields": "",
}
_DISTINCT_FIELDS = {
    "key": "key",
    "query": "filter",
    "collation": "collation",
    "hint": "hint",
    "maxTimeMS": "maxTimeMS",
    "comment": "comment",
}
_FIND_FIELDS = {
    "filter": "filter",
    "projection": "projection",
    "sort": "sort",
    "skip": "skip",
    "limit": "limit",
    "batchSize": "batch_size",
    "singleBatch": "single_batch",
    "hint": "hint",
    "collation": "collation",
    "comment": "comment",
    "max": "max",
    "min": "min",
    "maxTimeMS": "max_time_ms",
    "returnKey": "return_key",
    "showRecordId": "show_record_id",
    "noCursorTimeout": "no_cursor_timeout",
    "allowPartialResults": "allow_partial_results",
    "allowDiskUse": "allow_disk_use",
    "let": "let",
}
_AGGREGATE_FIELDS = {
    "pipeline": "pipeline",
    "cursor": "",
    "allowDiskUse": "allowDiskUse",
    "maxTimeMS": "maxTimeMS",
    "collation": "collation",
    "hint": "hint",
    "let": "let",
    "comment": "comment",
    "bypassDocumentValidation": "",
}
_FIND_AND_MODIFY_FIELDS = {
    "query": "filter",
    "sort": "sort",
    "remove": "remove",
    "update": "update",
    "new": "new",
    "fields": "projection",
    "upsert": "upsert",
    "collation": "collation",
    "arrayFilters": "array_filters",
    "hint": "hint",
    "let": "let",
    "comment": "comment",
    "maxTimeMS": "maxTimeMS",
    "bypassDocumentValidation": "",
}
_WRITE_FIELDS = {
    kind: {
        items: items,
        "ordered": "ordered",
        "comment": "comment",
        "let": "let",
        "bypassDocumentValidation": "",
    }
    for kind, items in (("insert", "documents"), ("update", "updates"), ("delete", "deletes"))
}
# Fields of one update or delete statement → pymongo's request arguments
_STATEMENT = {"collation": "collation", "arrayFilters": "array_filters", "hint": "hint"}

_TABLE: dict[str, Callable[[DatabaseBase, str, str, Mapping[str, Any]], Call]] = {
    "count": _count,
    "distinct": _distinct,
    "find": _find,
    "aggregate": _aggregate,
    "findandmodify": _find_and_modify,
    "insert": _insert,
    "update": _update,
    "delete": _delete,
}
