"""``connect`` and ``register_connection`` with mongoengine's signatures, through the proxy.

mongoengine instantiates whatever ``mongo_client_class`` it is given (``pymongo.MongoClient``
by default, ``mongomock.MongoClient`` in tests); these functions wrap that class so the client
mongoengine holds is a privata proxy around the real one. Everything else about the
connection (aliases, settings comparison, re-use) is mongoengine's own code.
"""

from __future__ import annotations

from typing import Any

import mongoengine.connection as native
from pymongo import MongoClient

from privata_mongo.config import current
from privata_mongo.mongoengine._describe import resolve
from privata_mongo.proxy.client import ProxyClient, client_class
from privata_mongo.runtime import Runtime, build_runtime
from privata_mongo.runtime.keys import check_master_key

__all__ = ["connect", "register_connection"]


def runtime_of(client: Any) -> Runtime:
    """The runtime of a connection mongoengine opens: the composition root of the sync facade."""
    return build_runtime(client, asynchronous=False)


def _wrapped(kwargs: dict[str, Any]) -> dict[str, Any]:
    inner = kwargs.get("mongo_client_class", MongoClient)
    made_by = getattr(inner, "func", inner)  # a functools.partial of a client class
    embedded = str(getattr(made_by, "__module__", "")).startswith("mongomock")
    check_master_key(current(), embedded=embedded)
    if not (isinstance(inner, type) and issubclass(inner, ProxyClient)):
        kwargs["mongo_client_class"] = client_class(inner, resolve, runtime_of)
    return kwargs


def connect(db: Any = None, alias: str = native.DEFAULT_CONNECTION_NAME, **kwargs: Any) -> Any:
    """Mongoengine's ``connect``; the connection it returns is a privata proxy client."""
    return native.connect(db, alias, **_wrapped(kwargs))


def register_connection(
    alias: str,
    db: Any = None,
    name: Any = None,
    host: Any = None,
    port: Any = None,
    read_preference: Any = native.READ_PREFERENCE,
    username: Any = None,
    password: Any = None,
    authentication_source: Any = None,
    authentication_mechanism: Any = None,
    authmechanismproperties: Any = None,
    **kwargs: Any,
) -> None:
    """Mongoengine's ``register_connection``, registering a privata proxy client."""
    native.register_connection(
        alias,
        db=db,
        name=name,
        host=host,
        port=port,
        read_preference=read_preference,
        username=username,
        password=password,
        authentication_source=authentication_source,
        authentication_mechanism=authentication_mechanism,
        authmechanismproperties=authmechanismproperties,
        **_wrapped(kwargs),
    )
