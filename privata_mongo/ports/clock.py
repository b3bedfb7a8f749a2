"""The clock port: the only source of time for the core (``$currentDate``, audit records)."""

from __future__ import annotations

import datetime
from typing import Protocol

__all__ = ["Clock"]


class Clock(Protocol):
    """Tells the current time as a naive UTC datetime, as pymongo returns dates by default."""

    def now(self) -> datetime.datetime:
        """The current time."""
