"""Internal. What the embedded client, database and collection share: options, identity.

mongomock keeps codec options, read preference and read concern on its own objects, as
look-alikes of pymongo's types; each async wrapper answers them, as pymongo's types, from the
mongomock object it wraps. A database (of a client) and a collection (of a database) are also
equal when their parent and name are, as pymongo's are, and derive copies with other options
(``with_options``) the same way: mongomock derives its object, the wrapper wraps it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from bson.codec_options import CodecOptions
from pymongo.read_concern import ReadConcern

if TYPE_CHECKING:
    from pymongo.read_preferences import _ServerMode
    from pymongo.write_concern import WriteConcern
    from typing_extensions import Self

__all__ = ["Child", "MockOptions"]

ParentT = TypeVar("ParentT")


class MockOptions:
    """``codec_options``, ``read_preference`` and ``read_concern`` of the wrapped ``_inner``."""

    _inner: Any

    @property
    def codec_options(self) -> CodecOptions[Any]:
        """How documents are decoded (mongomock's look-alike named tuple as bson's type)."""
        return CodecOptions(**self._inner.codec_options._asdict())

    @property
    def read_preference(self) -> _ServerMode:
        """The read preference (always primary in effect: there is one in-process server)."""
        mode: _ServerMode = self._inner.read_preference
        return mode

    @property
    def read_concern(self) -> ReadConcern:
        """The read concern, as pymongo's type."""
        concern: ReadConcern = self._inner.read_concern
        return concern


class Child(MockOptions, Generic[ParentT]):
    """A database of a client or a collection of a database, around its mongomock object.

    Args:
        parent: the client or database it belongs to.
        inner: the ``mongomock.Database`` or ``mongomock.Collection``.
    """

    def __init__(self, parent: ParentT, inner: Any) -> None:
        self._parent = parent
        self._inner = inner

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._parent!r}, {self.name!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, type(self)):
            return (self._parent, self.name) == (other._parent, other.name)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._parent, self.name))

    @property
    def inner(self) -> Any:
        """The mongomock object (untyped)."""
        return self._inner

    @property
    def name(self) -> str:
        """The database's or the collection's name."""
        return str(self._inner.name)

    def with_options(
        self,
        codec_options: CodecOptions[Any] | None = None,
        read_preference: _ServerMode | None = None,
        write_concern: WriteConcern | None = None,
        read_concern: ReadConcern | None = None,
    ) -> Self:
        """The same object with other options (mongomock refuses a database's write concern)."""
        options = (codec_options, read_preference, write_concern, read_concern)
        return type(self)(self._parent, self._inner.with_options(*options))
