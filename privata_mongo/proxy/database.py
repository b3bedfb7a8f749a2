"""A database as the ODMs see it: collections by name, each split when its model asks for it.

Which collections are split is decided by a *schema resolver* the facade supplies (it knows
the ODM's model classes); the proxy itself knows no ODM. Identity collections are an
implementation detail and are left out of ``list_collection_names``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bson.dbref import DBRef
from pymongo.errors import BulkWriteError, InvalidOperation, OperationFailure

from privata_mongo.adapters.audit_collection import CHECKPOINTS_SUFFIX
from privata_mongo.core.audit.intents import JOURNAL_SUFFIX
from privata_mongo.core.flows.aggregate import split_joins
from privata_mongo.core.rights.joins import local_joins, restricted_joins
from privata_mongo.core.schema import ModelSchema
from privata_mongo.errors import ConfigurationError
from privata_mongo.proxy._collection_base import SplitCollectionBase
from privata_mongo.proxy._commands import Call, command_document, refuse_split_pipeline, translate
from privata_mongo.proxy._passes_as import PassesAsNative
from privata_mongo.proxy._protected import (
    is_erasure_log,
    protected_kind,
    refuse,
    refuse_command,
    refuse_pipeline,
)
from privata_mongo.proxy._write_stages import WriteStage, batches, stage_failure
from privata_mongo.proxy.collection import PrivateCollection
from privata_mongo.proxy.cursor import ProxyCommandCursor
from privata_mongo.proxy.marked import MarkedCollection
from privata_mongo.proxy.plain import GuardedCollection, PlainCollection

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["CommandRequest", "DatabaseBase", "ProxyDatabase", "SchemaResolver"]

SchemaResolver = Callable[[str, str], "ModelSchema | None"]
"""``(database name, collection name) → schema``, or ``None`` for a collection stored natively."""


def _command_signature(
    command: Any,
    value: Any = 1,
    check: bool = True,
    allowable_errors: Any = None,
    read_preference: Any = None,
    codec_options: Any = None,
    session: Any = None,
    comment: Any = None,
    **kwargs: Any,
) -> None:
    """The signature of pymongo's ``Database.command``, to read a call's arguments by name."""


def _cursor_command_signature(
    command: Any,
    value: Any = 1,
    read_preference: Any = None,
    codec_options: Any = None,
    session: Any = None,
    comment: Any = None,
    max_await_time_ms: Any = None,
    **kwargs: Any,
) -> None:
    """The signature of pymongo's ``Database.cursor_command``."""


