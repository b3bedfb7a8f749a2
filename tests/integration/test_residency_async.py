"""Data residency on the async facade: Beanie's queries ask the regions concurrently.

Each region is an embedded (in-process) backend of its own; a sync mongomock client on the
same store scans it raw.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import bson
import mongomock
import pytest
from mongomock.store import ServerStore

import privata_mongo
import privata_mongo.beanie as pb
from privata_mongo.adapters.pymongo_async_store import AsyncPymongoStore
from privata_mongo.config import Region, current
from privata_mongo.core.pseudonym import is_pseudonym
from privata_mongo.embedded import AsyncMockClient
from privata_mongo.encryption import forget_keys, new_master_key
from privata_mongo.rights import AsyncRights, Subject

NAMESPACE = "regionkeys.__keyVault"
PEOPLE = (
    ("Ada", "ada@example.org", "GB"),
    ("Grace", "grace@example.org", "US"),
    ("Marie", "marie@example.org", "FR"),
    ("Barbara", "barbara@example.org", "US"),
)


class _Region:
    def __init__(self) -> None:
        self.store = ServerStore()
        self.client = AsyncMockClient(self.store)
        self.raw = mongomock.MongoClient(_store=self.store)

    def identity(self) -> list[dict[str, Any]]:
        return list(self.raw["res_async"]["res_async_person__identity"].find({}))

    def vault(self) -> list[dict[str, Any]]:
        database, _, collection = NAMESPACE.partition(".")
        return list(self.raw[database][collection].find({}))


@pytest.fixture
def regions(monkeypatch: Any) -> Iterator[dict[str, _Region]]:
    monkeypatch.setenv("PRIVATA_MASTER_KEY_EU", new_master_key())
    monkeypatch.setenv("PRIVATA_MASTER_KEY_US", new_master_key())
    made = {"eu": _Region(), "us": _Region()}
    saved = current()
    privata_mongo.configure(
        regions={
            name: Region(region.client, key_vault_namespace=NAMESPACE)
            for name, region in made.items()
        },
        default_region="us",
        region_resolver=lambda d: "us" if d.get("country") == "US" else "eu",
    )
    forget_keys()
    try:
        yield made
    finally:
        privata_mongo.config._current = saved


def _model() -> Any:
    class ResAsyncPerson(pb.Document):
        first_name: str
        email: str
        country: str

        class Settings:
            name = "res_async_person"

    return ResAsyncPerson


@pytest.fixture
def in_flight(monkeypatch: Any) -> dict[str, int]:
    """The most identity-store requests that were running at the same time."""
    seen = {"now": 0, "most": 0}
    original = AsyncPymongoStore.execute

    async def slowly(self: AsyncPymongoStore, op: Any) -> Any:
        if not self.collection.name.endswith("__identity"):
            return await original(self, op)
        seen["now"] += 1
        seen["most"] = max(seen["most"], seen["now"])
        try:
            await asyncio.sleep(0.02)
            return await original(self, op)
        finally:
            seen["now"] -= 1

    monkeypatch.setattr(AsyncPymongoStore, "execute", slowly)
    return seen


async def test_beanie_writes_route_by_region_and_reads_ask_the_regions_at_once(
    regions: dict[str, _Region], in_flight: dict[str, int]
) -> None:
    Person = _model()
    database = pb.embedded_database("res_async")
    await pb.init_beanie(database=database, document_models=[Person])
    for first, email, country in PEOPLE:
        await Person(first_name=first, email=email, country=country).insert()
    clinical = await database["res_async_person"].find({}).to_list()
    placed = {row["_pseudonym"]: row["_region"] for row in clinical}
    for name, region in regions.items():
        mine = {p for p, r in placed.items() if r == name}
        assert {row["_id"] for row in region.identity()} == mine
        keys = {n for k in region.vault() for n in k["keyAltNames"] if is_pseudonym(n)}
        assert keys == mine
    in_flight["most"] = 0
    found = await Person.find(Person.email == "marie@example.org").to_list()
    assert [p.first_name for p in found] == ["Marie"]
    assert in_flight["most"] == 2  # the EU and US identity stores were asked concurrently
    listed = await Person.find_all().sort("+first_name").to_list()
    assert [p.first_name for p in listed] == ["Ada", "Barbara", "Grace", "Marie"]
    us_vault = sorted(bson.encode(k) for k in regions["us"].vault())
    receipt = await AsyncRights([Person]).erase(
        Subject(model="ResAsyncPerson", field="email", value="ada@example.org")
    )
    assert placed[receipt.pseudonym] == "eu"
    assert sorted(bson.encode(k) for k in regions["us"].vault()) == us_vault
    assert receipt.pseudonym not in {n for k in regions["eu"].vault() for n in k["keyAltNames"]}
    grace = next(p for p, r in placed.items() if r == "us")  # one of the US subjects
    moved = await AsyncRights([Person]).transfer_region(grace, "eu")
    assert (moved.sources, moved.target, moved.rows) == (("us",), "eu", 1)
    assert grace not in {row["_id"] for row in regions["us"].identity()}
    assert grace in {row["_id"] for row in regions["eu"].identity()}
    forget_keys()
    found = await Person.find(Person.country == "US").sort("+first_name").to_list()
    assert [p.first_name for p in found] == ["Barbara", "Grace"]  # one now read from the EU


@pytest.fixture
def clinical_regions(regions: dict[str, _Region]) -> dict[str, _Region]:
    """The same regions, each with its own clinical store (on its own embedded server)."""
    privata_mongo.configure(
        regions={
            name: Region(
                region.client, key_vault_namespace=NAMESPACE, clinical_client=region.client
            )
            for name, region in regions.items()
        }
    )
    return regions


@pytest.fixture
def clinical_in_flight(monkeypatch: Any) -> dict[str, int]:
    """The most clinical-store requests that were running at the same time."""
    seen = {"now": 0, "most": 0}
    original = AsyncPymongoStore.execute

    async def slowly(self: AsyncPymongoStore, op: Any) -> Any:
        if self.collection.name != "res_async_person":
            return await original(self, op)
        seen["now"] += 1
        seen["most"] = max(seen["most"], seen["now"])
        try:
            await asyncio.sleep(0.02)
            return await original(self, op)
        finally:
            seen["now"] -= 1

    monkeypatch.setattr(AsyncPymongoStore, "execute", slowly)
    return seen


async def test_beanie_keeps_clinical_rows_in_their_regions_and_merges_reads(
    clinical_regions: dict[str, _Region], clinical_in_flight: dict[str, int]
) -> None:
    Person = _model()
    database = pb.embedded_database("res_async")
    await pb.init_beanie(database=database, document_models=[Person])
    for first, email, country in PEOPLE:
        await Person(first_name=first, email=email, country=country).insert()
    assert await database["res_async_person"].count_documents({}) == 0  # the app's: empty
    for name, region in clinical_regions.items():
        rows = list(region.raw["res_async"]["res_async_person"].find({}))
        assert {r["_region"] for r in rows} == {name}
        assert {r["country"] == "US" for r in rows} == {name == "us"}
        assert {r["_pseudonym"] for r in rows} == {r["_id"] for r in region.identity()}
    clinical_in_flight["most"] = 0
    listed = await Person.find_all().sort("-country", "+first_name").skip(1).limit(2).to_list()
    assert [p.first_name for p in listed] == ["Grace", "Ada"]
    # the application's store (asked unpinned: rows stored before a region had a store of its
    # own) and the two regions' clinical stores, at once
    assert clinical_in_flight["most"] == 3
    assert await Person.find(Person.country != "US").count() == 2
    assert sorted(await Person.distinct("country")) == ["FR", "GB", "US"]
    ada = await Person.find_one(Person.email == "ada@example.org")
    assert ada is not None
    assert (await Person.get(ada.id)).country == "GB"  # type: ignore[union-attr]
    ada.first_name = "Augusta"
    await ada.save()
    eu_rows = clinical_regions["eu"].raw["res_async"]["res_async_person"]
    assert "first_name" not in eu_rows.find_one({"_id": ada.id})  # an identity field
    assert (await Person.get(ada.id)).first_name == "Augusta"  # type: ignore[union-attr]
    grace = await Person.find_one(Person.email == "grace@example.org")
    assert grace is not None
    moved = await AsyncRights([Person]).transfer_region(
        Subject(model="ResAsyncPerson", field="email", value="grace@example.org"), "eu"
    )
    assert moved.sources == ("us",)
    assert eu_rows.count_documents({"_id": grace.id}) == 1
    us_rows = clinical_regions["us"].raw["res_async"]["res_async_person"]
    assert us_rows.count_documents({"_id": grace.id}) == 0
    forget_keys()
    assert (await Person.get(grace.id)).email == "grace@example.org"  # type: ignore[union-attr]
    await Person.find(Person.country == "FR").delete()
    assert eu_rows.count_documents({}) == 2
    assert await Person.count() == 3
