"""Internal. What the sync and async split collections share: everything but awaiting.

Names, options, ``with_options``, equality and the planned form of every method
(``_planner.Planner``) are synchronous in pymongo too, so one implementation serves both
twins; they add only how a plan is run, awaited or not.

The schema follows the settings: when ``configure`` has replaced them since the last operation,
the collection asks its database for the schema again (compiled under the new settings, so a
new ``scan_limit`` or ``batch_size`` applies to a collection already handed out).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from privata_mongo.core.flows.context import Context
from privata_mongo.core.flows.options import OPERATION_OPTIONS, with_operation_options
from privata_mongo.core.schema import ModelSchema
from privata_mongo.drivers._dispatch import Binding
from privata_mongo.proxy._passes_as import PassesAsNative
from privata_mongo.proxy._planner import Planned, Planner
from privata_mongo.runtime import Runtime

if TYPE_CHECKING:
    from typing_extensions import Self

    from privata_mongo.config import Settings

__all__ = ["PlannedMethod", "SplitCollectionBase", "split_collection"]

_IN_PROCESS = ("mongomock", "privata_mongo.embedded")

P = ParamSpec("P")
R = TypeVar("R")


class PlannedMethod(Generic[P, R]):
    """A pymongo method of a split collection: its plan (``Planner``), run by the twin's ``_run``.

    The sync twin's ``_run`` returns the result, the async twin's is a coroutine function, so
    the same attribute serves both: ``collection.insert_one(doc)`` runs (or, awaited, awaits)
    ``Planner.insert_one`` with pymongo's own signature.
    """

    def __init__(self, plan: Callable[Concatenate[Planner, P], Planned[R]]) -> None:
        self._plan = plan
        self._signature = inspect.signature(plan)
        functools.update_wrapper(self, plan)  # type: ignore[arg-type]

    def _planned(self, planner: Planner, /, *args: Any, **kwargs: Any) -> Planned[R]:
        """The plan, each of whose storage requests carries the call's session and comment."""
        planned = self._plan(planner, *args, **kwargs)
        named = self._signature.bind(planner, *args, **kwargs).arguments
        options = {k: named.get(k) for k in OPERATION_OPTIONS}
        if not any(v is not None for v in options.values()):
            return planned
        return dataclasses.replace(planned, flow=with_operation_options(planned.flow, options))

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, instance: SplitCollectionBase, owner: type[Any]) -> Callable[P, Any]: ...

    def __get__(self, instance: SplitCollectionBase | None, owner: type[Any]) -> Any:
        if instance is None:
            return self
        return functools.partial(instance._run, self._planned)


