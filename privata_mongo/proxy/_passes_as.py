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
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["PassesAsNative"]


class PassesAsNative:
    """Reports the class of the real object held in ``_native_attribute`` as ``__class__``."""

    _native_attribute: ClassVar[str] = "_inner"

    @property  # type: ignore[misc]
    def __class__(self) -> type[Any]:
        """The real object's class (the proxy's own until the real object is set)."""
        real = vars(self).get(self._native_attribute)
        return type(self) if real is None else real.__class__
