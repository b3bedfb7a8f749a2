"""What applications observe of the objects an ODM hands them: classes and attributes.

Shared by the mongoengine and Beanie client-type scenarios; each passes the classes of its
own driver (pymongo's sync or async API, mongomock or the embedded backend).
"""

from __future__ import annotations

from typing import Any

Classes = tuple[type, ...]


def kinds(value: Any, classes: Classes) -> dict[str, Any]:
    """Which of ``classes`` ``value`` is an instance of, and the class it reports."""
    observed: dict[str, Any] = {
        f"{c.__module__}.{c.__qualname__}": isinstance(value, c) for c in classes
    }
    observed["__class__"] = f"{value.__class__.__module__}.{value.__class__.__qualname__}"
    return observed


def collection_facts(
    collection: Any, *, collections: Classes, databases: Classes, clients: Classes
) -> dict[str, Any]:
    """The attributes applications read off a collection, and the classes around it."""
    return {
        "kinds": kinds(collection, collections),
        "name": collection.name,
        # each run has a database of its own name: observe how the names relate
        "full_name": collection.full_name == f"{collection.database.name}.{collection.name}",
        "database": kinds(collection.database, databases),
        "client": kinds(collection.database.client, clients),
        "uuid_representation": collection.codec_options.uuid_representation,
        "tz_aware": collection.codec_options.tz_aware,
        "acknowledged": collection.write_concern.acknowledged,
        "read_preference": collection.read_preference.name,
    }
