"""What every alternative shares: the backend, the base class, the event loop."""

from __future__ import annotations

import asyncio
import uuid
from typing import ClassVar

from mongomock.store import ServerStore
from pymongo import monitoring

LOOP = asyncio.new_event_loop()
"""The one event loop every async client of a run lives on."""


class Backend:
    """Where the alternatives store: mongomock (one store each) or a server's URI."""

    def __init__(self, name: str, uri: str | None) -> None:
        self.name = name
        self.uri = uri

    @property
    def embedded(self) -> bool:
        return self.uri is None


class Alternative:
    """What every alternative offers the runner (the operation methods are per family)."""

    name: ClassVar[str]
    family: ClassVar[str]
    wrapped: ClassVar[bool] = False

    def __init__(self, backend: Backend, listener: monitoring.CommandListener) -> None:
        self.backend = backend
        self.listener = listener
        self.store = ServerStore()
        self.db_name = (
            f"bench_{self.name.replace('.', '_').replace('+', '_')}_{uuid.uuid4().hex[:6]}"
        )

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def forget(self) -> None:
        """Empty the key cache (``cold`` tasks); nothing to empty natively."""