class SplitCollectionBase(PassesAsNative, ABC):
    """The parts of a split collection that do no I/O.

    ``isinstance(collection, type(clinical))`` holds, as it does for the real collection
    (``PassesAsNative``).

    Args:
        database: the proxy database the collection belongs to.
        clinical: the real clinical collection (native name and ids).
        identity: the real identity collection.
        schema: the collection's privacy schema.
    """

    def __init__(self, database: Any, clinical: Any, identity: Any, schema: ModelSchema) -> None:
        self._database = database
        self._clinical = clinical
        self._identity = identity
        self._schema = schema
        self._runtime: Runtime = database.client.runtime
        self._settings: Settings = self._runtime.settings()
        # mongomock shapes its replies and errors its own way; the native app sees those
        self._terse = type(clinical).__module__.startswith("mongomock")
        self._plans = Planner(
            self._runtime,
            lambda: self.schema,
            database.joins,
            acknowledged=bool(clinical.write_concern.acknowledged),
            mongomock_style=self._terse,
            database=str(clinical.database.name),
            # stores in the process enforce no size limit: updates there are not measured
            measures_sizes=not type(clinical).__module__.startswith(_IN_PROCESS),
        )
        self._binding = self._runtime.binding(
            database.inner, clinical, identity, schema, self._read_peer
        )

    def flow_parts(self) -> tuple[Context, Binding[Any, Any, Any, Any, Any]]:
        """The context and ports of a flow on this collection starting now.

        For operator flows outside pymongo's API (``privata_mongo.recovery``), which run with
        the same runtime handles as the collection's own operations.
        """
        return self._runtime.context(self.schema, str(self._clinical.database.name)), self._binding

    def _linked(self) -> bool:
        """Whether the link index was ensured (once per runtime, not per collection object)."""
        return self._runtime.indexes.has(self._clinical.database.name, self._clinical.name)

    def _link_done(self) -> None:
        self._runtime.indexes.add(self._clinical.database.name, self._clinical.name)

    def _unlinked(self, planned: Planned[Any]) -> None:
        """After a call that dropped the collection: its link index must be made again."""
        if planned.unlink:
            self._runtime.indexes.forget(self._clinical.database.name, self._clinical.name)

    @abstractmethod
    def _read_peer(self, collection: str, filter: Any) -> Any:
        """The documents of another logical collection of the database, joined."""

    @abstractmethod
    def _run(self, plan: Callable[..., Planned[Any]], /, *args: Any, **kwargs: Any) -> Any:
        """Plan a pymongo call and run it (the async twin returns a coroutine)."""

    _native_attribute = "_clinical"

    count_documents = PlannedMethod(Planner.count_documents)
    estimated_document_count = PlannedMethod(Planner.estimated_document_count)
    distinct = PlannedMethod(Planner.distinct)
    insert_one = PlannedMethod(Planner.insert_one)
    insert_many = PlannedMethod(Planner.insert_many)
    update_one = PlannedMethod(Planner.update_one)
    update_many = PlannedMethod(Planner.update_many)
    replace_one = PlannedMethod(Planner.replace_one)
    delete_one = PlannedMethod(Planner.delete_one)
    delete_many = PlannedMethod(Planner.delete_many)
    bulk_write = PlannedMethod(Planner.bulk_write)
    find_one_and_update = PlannedMethod(Planner.find_one_and_update)
    find_one_and_replace = PlannedMethod(Planner.find_one_and_replace)
    find_one_and_delete = PlannedMethod(Planner.find_one_and_delete)
    create_index = PlannedMethod(Planner.create_index)
    create_indexes = PlannedMethod(Planner.create_indexes)
    index_information = PlannedMethod(Planner.index_information)
    drop_index = PlannedMethod(Planner.drop_index)
    drop_indexes = PlannedMethod(Planner.drop_indexes)
    drop = PlannedMethod(Planner.drop)

    @property
    def schema(self) -> ModelSchema:
        """The privacy schema of this collection, under the settings in force."""
        settings = self._runtime.settings()
        if settings is not self._settings:
            self._settings = settings
            self._schema = self._database.schema_of(self.name) or self._schema
        return self._schema

    @property
    def name(self) -> str:
        """The collection's (clinical, native) name."""
        return str(self._clinical.name)

    @property
    def full_name(self) -> str:
        """``database.collection``."""
        return str(self._clinical.full_name)

    @property
    def database(self) -> Any:
        """The proxy database this collection belongs to."""
        return self._database

    @property
    def codec_options(self) -> Any:
        """The real codec options."""
        return self._clinical.codec_options

    @property
    def read_preference(self) -> Any:
        """The real read preference."""
        return self._clinical.read_preference

    @property
    def write_concern(self) -> Any:
        """The real write concern."""
        return self._clinical.write_concern

    @property
    def read_concern(self) -> Any:
        """The real read concern."""
        return self._clinical.read_concern

    def with_options(self, **options: Any) -> Self:
        """The same split collection with other read/write options on both halves."""
        return type(self)(
            self._database,
            self._clinical.with_options(**options),
            self._identity.with_options(**options),
            self._schema,
        )

    @staticmethod
    def _one(
        filter: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``find_one``'s arguments as ``find``'s: an id for a filter, and one document."""
        if filter is not None and not isinstance(filter, Mapping):
            filter = {"_id": filter}
        return (filter, *args), {**kwargs, "limit": -1}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(
                f"Collection has no attribute {name!r}. To access the {self.name}.{name} "
                f"collection, use database['{self.name}.{name}']."
            )
        return self._database[f"{self.name}.{name}"]

    def __getitem__(self, name: str) -> Any:
        return self._database[f"{self.name}.{name}"]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SplitCollectionBase):
            return bool(self._clinical == other._clinical)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.full_name)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.full_name!r}, identity={self._identity.name!r})"

    def __bool__(self) -> bool:
        # As the real collection answers: pymongo's refuses (NotImplementedError), mongomock's
        # is true, and third-party code (gridfs on mongomock) relies on either.
        return bool(self._clinical)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> None:
        raise TypeError("'Collection' object is not iterable")


def split_collection(database: Any, name: str) -> SplitCollectionBase:
    """The split collection ``name``, even when no model of it is imported in this process.

    A recovery sweep or a restriction change run from an operator's job may not import the
    application's models. Neither needs a field of theirs (they read links, leases and ids,
    write markers, delete rows and discard keys by pseudonym), so the collection is rebuilt
    from the layout settings: the identity half's name and whether rows are sealed.
    """
    collection = database.get_collection(name)
    if isinstance(collection, SplitCollectionBase):
        return collection
    settings = database.client.runtime.settings()
    schema = ModelSchema(
        models=(name,),
        collection=name,
        identity_collection=name + settings.identity_suffix,
        decisions=(),
        identity_fields=frozenset(),
        searchable=frozenset(),
        sealed=settings.encryption,
    )
    inner = database.inner
    made: SplitCollectionBase = database.split_collection(
        database,
        inner.get_collection(name),
        inner.get_collection(schema.identity_collection),
        schema,
    )
    return made
