"""The spec's statistics: nearest-rank percentiles of iteration times, median score, MB/s."""

from __future__ import annotations

from collections.abc import Sequence

PERCENTILES = (10, 25, 50, 75, 90, 95, 98, 99)


def percentile(times: Sequence[float], p: int) -> float:
    """Nearest rank: sort ascending, index ``int(N * p / 100) - 1`` (at least the first)."""
    if not times:
        raise ValueError("no iteration was timed")
    ordered = sorted(times)
    return ordered[max(int(len(ordered) * p / 100) - 1, 0)]


def summary(times: Sequence[float], size_bytes: int | None) -> dict[str, float | None]:
    """The median (the score), every recorded percentile, and MB/s of the task's size."""
    out: dict[str, float | None] = {f"p{p}": percentile(times, p) for p in PERCENTILES}
    median = out["p50"]
    assert median is not None
    out["median"] = median
    out["mb_per_s"] = size_bytes / 1e6 / median if size_bytes and median > 0 else None
    return out
