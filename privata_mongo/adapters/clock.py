"""The system clock, at the precision MongoDB stores dates (milliseconds, naive UTC)."""

from __future__ import annotations

import datetime

__all__ = ["SystemClock"]


class SystemClock:
    """``Clock`` over the machine's wall clock."""

    def now(self) -> datetime.datetime:
        """The current UTC time, truncated to milliseconds, without tzinfo."""
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)  # noqa: TID251 - the one place that reads the wall clock
        return now.replace(microsecond=now.microsecond // 1000 * 1000)