_SIGNATURES = {
    "command": inspect.signature(_command_signature),
    "cursor_command": inspect.signature(_cursor_command_signature),
}


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """A ``command``/``cursor_command`` call: its translation (``None``: sent unchanged).

    Attributes:
        call: the split collection's method call that runs it, or ``None``.
        check: raise when the command fails (pymongo's ``check``).
        allowable_errors: codes or code names that are answers, not errors.
        session: the session to run the call in.
    """

    call: Call | None
    check: bool = True
    allowable_errors: tuple[Any, ...] = ()
    session: Any = None

    def arguments(self, call: Call) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The method call's arguments, in the command's session."""
        kwargs = dict(call.kwargs)
        if self.session is not None:
            kwargs["session"] = self.session
        return call.args, kwargs

    def failed(self, error: OperationFailure) -> dict[str, Any]:
        """The reply of a failed command when the caller accepts failures, else raise."""
        reply = dict(error.details or {"ok": 0.0, "errmsg": str(error), "code": error.code})
        allowed = set(self.allowable_errors)
        if self.check and not allowed & {error.code, reply.get("codeName")}:
            raise error
        return reply


class DatabaseBase(PassesAsNative):
    """What the sync and async proxy databases share: naming, resolving, handing out collections.

    ``isinstance(database, type(inner))`` holds, as it does for the real database
    (``PassesAsNative``).

    ``split_collection`` is the class serving split collections (sync or async twin).
    """

    split_collection: type[SplitCollectionBase] = PrivateCollection

    def __init__(self, client: Any, inner: Any, resolver: SchemaResolver) -> None:
        self._client = client
        self._inner = inner
        self._resolver = resolver

    @property
    def client(self) -> Any:
        """The proxy client."""
        return self._client

    @property
    def inner(self) -> Any:
        """The real database, for operators and tests that must see the raw storage."""
        return self._inner

    @property
    def name(self) -> str:
        """The database name."""
        return str(self._inner.name)

    def schema_of(self, name: str) -> ModelSchema | None:
        """The privacy schema of collection ``name`` (``None`` when stored natively)."""
        schema = self._resolver(self.name, name)
        return schema if schema is not None and schema.enabled else None

    def split_targets(self, pipeline: Sequence[Mapping[str, Any]]) -> frozenset[str]:
        """The collections a pipeline joins that the server cannot join for it.

        The split ones, and the marked native ones a plain ``$lookup`` joins: their documents
        are read through their proxy, which leaves out what the purpose may not see
        (``core.rights.joins``).
        """
        split = frozenset(name for name in split_joins(pipeline) if self.schema_of(name))
        return split | local_joins(pipeline, self.marked)

    def marked(self, name: str) -> bool:
        """Whether collection ``name`` is a native one whose documents can carry a marker."""
        found = self._resolver(self.name, name)
        return found is not None and not found.enabled and found.marked

    def restricted(self, pipeline: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """``pipeline`` with the read clause in every server-side join into a marked collection."""
        visible = self.client.runtime.restriction(write=False).visible
        return restricted_joins(pipeline, self.marked, visible)

    def joins(
        self, pipeline: Sequence[Mapping[str, Any]]
    ) -> tuple[list[Mapping[str, Any]], frozenset[str]]:
        """``pipeline`` as the server must run it, and the collections the process joins."""
        return self.restricted(pipeline), self.split_targets(pipeline)

    def get_collection(self, name: str, **options: Any) -> Any:
        """A collection by name, split when its model has identity fields."""
        clinical = self._inner.get_collection(name, **options)
        if protected_kind(self, name) is not None:
            return GuardedCollection(self, clinical)
        found = self._resolver(self.name, name)
        schema = found if found is not None and found.enabled else None
        if schema is None:
            if found is not None and found.marked:
                return MarkedCollection(self, clinical, found.marked_by)
            return PlainCollection(self, clinical)
        identity = self._inner.get_collection(schema.identity_collection, **options)
        return self.split_collection(self, clinical, identity, schema)

    def __getitem__(self, name: str) -> Any:
        return self.get_collection(name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(
                f"Database has no attribute {name!r}. To access the {name} collection, "
                f"use database[{name!r}]."
            )
        value = getattr(self._inner, name)
        if hasattr(type(self._inner), name):
            return value
        if hasattr(value, "insert_one") and hasattr(value, "find"):
            return self.get_collection(name)  # pymongo's database.<name> is a collection
        return value

    def with_options(self, **options: Any) -> Self:
        """The same database with other read/write options."""
        return type(self)(self._client, self._inner.with_options(**options), self._resolver)

    def _command(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> CommandRequest:
        """How to run a ``command`` or ``cursor_command`` call (see ``_commands``).

        Raises:
            UnsupportedQuery: the command names a split collection and cannot be run exactly.
        """
        bound = _SIGNATURES[method].bind(*args, **kwargs)
        named = bound.arguments
        spec = command_document(named["command"], named.get("value", 1), named.get("kwargs", {}))
        if named.get("comment") is not None:
            spec.setdefault("comment", named["comment"])
        refuse_command(self, spec)
        call = translate(self, spec)
        return CommandRequest(
            call,
            bool(named.get("check", True)),
            tuple(named.get("allowable_errors") or ()),
            named.get("session"),
        )

    @staticmethod
    def _cursor_call(call: Call) -> Call:
        """``cursor_command`` of a command whose reply has no cursor fails as pymongo's does."""
        if not call.cursor:
            raise InvalidOperation("Command does not return a cursor.")
        return call

    def _stage_target(self, stage: WriteStage) -> Any:
        """The collection a write stage writes, through the wrapper."""
        if stage.database is None or stage.database == self.name:
            return self[stage.collection]
        return self._client[stage.database][stage.collection]

    def _visible(self, names: list[str]) -> list[str]:
        """Collection names without the identity halves of split collections.

        The audit collection and its checkpoints are left out too, and the erasure log: they
        belong to the privacy layer, not the app.
        A collection whose model's privacy declarations are invalid is listed as it is (its
        identity half is still hidden by suffix): listing names is no use of that model, so
        its error is raised when the model itself is used.
        """
        settings = self._client.runtime.settings()
        suffix = settings.identity_suffix
        hidden = {n for n in names if n.endswith(suffix)}
        if settings.audit and settings.audit_sink is None:
            hidden.add(settings.audit_collection)
            hidden.add(settings.audit_collection + CHECKPOINTS_SUFFIX)
        if settings.audit:
            hidden.add(settings.audit_collection + JOURNAL_SUFFIX)  # intents, docs/reliability.md
        hidden.update(n for n in names if is_erasure_log(settings, self.name, n))
        for name in names:
            try:
                schema = self.schema_of(name)
            except ConfigurationError:
                continue  # that model's error is raised when it is used, not on a listing
            if schema is not None:
                hidden.add(schema.identity_collection)
        return [n for n in names if n not in hidden]

    def _halves(self, name_or_collection: Any) -> list[str]:
        """The real collections behind a logical one: identity first, when split."""
        name = (
            name_or_collection if isinstance(name_or_collection, str) else name_or_collection.name
        )
        schema = self.schema_of(name)
        return [schema.identity_collection, name] if schema is not None else [name]

    def _checked(self, dbref: DBRef) -> DBRef:
        if not isinstance(dbref, DBRef):
            raise TypeError(f"cannot dereference a {type(dbref)}")
        if dbref.database is not None and dbref.database != self.name:
            raise ValueError(
                f"trying to dereference a DBRef that points to another database "
                f"({dbref.database!r} not {self.name!r})"
            )
        return dbref

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DatabaseBase):
            return bool(self._inner == other._inner)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __bool__(self) -> bool:
        return bool(self._inner)  # as the real database answers (pymongo refuses, mongomock not)


