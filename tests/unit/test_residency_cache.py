"""The residency router's cache requests, without a database: each to its subject's region."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from privata_mongo.core.cache import key_entry, row_entry
from privata_mongo.core.ops import CacheGet, CacheInvalidate, CachePut, InRegion, Located
from privata_mongo.core.residency import Residency, regional
from privata_mongo.testing import ScriptedDriver

EU = "pseu_" + "e" * 32
US = "pseu_" + "a" * 32
ELSEWHERE = "pseu_" + "b" * 32
RESIDENCY = Residency(regions=("eu", "us"), default="us")


def _in(region: str, kind: type, names: set[str]) -> Any:
    def matches(op: Any) -> bool:
        if not (isinstance(op, InRegion) and op.region == region and isinstance(op.op, kind)):
            return False
        held = {n for n, _ in op.op.entries} if kind is CachePut else set(op.op.keys)
        return held == names

    return matches


def test_cache_requests_go_to_the_cache_of_each_subjects_region() -> None:
    eu_row, us_key = row_entry("db", "p__identity", EU), key_entry(US)
    unknown = key_entry(ELSEWHERE)
    assert us_key is not None
    assert unknown is not None

    def flow() -> Generator[Any, Any, dict[str, bytes]]:
        yield Located({EU: "eu", US: "us"})
        yield CachePut(((eu_row, b"row"), (us_key, b"key"), (unknown, b"other")))
        yield CacheInvalidate((eu_row, unknown), 10.0)
        return (yield from CacheGet((eu_row, us_key, unknown)))

    driver = ScriptedDriver(
        [
            (_in("eu", CachePut, {eu_row}), None),  # the unknown subject's entry is not put
            (_in("us", CachePut, {us_key}), None),
            (_in("eu", CacheInvalidate, {eu_row, unknown}), None),  # unknown: every region
            (_in("us", CacheInvalidate, {unknown}), None),
            (_in("eu", CacheGet, {eu_row, unknown}), {eu_row: b"row"}),
            (_in("us", CacheGet, {us_key, unknown}), {us_key: b"key"}),
        ]
    )
    assert driver.run(regional(flow(), RESIDENCY)) == {eu_row: b"row", us_key: b"key"}
