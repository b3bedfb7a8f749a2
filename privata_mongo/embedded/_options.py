"""Internal. The options the embedded async client, database and collection report.

mongomock keeps codec options, read preference and read concern on its own objects, as
look-alikes of pymongo's types; each async wrapper answers them, as pymongo's types, from the
mongomock object it wraps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bson.codec_options import CodecOptions
from pymongo.read_concern import ReadConcern

if TYPE_CHECKING:
    from pymongo.read_preferences import _ServerMode

__all__ = ["MockOptions"]


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