class ProxyDatabase(DatabaseBase):
    """pymongo's ``Database`` API over a real database."""

    def command(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """``command``, as pymongo's: on a split collection, run through the split (``_commands``).

        Commands on other collections and admin commands reach the server unchanged.
        """
        request = self._command("command", args, kwargs)
        if request.call is None:
            return dict(self._inner.command(*args, **kwargs))
        return self._run_command(request, request.call)

    def cursor_command(self, *args: Any, **kwargs: Any) -> Any:
        """``cursor_command``: a ``find`` or ``aggregate`` of a split collection, joined."""
        request = self._command("cursor_command", args, kwargs)
        if request.call is None:
            return self._inner.cursor_command(*args, **kwargs)
        call = self._cursor_call(request.call)
        call_args, call_kwargs = request.arguments(call)
        return getattr(self[call.collection], call.method)(*call_args, **call_kwargs)

    def aggregate(self, pipeline: Any, *args: Any, **kwargs: Any) -> Any:
        """A database-level aggregation; one reading or writing a split collection is refused."""
        refuse_split_pipeline(self, pipeline, "Database.aggregate")
        refuse_pipeline(self, pipeline, "Database.aggregate")
        return self._inner.aggregate(pipeline, *args, **kwargs)

    def write_out(self, stage: WriteStage, documents: Iterable[Mapping[str, Any]]) -> Any:
        """Write a pipeline's documents as its ``$out``/``$merge`` would (``_write_stages``).

        Returns the empty cursor ``aggregate`` returns for such a pipeline.
        """
        target = self._stage_target(stage)
        try:
            if stage.replace:
                target.delete_many({})
            for batch in batches(documents):
                requests = stage.requests(batch)
                if requests:
                    target.bulk_write(requests, ordered=True)
        except BulkWriteError as exc:
            raise stage_failure(exc) from None
        return ProxyCommandCursor(target, iter(()))

    def _run_command(self, request: CommandRequest, call: Call) -> dict[str, Any]:
        call_args, call_kwargs = request.arguments(call)
        try:
            result = getattr(self[call.collection], call.method)(*call_args, **call_kwargs)
            if call.cursor:
                result = list(result)
        except BulkWriteError as exc:
            return call.failed(exc)
        except OperationFailure as exc:
            return request.failed(exc)
        return call.reply(result)

    def list_collection_names(self, *args: Any, **kwargs: Any) -> list[str]:
        """Collection names, without the identity halves of split collections."""
        return self._visible(list(self._inner.list_collection_names(*args, **kwargs)))

    def create_collection(self, name: str, **kwargs: Any) -> Any:
        """Create a collection (the clinical half when split) and return it."""
        refuse(self, name, "create_collection")
        self._inner.create_collection(name, **kwargs)
        return self.get_collection(name)

    def drop_collection(self, name_or_collection: Any, *args: Any, **kwargs: Any) -> Any:
        """Drop a collection, both halves when split."""
        result = None
        halves = self._halves(name_or_collection)
        for name in halves:
            refuse(self, name, "drop_collection")
        for name in halves:
            result = self._inner.drop_collection(name, *args, **kwargs)
        self._client.runtime.indexes.forget(self.name, halves[-1])
        return result

    def dereference(self, dbref: DBRef, **kwargs: Any) -> Any:
        """The document a ``DBRef`` points to, joined like any other read."""
        ref = self._checked(dbref)
        return self[ref.collection].find_one({"_id": ref.id}, **kwargs)
