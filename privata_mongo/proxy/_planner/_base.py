"""Internal. The parts every planned method uses: ``Planned``, the context and the audit."""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from bson.son import SON

from privata_mongo.core.audit.wrapper import AuditSpec, audited
from privata_mongo.core.flows import bulk
from privata_mongo.core.flows.context import Context
from privata_mongo.core.ops import Document, Flow
from privata_mongo.core.rights.guard import guarded
from privata_mongo.core.routing import identity_references
from privata_mongo.core.schema import ModelSchema
from privata_mongo.proxy._cursor_spec import index_list
from privata_mongo.runtime import Runtime

__all__ = ["Planned", "PlannerBase", "list_index_documents", "options_of", "passed"]

R = TypeVar("R")


def passed(named: Mapping[str, Any], *taken: str) -> dict[str, Any]:
    """The options of a pymongo call the core passes through to the store, as one rule.

    ``named`` is the planner method's ``locals()``: every parameter of pymongo's signature.
    Those the plan consumes itself (``taken``) and ``self`` are left out, and so are the ones
    left at ``None``; pymongo's catch-all ``**kwargs`` pass unchanged. The flows send each
    option with the requests of the half it applies to (``tests/integration/
    test_option_forwarding.py`` holds the table).
    """
    extra = named.get("kwargs") or {}
    left_out = {"self", "kwargs", *taken}
    chosen = {k: v for k, v in named.items() if k not in left_out and v is not None}
    return {**chosen, **extra}


def options_of(**named: Any) -> dict[str, Any]:
    """Keyword options the application passed, without the ones left at their default."""
    return {k: v for k, v in named.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Planned(Generic[R]):
    """One pymongo call as a flow, and how to turn the flow's result into pymongo's.

    Attributes:
        flow: the core flow to run.
        finish: shapes the flow's result (an ``UpdateOutcome`` …) into pymongo's type.
        link: the clinical link index must exist first (the call may insert documents).
        unlink: the call drops the collection, link index included.
        single: a failed one-document insert is a ``WriteError``, as ``insert_one`` raises.
        documents: for ``insert_many``, what ``BulkWriteError`` may show of each document.
    """

    flow: Flow[Any]
    finish: Callable[[Any], R]
    link: bool = False
    unlink: bool = False
    single: bool = True
    documents: Sequence[Mapping[str, Any]] | None = None


class _BulkRecorder:
    """Receives pymongo's request objects (``InsertOne`` …) through their own ``_add_to_bulk``."""

    def __init__(self, new_id: Callable[[], Any]) -> None:
        self.requests: list[bulk.BulkRequest] = []
        self._new_id = new_id

    def add_insert(self, document: MutableMapping[str, Any]) -> None:
        if "_id" not in document:
            document["_id"] = self._new_id()
        self.requests.append(bulk.BulkInsert(document))

    def add_update(
        self,
        selector: Mapping[str, Any],
        update: Any,
        multi: bool,
        upsert: bool,
        collation: Any = None,
        array_filters: Any = None,
        hint: Any = None,
        sort: Any = None,
    ) -> None:
        options = options_of(collation=collation, array_filters=array_filters, hint=hint)
        self.requests.append(
            bulk.BulkUpdate(selector, update, multi, bool(upsert), options, _sort(sort))
        )

    def add_replace(
        self,
        selector: Mapping[str, Any],
        replacement: Mapping[str, Any],
        upsert: bool,
        collation: Any = None,
        hint: Any = None,
        sort: Any = None,
    ) -> None:
        options = options_of(collation=collation, hint=hint)
        self.requests.append(
            bulk.BulkReplace(selector, replacement, bool(upsert), options, _sort(sort))
        )

    def add_delete(
        self, selector: Mapping[str, Any], limit: int, collation: Any = None, hint: Any = None
    ) -> None:
        options = options_of(collation=collation, hint=hint)
        self.requests.append(bulk.BulkDelete(selector, limit == 0, options))


def _same(value: Any) -> Any:
    return value


def _sort(sort: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(index_list(sort)) if sort is not None else ()


def _projection(projection: Any) -> Mapping[str, Any] | None:
    if projection is None or isinstance(projection, Mapping):
        return projection
    return dict.fromkeys(projection, 1)


def list_index_documents(information: Mapping[str, Any]) -> list[Document]:
    """``list_indexes`` documents from ``index_information``."""
    out: list[Document] = []
    for name, info in information.items():
        document = SON([("v", info.get("v", 2)), ("key", SON(info["key"])), ("name", name)])
        document.update({k: v for k, v in info.items() if k not in ("v", "key")})
        out.append(document)
    return out


class PlannerBase:
    """What every group of planned methods needs: the runtime, the schema, the audit.

    Args:
        runtime: the connection's runtime (settings, keys, clock, ids).
        schema: the collection's privacy schema as of now (it follows ``configure``).
        joins: a pipeline as the server must run it (every join into a marked native collection
            restricted, ``core.rights.joins``) and the collections it joins that the process must
            join for it (split ones, and marked ones joined by a plain ``$lookup``).
        acknowledged: whether writes are acknowledged (the real write concern's answer).
        mongomock_style: shape synthesised replies as mongomock shapes its own.
        database: the name of the collection's database (blind index terms are bound to it).
        measures_sizes: the store may enforce the 16 MiB limit; an in-process store (mongomock,
            the embedded backend) enforces none, so updates are not measured there.
    """

    def __init__(
        self,
        runtime: Runtime,
        schema: Callable[[], ModelSchema],
        joins: Callable[
            [Sequence[Mapping[str, Any]]], tuple[list[Mapping[str, Any]], frozenset[str]]
        ],
        acknowledged: bool,
        mongomock_style: bool,
        database: str = "",
        measures_sizes: bool = True,
    ) -> None:
        self._runtime = runtime
        self._database = database
        self._schema = schema
        self._joins = joins
        self._acknowledged = acknowledged
        self._mongomock_style = mongomock_style
        self._measures_sizes = measures_sizes

    def context(self, *, write: bool = False) -> Context:
        """The flow context of an operation starting now.

        ``write``: the operation changes documents, so a restricted subject it reaches
        refuses it instead of being left out (``core.rights.restriction``).
        """
        schema = self._schema()
        ctx = self._runtime.context(schema, self._database)
        if schema.enabled:
            ctx = replace(ctx, restriction=self._runtime.restriction(write=write))
        return ctx if self._measures_sizes else replace(ctx, server_sizes=None)

    def _audited(
        self, ctx: Context, operation: str, build: Callable[[Context], Flow[R]], *requests: Any
    ) -> Flow[R]:
        """The flow ``build`` makes, with its audit (see ``core.audit.wrapper``) unless it is off.

        ``requests`` are what the application sent (filter, update, pipeline …): the identity
        fields they name are recorded (names only).
        """
        rules = ctx.restriction
        if rules is not None and rules.guard is not None:
            unguarded = build

            def build(c: Context) -> Flow[R]:
                return guarded(unguarded(c), rules, c.schema.model)

        settings = self._runtime.settings()
        if not settings.audit:
            return build(ctx)
        names = frozenset().union(*(identity_references(ctx.schema, r) for r in requests))
        audit = AuditSpec(
            operation,
            names,
            max_subjects=settings.audit_max_subjects,
            intents=settings.audit_buffer == 0,
        )
        return audited(ctx, build, audit)
