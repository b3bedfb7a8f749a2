"""A collection of a model without identity fields: stored and served natively."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from privata_mongo.core.schema import ModelSchema
from privata_mongo.proxy._passes_as import PassesAsNative
from privata_mongo.proxy._protected import COLLECTION_WRITES, refuse, refuse_pipeline
from privata_mongo.proxy._write_stages import write_stage

if TYPE_CHECKING:
    from privata_mongo.proxy.database import DatabaseBase

__all__ = ["GuardedCollection", "PlainCollection"]


class PlainCollection(PassesAsNative):
    """A collection of a model without identity fields: stored and served natively.

    ``isinstance(collection, type(inner))`` holds, as it does for the real collection
    (``PassesAsNative``).
    """

    def __init__(self, database: DatabaseBase, inner: Any) -> None:
        self._database = database
        self._inner = inner

    @property
    def database(self) -> DatabaseBase:
        """The proxy database this collection belongs to."""
        return self._database

    @property
    def inner(self) -> Any:
        """The real collection."""
        return self._inner

    def with_options(self, **options: Any) -> PlainCollection:
        """The same collection with other read/write options."""
        return PlainCollection(self._database, self._inner.with_options(**options))

    def find(self, *args: Any, **kwargs: Any) -> Any:
        """A native cursor; its ``collection`` is the real collection."""
        return self._inner.find(*args, **kwargs)

    def aggregate(self, pipeline: Sequence[Mapping[str, Any]], *args: Any, **kwargs: Any) -> Any:
        """A native aggregation, unless it joins a split collection the server cannot join.

        Such a pipeline runs through the flows like a split collection's, with nothing of
        this collection's own to join (the async twin's returns a coroutine, as pymongo's);
        one ending in a ``$out``/``$merge`` into a split collection writes through it.
        """
        refuse_pipeline(self._database, pipeline, f"{self._inner.name}.aggregate")
        stage = write_stage(self._database, None, pipeline)
        if stage is not None:  # into a split collection: the documents are split on the way
            documents = self.aggregate(stage.read, *args, **kwargs)
            return self._database.write_out(stage, documents)
        if not self._database.split_targets(pipeline):
            # a join into a marked collection sees what a find there sees (core.rights.joins)
            return self._inner.aggregate(self._database.restricted(pipeline), *args, **kwargs)
        schema = ModelSchema.native(self._inner.name)
        runner = self._database.split_collection(self._database, self._inner, self._inner, schema)
        return runner.aggregate(pipeline, *args, **kwargs)

    def rename(self, new_name: str, *args: Any, **kwargs: Any) -> Any:
        """Rename the collection; a protected name (the audit trail, the key vault) is refused."""
        refuse(self._database, new_name, f"rename of {self._inner.name} to {new_name}")
        return self._inner.rename(new_name, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        attribute = getattr(self._inner, name)
        if not name.startswith("_") and hasattr(attribute, "insert_one"):
            # pymongo returns a sub-collection for unknown attribute names: keep it proxied.
            return self._database[f"{self._inner.name}.{name}"]
        return attribute

    def __getitem__(self, name: str) -> Any:
        return self._database[f"{self._inner.name}.{name}"]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PlainCollection):
            return bool(self._inner == other._inner)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._inner.full_name)

    def __repr__(self) -> str:
        return f"PlainCollection({self._inner.full_name!r})"

    def __bool__(self) -> bool:
        return bool(self._inner)  # as the real collection answers (pymongo refuses, mongomock not)


class GuardedCollection(PlainCollection):
    """A collection only privata writes (``_protected``): reads pass, every write is refused.

    A write method is still an attribute (``hasattr`` holds, as on the real collection); calling
    it raises ``ProtectedCollection`` before anything reaches the server.
    """

    def with_options(self, **options: Any) -> GuardedCollection:
        """The same collection with other read/write options, still guarded."""
        return GuardedCollection(self._database, self._inner.with_options(**options))

    def rename(self, new_name: str, *args: Any, **kwargs: Any) -> Any:
        """Refused: the collection keeps its name."""
        refuse(self._database, self._inner.name, "rename")

    def __getattr__(self, name: str) -> Any:
        if name in COLLECTION_WRITES:
            database, collection = self._database, self._inner.name

            def refused(*args: Any, **kwargs: Any) -> Any:
                refuse(database, collection, name)

            return refused
        return super().__getattr__(name)

    def __repr__(self) -> str:
        return f"GuardedCollection({self._inner.full_name!r})"
