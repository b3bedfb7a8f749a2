"""Internal. A proxy passes ``isinstance`` checks as the real object it wraps.

Applications and test fixtures check what they were given: ``isinstance(get_connection(),
mongomock.MongoClient)``, ``isinstance(get_db(), pymongo.database.Database)``,
``isinstance(Model.get_pymongo_collection(), AsyncCollection)``. Each proxy reports the real
object's class as its ``__class__``, which ``isinstance`` consults when the proxy's own type
does not match (as ``unittest.mock`` does for a spec), so each such check answers as it does
natively, for whatever class the application passed (pymongo's, mongomock's, the embedded
backend's).

Why not a subclass of both the proxy and the real class: every method of the real class the
proxy does not define would then be found on the proxy and run against its state (pymongo's
``Collection.find_raw_batches``, ``rename``, ``watch`` … and mongomock's), bypassing the split
instead of reaching the real collection through the proxy's delegation; each class would also
need a guard against the real constructor, and a guard against every dunder the real class
defines. With ``__class__``, no code of the real class runs on a proxy. ``type(proxy)`` is
still the proxy's class, so the proxy's own ``isinstance`` checks and ``type(self)(...)``
constructions are unchanged.

A proxy cursor holds no real cursor (its documents come from the core's flows), so it reports
the class the real collection's own ``find`` or ``aggregate`` would have returned: pymongo's
``Cursor``/``CommandCursor`` for pymongo's ``Collection``, ``AsyncCursor``/``AsyncCommandCursor``
for ``AsyncCollection``, mongomock's and the embedded backend's for theirs (``CURSOR_CLASSES``,
looked up along the collection class's MRO, so a subclass of a driver's collection answers as its
base). The classes are named, not imported: the proxy works without mongomock installed, and
imports neither the embedded backend nor an adapter. Python looks special methods up on the
type, never through ``__class__``, so iteration, ``with``, ``async for``, ``copy.copy`` and
``cursor[3]`` still run the proxy's own code; a collection class missing from the table leaves
the proxy's own class in place.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, ClassVar, Literal

__all__ = ["CURSOR_CLASSES", "PassesAsNative", "PassesAsNativeCursor", "native_cursor_class"]

CursorKind = Literal["find", "command"]

# A collection class → the classes its ``find`` and ``aggregate`` return, by qualified name.
CURSOR_CLASSES: dict[str, dict[CursorKind, str]] = {
    "pymongo.synchronous.collection.Collection": {
        "find": "pymongo.synchronous.cursor.Cursor",
        "command": "pymongo.synchronous.command_cursor.CommandCursor",
    },
    "pymongo.asynchronous.collection.AsyncCollection": {
        "find": "pymongo.asynchronous.cursor.AsyncCursor",
        "command": "pymongo.asynchronous.command_cursor.AsyncCommandCursor",
    },
    "mongomock.collection.Collection": {
        "find": "mongomock.collection.Cursor",
        "command": "mongomock.command_cursor.CommandCursor",
    },
    "privata_mongo.embedded._collection.AsyncMockCollection": {
        "find": "privata_mongo.embedded._cursor.AsyncMockCursor",
        "command": "privata_mongo.embedded._cursor.AsyncMockCommandCursor",
    },
    "privata_mongo.adapters.motor.MotorCollectionAdapter": {
        "find": "privata_mongo.adapters._motor_cursors.MotorCursorAdapter",
        "command": "privata_mongo.adapters._motor_cursors.MotorCommandCursorAdapter",
    },
}


def _named(qualified: str) -> type[Any]:
    module, _, name = qualified.rpartition(".")
    found: type[Any] = getattr(importlib.import_module(module), name)
    return found


@functools.cache
def native_cursor_class(collection_class: type[Any], kind: CursorKind) -> type[Any] | None:
    """The class of the cursor ``collection_class``'s ``find`` or ``aggregate`` returns.

    ``None`` for a collection class the table does not know (or whose driver is not
    installed): the proxy then keeps its own class.
    """
    for klass in collection_class.__mro__:
        names = CURSOR_CLASSES.get(f"{klass.__module__}.{klass.__qualname__}")
        if names is not None:
            try:
                return _named(names[kind])
            except (ImportError, AttributeError):
                return None
    return None


class PassesAsNative:
    """Reports the class of the real object held in ``_native_attribute`` as ``__class__``."""

    _native_attribute: ClassVar[str] = "_inner"

    @property  # type: ignore[misc]
    def __class__(self) -> type[Any]:
        """The real object's class (the proxy's own until the real object is set)."""
        real = vars(self).get(self._native_attribute)
        return type(self) if real is None else real.__class__


class PassesAsNativeCursor:
    """Reports the class of the cursor the real collection would have returned as ``__class__``.

    The cursor's ``_collection`` is a proxy collection (which itself passes as the real one) or
    a real collection; ``_cursor_kind`` says whether the cursor is a ``find``'s or a command's.
    """

    _cursor_kind: ClassVar[CursorKind]

    @property  # type: ignore[misc]
    def __class__(self) -> type[Any]:
        """The native cursor class (the proxy's own until the collection is set, or if unknown)."""
        collection = vars(self).get("_collection")
        if collection is None:
            return type(self)
        return native_cursor_class(collection.__class__, self._cursor_kind) or type(self)
