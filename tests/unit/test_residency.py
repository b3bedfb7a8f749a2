"""The residency core without a database: placement, and the router's requests per region."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from typing import Any

import pytest

from privata_mongo.core.failures import WriteFailure
from privata_mongo.core.flows import write
from privata_mongo.core.flows.context import Context
from privata_mongo.core.ops import (
    FetchAll,
    Gather,
    InRegion,
    Insert,
    InsertOutcome,
    LoadKeys,
    Located,
    Query,
    ShredKeys,
    StoreKeys,
)
from privata_mongo.core.residency import Residency, Wrapping, region_of, regional
from privata_mongo.core.schema import PSEUDONYM_FIELD, REGION_FIELD, Side
from privata_mongo.errors import ConfigurationError, UnknownRegion
from privata_mongo.testing import ScriptedDriver

EU = "pseu_" + "e" * 32
US = "pseu_" + "a" * 32
RESIDENCY = Residency(
    regions=("eu", "us"),
    default="us",
    field_name="country",
    values={"DE": "eu", "FR": "eu"},
    wrapping={"eu": Wrapping("local:eu"), "us": Wrapping("local:us")},
)


def test_a_document_is_placed_by_its_field_its_resolver_or_the_default() -> None:
    assert region_of(RESIDENCY, {"country": "DE"}) == "eu"
    assert region_of(RESIDENCY, {"country": "us"}) == "us"  # a region name maps to itself
    assert region_of(RESIDENCY, {"country": "BR"}) == "us"
    assert region_of(RESIDENCY, {"country": ["DE"]}) == "us"  # unhashable: not mapped
    called = Residency(("eu", "us"), "us", resolver=lambda d: "eu" if d.get("x") else None)
    assert region_of(called, {"x": 1}) == "eu"
    assert region_of(called, {}) == "us"


def test_an_unknown_or_unpinned_region_is_refused_without_the_value() -> None:
    wrong = Residency(("eu", "us"), "us", resolver=lambda d: "Mars Colony")
    with pytest.raises(UnknownRegion, match="configured regions: eu, us") as caught:
        region_of(wrong, {"country": "Mars Colony"})
    assert "Mars" not in str(caught.value)
    pinned = Residency(
        ("eu", "us"), "us", field_name="country", values={"DE": "eu"}, pinned=("eu",)
    )
    assert region_of(pinned, {}) == "eu"  # the one pinned region, before the default
    with pytest.raises(UnknownRegion, match="restricted to"):
        region_of(pinned, {"country": "us"})


def _reads() -> Generator[Any, Any, Any]:
    yield Located({EU: "eu", US: "us"})
    rows = yield from FetchAll(Side.IDENTITY, Query({"_id": {"$in": [EU, US]}}))
    probe = yield from FetchAll(Side.IDENTITY, Query({"_idx.email": "t"}, limit=3))
    keys = yield from LoadKeys((EU, "privata:index"))
    return rows, probe, keys


def test_identity_reads_go_to_the_regions_of_their_subjects_and_probes_to_every_region() -> None:
    driver = ScriptedDriver(
        [
            (
                lambda op: isinstance(op, Gather) and [o.region for o in op.ops] == ["eu", "us"],
                [[{"_id": EU}], [{"_id": US}]],
            ),
            (
                lambda op: isinstance(op, Gather) and len(op.ops) == 2,
                [[{"_id": EU}], [{"_id": US}, {"_id": "x"}]],
            ),
            (
                lambda op: isinstance(op, LoadKeys) and op.names == ("privata:index",),
                [{"k": "index"}],
            ),
            (
                lambda op: (
                    isinstance(op, InRegion) and op.region == "eu" and op.op == LoadKeys((EU,))
                ),
                [{"k": EU}],
            ),
        ]
    )
    rows, probe, keys = driver.run(regional(_reads(), RESIDENCY))
    assert rows == [{"_id": EU}, {"_id": US}]
    assert probe == [{"_id": EU}, {"_id": US}, {"_id": "x"}]  # merged, up to the limit
    assert keys == [{"k": "index"}, {"k": EU}]


def _insert() -> Generator[Any, Any, Any]:
    yield Located({EU: "eu", US: "us"})
    yield StoreKeys(({"keyAltNames": [EU], "masterKey": {"provider": "local:eu"}},))
    rows = ({"_id": EU}, {"_id": US}, {"_id": "pseu_" + "b" * 32})  # the last one unplaced
    return (yield from Insert(Side.IDENTITY, rows, True))


def test_an_ordered_insert_runs_per_region_in_order_and_keeps_the_callers_indexes() -> None:
    failure = WriteFailure(0, 11000, "duplicate")
    driver = ScriptedDriver(
        [
            (
                lambda op: (
                    isinstance(op, InRegion) and op.region == "eu" and isinstance(op.op, StoreKeys)
                ),
                None,
            ),
            (lambda op: isinstance(op, FetchAll) and op.side is Side.CLINICAL, []),  # locate
            (
                lambda op: (
                    isinstance(op, InRegion) and op.region == "eu" and len(op.op.documents) == 1
                ),
                InsertOutcome(),
            ),
            (
                lambda op: (
                    isinstance(op, InRegion) and op.region == "us" and len(op.op.documents) == 2
                ),
                InsertOutcome((failure,)),
            ),
        ]
    )
    outcome = driver.run(regional(_insert(), RESIDENCY))
    assert outcome.failures == (WriteFailure(1, 11000, "duplicate"),)


def test_a_key_wrapped_by_another_regions_master_key_is_never_stored() -> None:
    def flow() -> Generator[Any, Any, Any]:
        yield Located({EU: "eu"})
        yield StoreKeys(({"keyAltNames": [EU], "masterKey": {"provider": "local:us"}},))

    with pytest.raises(ConfigurationError, match="not by the region's own"):
        ScriptedDriver([]).run(regional(flow(), RESIDENCY))


def test_shredding_an_unplaced_subject_shreds_only_where_its_key_is() -> None:
    def flow() -> Generator[Any, Any, int]:
        return (yield from ShredKeys((EU,)))

    driver = ScriptedDriver(
        [
            (FetchAll, []),  # locate: no clinical row names it
            (lambda op: isinstance(op, InRegion) and op.region == "eu", [{"keyAltNames": [EU]}]),
            (lambda op: isinstance(op, InRegion) and op.region == "us", []),
            (
                lambda op: (
                    isinstance(op, InRegion) and op.region == "eu" and isinstance(op.op, ShredKeys)
                ),
                1,
            ),
        ]
    )
    assert driver.run(regional(flow(), RESIDENCY)) == 1


def test_an_insert_places_each_subject_before_writing_anything(ctx: Context) -> None:
    placed = replace(ctx, residency=RESIDENCY)
    driver = ScriptedDriver(
        [
            (Located, None),
            (lambda op: isinstance(op, Insert) and op.side is Side.IDENTITY, InsertOutcome()),
            (lambda op: isinstance(op, Insert) and op.side is Side.CLINICAL, InsertOutcome()),
        ]
    )
    documents = [{"_id": 1, "first_name": "Ada", "country": "FR"}, {"_id": 2, "country": "BR"}]
    driver.run(write.insert(placed, documents, ordered=True))
    located, _, clinical = driver.seen
    assert isinstance(located, Located)
    assert isinstance(clinical, Insert)
    regions = {d[PSEUDONYM_FIELD]: d[REGION_FIELD] for d in clinical.documents}
    assert dict(located.regions) == regions
    assert sorted(regions.values()) == ["eu", "us"]


def test_without_regions_an_insert_states_and_writes_no_region(ctx: Context) -> None:
    driver = ScriptedDriver([(lambda op: isinstance(op, Insert), InsertOutcome())] * 2)
    driver.run(write.insert(ctx, [{"_id": 1, "first_name": "Ada", "country": "FR"}], ordered=True))
    assert not any(isinstance(op, Located) for op in driver.seen)
    assert REGION_FIELD not in driver.seen[-1].documents[0]  # type: ignore[union-attr]


def test_an_unknown_region_fails_the_insert_before_any_request(ctx: Context) -> None:
    wrong = replace(ctx, residency=replace(RESIDENCY, resolver=lambda d: "mars"))
    driver = ScriptedDriver([])
    with pytest.raises(UnknownRegion):
        driver.run(write.insert(wrong, [{"_id": 1, "first_name": "Ada"}], ordered=True))
    assert driver.seen == []
