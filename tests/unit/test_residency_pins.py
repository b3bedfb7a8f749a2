"""Which regions a filter's identity probes ask, and how the router serves ``Among``."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from typing import Any

from privata_mongo.core.ops import Among, FetchAll, Gather, InRegion, Query
from privata_mongo.core.residency import Residency, regional
from privata_mongo.core.residency.pins import pin_filter, regions_grouped
from privata_mongo.core.schema import Side
from privata_mongo.testing import ScriptedDriver

THREE = Residency(("eu", "uk", "us"), "us", field_name="country", values={"DE": "eu"})


def test_equalities_and_in_on_the_region_field_pin_other_conditions_do_not() -> None:
    assert pin_filter(THREE, [("country", "DE"), ("visits", 3)]) == {"country": "DE"}
    assert pin_filter(THREE, [("country", {"$in": ["DE", "FR"]})]) == {
        "country": {"$in": ["DE", "FR"]}
    }
    assert pin_filter(THREE, [("country", "DE"), ("country", {"$eq": "FR"})]) == {
        "$and": [{"country": "DE"}, {"country": {"$eq": "FR"}}]
    }
    assert pin_filter(THREE, [("country", {"$ne": "DE"})]) is None
    assert pin_filter(THREE, [("country", {"$regex": "^D"})]) is None
    assert pin_filter(THREE, [("visits", 3)]) is None
    called = replace(THREE, resolver=lambda d: "eu")
    assert pin_filter(called, [("country", "DE")]) is None  # a callable cannot be inverted


def test_rows_without_a_region_leave_the_probe_unpinned() -> None:
    assert regions_grouped([{"_id": "us"}, {"_id": "eu"}]) == ("eu", "us")
    assert regions_grouped([]) == ()
    assert regions_grouped([{"_id": "eu"}, {"_id": None}]) is None


def _probe(regions: tuple[str, ...]) -> Generator[Any, Any, Any]:
    return (yield from Among(regions, FetchAll(Side.IDENTITY, Query({"_idx.email": "t"}))))


def test_among_asks_only_the_named_regions_within_the_pin() -> None:
    driver = ScriptedDriver(
        [(lambda op: isinstance(op, Gather) and len(op.ops) == 2, [[{"_id": 1}], [{"_id": 2}]])]
    )
    assert driver.run(regional(_probe(("eu", "uk")), THREE)) == [{"_id": 1}, {"_id": 2}]
    (gathered,) = driver.seen
    assert isinstance(gathered, Gather)
    assert [o.region for o in gathered.ops if isinstance(o, InRegion)] == ["eu", "uk"]
    pinned = replace(THREE, pinned=("us",))
    nothing = ScriptedDriver([])
    assert nothing.run(regional(_probe(("eu",)), pinned)) == []  # asked of no region
    assert nothing.seen == []
