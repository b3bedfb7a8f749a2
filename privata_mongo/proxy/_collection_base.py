"""Internal. What the sync and async split collections share: attributes and identity.

Everything here is synchronous in pymongo too (names, options, ``with_options``, equality), so
one implementation serves both twins; they add only the methods that run flows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from privata_mongo.core.schema import ModelSchema
from privata_mongo.encryption import key_ring
from privata_mongo.proxy._operations import Operations

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["SplitCollectionBase"]


class SplitCollectionBase(ABC):
    """The parts of a split collection that do no I/O.

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
        self._ops = Operations(
            schema,
            acknowledged=bool(clinical.write_concern.acknowledged),
            mongomock_style=type(clinical).__module__.startswith("mongomock"),
            crypto=key_ring(clinical.database.client) if schema.sealed else None,
        )
        self._binding = self._bind()
        self._linked = False

    @abstractmethod
    def _bind(self) -> Any:
        """The driver binding of the two real collections (sync or async stores)."""

    @property
    def schema(self) -> ModelSchema:
        """The privacy schema of this collection."""
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
        twin = type(self)(
            self._database,
            self._clinical.with_options(**options),
            self._identity.with_options(**options),
            self._schema,
        )
        twin._linked = self._linked
        return twin

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
        raise NotImplementedError(
            "Collection objects do not implement truth value testing or bool(). "
            "Please compare with None instead: collection is not None"
        )

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> None:
        raise TypeError("'Collection' object is not iterable")
