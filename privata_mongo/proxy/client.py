"""A client as the ODMs see it: pymongo's ``MongoClient`` API around a real client.

``client_class(inner_class, resolver)`` builds the class an ODM instantiates (mongoengine's
``mongo_client_class``); it constructs the real client with the same arguments and hands out
proxy databases. Plain attributes (``address``, ``read_preference``, ``is_primary`` …) are the
real client's own values, because ODMs compare them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from privata_mongo.proxy._passes_as import PassesAsNative
from privata_mongo.proxy._protected import refuse_database
from privata_mongo.proxy.database import DatabaseBase, ProxyDatabase, SchemaResolver
from privata_mongo.runtime import Runtime, build_runtime

__all__ = ["ClientBase", "ProxyClient", "client_class"]


class ClientBase(PassesAsNative):
    """What the sync and async proxy clients share; ``database_class`` is each twin's.

    ``isinstance(client, type(inner))`` holds, as it does for the real client
    (``PassesAsNative``).

    Args:
        inner: the real client.
        resolver: which collections are split, and how.
        runtime: what operations run with (by default, built for ``inner``).
    """

    database_class: type[DatabaseBase] = ProxyDatabase
    asynchronous = False

    def __init__(
        self, inner: Any, resolver: SchemaResolver, runtime: Runtime | None = None
    ) -> None:
        self._inner = inner
        self._resolver = resolver
        self._runtime = runtime or build_runtime(inner, asynchronous=self.asynchronous)

    @property
    def runtime(self) -> Runtime:
        """The runtime this client's operations run with."""
        return self._runtime

    @property
    def inner(self) -> Any:
        """The real client, for operators and tests that must see the raw storage."""
        return self._inner

    @property
    def resolver(self) -> SchemaResolver:
        """How this client decides which collections are split."""
        return self._resolver

    def get_database(self, name: str | None = None, **options: Any) -> Any:
        """A database by name (the URI's default database when ``name`` is ``None``)."""
        return self.database_class(self, self._inner.get_database(name, **options), self._resolver)

    def get_default_database(self, default: str | None = None, **options: Any) -> Any:
        """The database named in the connection string."""
        inner = self._inner.get_default_database(default, **options)
        return self.database_class(self, inner, self._resolver)

    def __getitem__(self, name: str) -> Any:
        return self.get_database(name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(self._inner, name)
        if name.startswith("_") or hasattr(type(self._inner), name):
            return value
        if hasattr(value, "get_collection") and hasattr(value, "list_collection_names"):
            return self.get_database(name)  # pymongo's client.<name> is a database
        return value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ClientBase):
            return bool(self._inner == other._inner)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(id(self._inner))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._inner!r})"


class ProxyClient(ClientBase):
    """pymongo's ``MongoClient`` API over a real client."""

    def drop_database(self, name_or_database: Any, *args: Any, **kwargs: Any) -> None:
        """Drop a database (both halves of every split collection go with it)."""
        if isinstance(name_or_database, DatabaseBase):
            name_or_database = name_or_database.name
        refuse_database(self[str(getattr(name_or_database, "name", name_or_database))], "drop")
        self._inner.drop_database(name_or_database, *args, **kwargs)
        self._runtime.indexes.forget(str(getattr(name_or_database, "name", name_or_database)))

    def close(self) -> None:
        """Close the real client."""
        self._inner.close()

    def __enter__(self) -> ProxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


RuntimeFactory = Callable[[Any], Runtime]
"""Builds the runtime of a connection from its real client (the composition root's part)."""

# Values keep the wrapped class alive, so an id in a key is never reused for another class.
_classes: dict[tuple[int, ...], tuple[Callable[..., Any], type[ProxyClient]]] = {}


def client_class(
    inner_class: Callable[..., Any], resolver: SchemaResolver, runtime: RuntimeFactory
) -> type[ProxyClient]:
    """The client class an ODM instantiates in place of ``inner_class``.

    Each client it makes wraps a real ``inner_class`` client, with the runtime ``runtime``
    builds for it. The same triple always yields the same class, so ODMs that compare
    connection settings (mongoengine re-uses a connection when they are equal) keep doing so.
    """
    key = (id(inner_class), id(resolver), id(runtime))
    existing = _classes.get(key)
    if existing is not None:
        return existing[1]

    def __init__(self: ProxyClient, *args: Any, **kwargs: Any) -> None:
        inner = inner_class(*args, **kwargs)
        ProxyClient.__init__(self, inner, resolver, runtime(inner))

    name = getattr(inner_class, "__name__", "Client")
    made = type(
        f"Private{name}", (ProxyClient,), {"__init__": __init__, "inner_class": inner_class}
    )
    _classes[key] = (inner_class, made)
    return made
