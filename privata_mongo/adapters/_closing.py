"""Internal. ``async with`` for the async adapters' clients and cursors, as pymongo's async API has.

``async with client:`` and ``async with cursor:`` close the object when the block ends, however
it ends; a class provides ``close`` and inherits the protocol from ``AsyncClosing``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

from typing_extensions import Self

__all__ = ["AsyncClosing"]


class AsyncClosing(ABC):
    """``async with x:`` closes ``x`` at the end of the block."""

    @abstractmethod
    async def close(self) -> None:
        """Release what the object holds."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
