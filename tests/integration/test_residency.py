"""Data residency: EU subjects' identity data and keys in EU stores, US subjects' in US stores.

The clinical collection stays on the application's backend; each region's identity store and
key vault is a separate backend (two more mongomock stores, or, with ``--backend ferretdb``,
a second FerretDB server for the EU and the session's server for the US). Every claim is
checked by scanning the raw stores, and the query suite is run on the same data with one
region and with two, expecting identical observations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
import mongoengine as me
import mongomock
import pymongo
import pytest

import privata_mongo
import privata_mongo.mongoengine as pm
from privata_mongo import ConfigurationError
from privata_mongo.config import Region, current
from privata_mongo.context import access_context, current_access, partial_results, within_regions
from privata_mongo.core.pseudonym import is_pseudonym
from privata_mongo.encryption import forget_keys, new_master_key
from privata_mongo.errors import RegionUnavailable, UnknownRegion
from privata_mongo.processing import processing_record
from privata_mongo.rights import Rights, Subject
from privata_mongo.testing.counting import CommandCounter, OperationCounter, counting_client_class
from testkit.backends import Backend, fresh_db_name
from testkit.ferretdb import start_ferretdb
from testkit.services import ServiceProcess

VAULT = "regionkeys.__keyVault"
PEOPLE = (
    ("Ada", "Lovelace", "ada@example.org", "GB", 3, "A+"),
    ("Grace", "Hopper", "grace@example.org", "US", 7, "O-"),
    ("Marie", "Curie", "marie@example.org", "FR", 5, "B+"),
    ("Emmy", "Noether", "emmy@example.org", "DE", 1, "AB-"),
    ("Alan", "Turing", "alan@example.org", "GB", 9, "O+"),
    ("Barbara", "Liskov", "barbara@example.org", "US", 4, "A-"),
    ("Lise", "Meitner", "lise@example.org", "AT", 2, "B-"),
    ("Katherine", "Johnson", "katherine@example.org", "US", 6, "A+"),
)
EU = ("GB", "FR", "DE", "AT")
EMAILS = tuple(p[2] for p in PEOPLE)


@dataclass
class Stores:
    """The raw clients of the two regions' stores, and the databases the test owns there."""

    eu: Any
    us: Any
    database: str

    def identity(self, region: str) -> Any:
        client = self.eu if region == "eu" else self.us
        return client[self.database]["res_patient__identity"]

    def vault(self, region: str) -> Any:
        client = self.eu if region == "eu" else self.us
        database, _, collection = VAULT.partition(".")
        return client[f"{database}_{self.database}"][collection]


def _region_clients(backend: Backend, request: pytest.FixtureRequest) -> tuple[Any, Any]:
    if backend.name == "mongomock":
        return mongomock.MongoClient(), mongomock.MongoClient()
    second: ServiceProcess = request.getfixturevalue("second_ferretdb")
    return pymongo.MongoClient(second.uri), pymongo.MongoClient(backend.uri)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def second_ferretdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A second FerretDB server on a port of its own: the EU region's."""
    with start_ferretdb(tmp_path_factory.mktemp("ferretdb-eu")) as server:
        yield server


def _regions(stores: Stores) -> dict[str, Region]:
    vault_db, _, vault_collection = VAULT.partition(".")
    namespace = f"{vault_db}_{stores.database}.{vault_collection}"
    return {
        "eu": Region(stores.eu, stores.database, key_vault_namespace=namespace),
        "us": Region(stores.us, stores.database, key_vault_namespace=namespace),
    }


def _by_country(document: Any) -> str:
    return "eu" if document.get("country") in EU else "us"


@pytest.fixture
def stores(backend: Backend, request: pytest.FixtureRequest, monkeypatch: Any) -> Iterator[Stores]:
    """Two regions' raw clients, with their master keys in the environment."""
    monkeypatch.setenv("PRIVATA_MASTER_KEY_EU", new_master_key())
    monkeypatch.setenv("PRIVATA_MASTER_KEY_US", new_master_key())
    eu, us = _region_clients(backend, request)
    made = Stores(eu, us, fresh_db_name("res"))
    yield made
    for client in (eu, us):
        client.drop_database(made.database)
        client.drop_database(f"{VAULT.partition('.')[0]}_{made.database}")
        client.close()


@pytest.fixture
def settings_restored() -> Iterator[None]:
    saved = current()
    try:
        yield
    finally:
        privata_mongo.config._current = saved


def _model() -> Any:
    class ResPatient(me.Document):
        first_name = me.StringField()
        last_name = me.StringField()
        email = me.StringField()
        country = me.StringField()
        visits = me.IntField()
        blood_type = me.StringField()
        meta = {"collection": "res_patient"}

    return ResPatient


def _connect(backend: Backend, regions: dict[str, Region] | None) -> Any:
    me.disconnect()
    forget_keys()
    if regions is None:
        privata_mongo.configure(regions=None, default_region=None, region_resolver=None)
    else:
        privata_mongo.configure(regions=regions, default_region="us", region_resolver=_by_country)
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    Patient = _model()
    for first, last, email, country, visits, blood in PEOPLE:
        Patient(
            first_name=first,
            last_name=last,
            email=email,
            country=country,
            visits=visits,
            blood_type=blood,
        ).save()
    return Patient


def _raw(collection: Any) -> list[dict[str, Any]]:
    return list(collection.find({}))


def _bytes(collection: Any) -> list[bytes]:
    return sorted(bson.encode(d) for d in collection.find({}))


def test_identity_rows_and_keys_live_only_in_their_regions_stores(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _connect(backend, _regions(stores))
    clinical = _raw(connected["res_patient"])
    assert len(clinical) == len(PEOPLE)
    expected = {row["_pseudonym"]: row["_region"] for row in clinical}
    by_country = {row["country"]: row["_region"] for row in clinical}
    assert by_country == {c: ("eu" if c in EU else "us") for c in by_country}
    assert "res_patient__identity" not in connected.list_collection_names()
    for region in ("eu", "us"):
        rows = _raw(stores.identity(region))
        keys = _raw(stores.vault(region))
        mine = {p for p, r in expected.items() if r == region}
        assert {row["_id"] for row in rows} == mine
        subject_keys = [k for k in keys if is_pseudonym(k["keyAltNames"][0])]
        assert {k["keyAltNames"][0] for k in subject_keys} == mine
        assert {k["masterKey"]["provider"] for k in subject_keys} == {f"local:{region}"}
        raw = b"".join(bson.encode(d) for d in rows + keys)
        assert not any(e.encode() in raw for e in EMAILS)
    base_database, _, base_collection = current().key_vault_namespace.partition(".")
    base = _raw(connected.client[base_database][base_collection])
    assert not any(is_pseudonym(n) for k in base for n in k.get("keyAltNames", ()))
    # the application reads its documents as always, with no trace of the region
    ada = Patient.objects(email="ada@example.org").first()
    assert (ada.first_name, ada.country) == ("Ada", "GB")
    assert "_region" not in ada.to_mongo()


def test_updates_and_deletes_reach_the_subjects_region_only(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _connect(backend, _regions(stores))
    us_before = _bytes(stores.identity("us"))
    Patient.objects(email="emmy@example.org").update(set__first_name="Amalie")
    assert Patient.objects(email="emmy@example.org").first().first_name == "Amalie"
    assert _bytes(stores.identity("us")) == us_before
    eu_before = _bytes(stores.identity("eu"))
    Patient.objects(email="grace@example.org").delete()
    assert _bytes(stores.identity("eu")) == eu_before
    assert stores.identity("us").count_documents({}) == 2
    assert Patient.objects.count() == len(PEOPLE) - 1


def _observe(Patient: Any) -> dict[str, Any]:
    """What the application sees of one query suite, as plain values."""

    def names(queryset: Any) -> list[tuple[Any, ...]]:
        return [(p.first_name, p.email, p.country, p.visits) for p in queryset]

    first = Patient.objects.order_by("visits").first()
    return {
        "all by visits": names(Patient.objects.order_by("visits")),
        "by id": names([Patient.objects.get(id=first.id)]),
        "by email": names(Patient.objects(email="marie@example.org")),
        "email in": names(
            Patient.objects(email__in=["alan@example.org", "grace@example.org"]).order_by("-visits")
        ),
        "page": names(Patient.objects.order_by("-visits").skip(2).limit(3)),
        "slice": names(Patient.objects.order_by("last_name")[1:5]),
        "identity sort": names(Patient.objects.order_by("first_name")),
        "prefix": names(Patient.objects(last_name__startswith="L").order_by("visits")),
        "country": names(Patient.objects(country="US").order_by("visits")),
        "count": Patient.objects.count(),
        "count email": Patient.objects(email__in=list(EMAILS[:3])).count(),
        "count prefix": Patient.objects(first_name__startswith="A").count(),
        "count page": Patient.objects(visits__gte=3)
        .skip(1)
        .limit(3)
        .count(with_limit_and_skip=True),
        "distinct email": sorted(Patient.objects.distinct("email")),
        "distinct country": sorted(Patient.objects.distinct("country")),
        "distinct filtered": sorted(
            Patient.objects(blood_type__in=["A+", "A-", "AB-"]).distinct("last_name")
        ),
    }


@pytest.mark.parametrize("layout", ["one region", "two regions"])
def test_a_query_suite_sees_the_same_documents_with_one_region_or_two(
    connected: Any,
    backend: Backend,
    stores: Stores,
    settings_restored: None,
    layout: str,
) -> None:
    Patient = _connect(backend, None if layout == "one region" else _regions(stores))
    observed = _observe(Patient)
    trail = list(connected[current().audit_collection].find({"model": "ResPatient"}))
    marked = {tuple(r["regions"]) for r in trail if "regions" in r}
    if layout == "one region":  # records keep their shape
        assert marked == set()
    else:  # every record naming subjects names their regions
        assert all("regions" in r for r in trail if r["subjects"])
        assert {("eu",), ("us",), ("eu", "us")} <= marked
    me.disconnect()
    connected.drop_collection("res_patient")
    connected.drop_collection("res_patient__identity")
    other = _connect(backend, _regions(stores) if layout == "one region" else None)
    assert _observe(other) == observed
    assert observed["count"] == len(PEOPLE)
    assert observed["prefix"] == [
        ("Ada", "ada@example.org", "GB", 3),
        ("Barbara", "barbara@example.org", "US", 4),
    ]


def test_erasing_an_eu_subject_shreds_its_key_in_the_eu_vault_only(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _connect(backend, _regions(stores))
    us_vault, us_rows = _bytes(stores.vault("us")), _bytes(stores.identity("us"))
    row = connected["res_patient"].find_one({"country": "FR"})
    receipt = Rights([Patient]).erase(
        Subject(model="ResPatient", field="email", value="marie@example.org")
    )
    assert receipt.pseudonym == row["_pseudonym"]
    assert _bytes(stores.vault("us")) == us_vault
    assert _bytes(stores.identity("us")) == us_rows
    eu_names = [n for k in _raw(stores.vault("eu")) for n in k.get("keyAltNames", ())]
    assert row["_pseudonym"] not in eu_names
    assert stores.identity("eu").count_documents({"_id": row["_pseudonym"]}) == 0
    assert Patient.objects(email="marie@example.org").count() == 0
    kept = Patient.objects(country="FR").first()  # the clinical half stays, de-identified
    assert (kept.first_name, kept.email, kept.blood_type) == (None, None, "B+")


def test_an_unknown_region_or_a_missing_key_is_refused_with_a_remedy(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None, monkeypatch: Any
) -> None:
    with pytest.raises(ConfigurationError, match="default_region must name one"):
        privata_mongo.configure(regions=_regions(stores), default_region="mars")
    privata_mongo.configure(
        regions=_regions(stores), default_region="us", region_resolver=lambda d: "mars"
    )
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    Patient = _model()
    with pytest.raises(UnknownRegion, match="configured regions: eu, us") as caught:
        Patient(first_name="Ada", email="ada@example.org", country="Mars").save()
    assert "Mars" not in str(caught.value)
    assert "ada@" not in str(caught.value)
    assert connected["res_patient"].count_documents({}) == 0
    privata_mongo.configure(region_resolver=_by_country)
    monkeypatch.delenv("PRIVATA_MASTER_KEY_EU")
    forget_keys()
    with pytest.raises(ConfigurationError, match="PRIVATA_MASTER_KEY_EU is not set"):
        Patient(first_name="Ada", email="ada@example.org", country="FR").save()


def test_with_the_eu_server_stopped_eu_operations_fail_naming_it_and_us_ones_keep_working(
    connected: Any,
    backend: Backend,
    stores: Stores,
    settings_restored: None,
    tmp_path: Path,
) -> None:
    with start_ferretdb(tmp_path / "eu") as server:
        eu = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=300)
        try:
            regions = _regions(Stores(eu, stores.us, stores.database))
            Patient = _connect(backend, regions)
            ids = {p.country + p.first_name: p.id for p in Patient.objects}
            server.stop()
            outcomes = _outage_outcomes(Patient, ids)
            with partial_results() as partial:
                listed = {p.country + str(p.visits): p.email for p in Patient.objects}
                by_email = Patient.objects(email="marie@example.org").count()
                us_email = Patient.objects(email="grace@example.org").count()
        finally:
            eu.close()
    failed = {name for name, outcome in outcomes.items() if outcome != "ok"}
    assert failed == {
        "get an EU subject",
        "list everyone",
        "find by e-mail",
        "count by e-mail",
        "insert an EU subject",
        "update an EU subject",
    }
    assert all(outcomes[name] == "RegionUnavailable(eu)" for name in failed)
    assert len(outcomes) - len(failed) == 6
    # reads that allow partial results: every document, the EU ones without identity fields
    assert partial.regions == {"eu"}
    assert len(listed) == len(PEOPLE)
    assert listed["US7"] == "grace@example.org"
    assert listed["FR5"] is None
    assert (by_email, us_email) == (0, 1)
    # nothing half-written: the EU insert left no clinical row, the US insert both halves
    clinical = connected["res_patient"]
    assert clinical.count_documents({"country": "DE"}) == 1  # Emmy only
    assert clinical.count_documents({}) == len(PEOPLE) + 1 - 1
    assert stores.identity("us").count_documents({}) == 3 + 1 - 1


def _outage_outcomes(Patient: Any, ids: dict[str, Any]) -> dict[str, str]:
    """Each operation of the outage script, and how it ended."""
    operations = {
        "get an EU subject": lambda: Patient.objects.get(id=ids["FRMarie"]).email,
        "list everyone": lambda: [p.email for p in Patient.objects],
        "find by e-mail": lambda: Patient.objects(email="grace@example.org").first(),
        "count by e-mail": lambda: Patient.objects(email="grace@example.org").count(),
        "insert an EU subject": lambda: Patient(
            first_name="Rosalind", email="rosalind@example.org", country="DE"
        ).save(),
        "update an EU subject": lambda: Patient.objects(id=ids["GBAda"]).update(
            set__first_name="Augusta"
        ),
        "get a US subject": lambda: Patient.objects.get(id=ids["USGrace"]).email,
        "list US subjects": lambda: [p.email for p in Patient.objects(country="US")],
        "count everyone": lambda: Patient.objects.count(),
        "insert a US subject": lambda: Patient(
            first_name="Dorothy", email="dorothy@example.org", country="US"
        ).save(),
        "update a US subject": lambda: Patient.objects(id=ids["USBarbara"]).update(
            set__first_name="Barbara Jane"
        ),
        "delete a US subject": lambda: Patient.objects(id=ids["USKatherine"]).delete(),
    }
    outcomes: dict[str, str] = {}
    for name, operation in operations.items():
        try:
            operation()
        except RegionUnavailable as exc:
            outcomes[name] = f"RegionUnavailable({exc.region})"
        else:
            outcomes[name] = "ok"
    return outcomes


def _counting_clients(
    backend: Backend, request: pytest.FixtureRequest
) -> tuple[Any, Any, Callable[[], dict[str, int]]]:
    """Region clients whose operations are counted (per region), and the counts so far."""
    if backend.name == "mongomock":
        eu_ops, us_ops = OperationCounter(), OperationCounter()
        eu = counting_client_class(mongomock.MongoClient, eu_ops)()
        us = counting_client_class(mongomock.MongoClient, us_ops)()
        return eu, us, lambda: {"eu": eu_ops.total(), "us": us_ops.total()}
    second: ServiceProcess = request.getfixturevalue("second_ferretdb")
    eu_commands, us_commands = CommandCounter(), CommandCounter()
    eu = pymongo.MongoClient(second.uri, event_listeners=[eu_commands])
    us = pymongo.MongoClient(backend.uri, event_listeners=[us_commands])  # type: ignore[attr-defined]
    return (
        eu,
        us,
        lambda: {"eu": eu_commands.total(), "us": us_commands.total()},
    )


@pytest.mark.parametrize("subjects", [20, 200])
def test_round_trips_grow_with_the_regions_read_not_with_the_documents(
    connected: Any,
    backend: Backend,
    stores: Stores,
    settings_restored: None,
    request: pytest.FixtureRequest,
    subjects: int,
) -> None:
    eu, us, counts = _counting_clients(backend, request)
    try:
        privata_mongo.configure(
            regions=_regions(Stores(eu, us, stores.database)),
            default_region="us",
            region_resolver=_by_country,
        )
        pm.connect(db=backend.db_name, **backend.mongoengine_settings())
        Patient = _model()
        Patient.objects.insert(
            [
                Patient(first_name=f"p{i}", email=f"p{i}@example.org", country=EU[i % 4])
                if i % 2
                else Patient(first_name=f"p{i}", email=f"p{i}@example.org", country="US")
                for i in range(subjects)
            ]
        )
        forget_keys()  # a cold read: every subject's key is loaded again
        before = counts()
        assert len([p.email for p in Patient.objects]) == subjects
        after = counts()
        listing = {r: after[r] - before[r] for r in after}
        before = counts()
        assert Patient.objects(email="p3@example.org").count() == 1
        after = counts()
        probe = {r: after[r] - before[r] for r in after}
        before = counts()
        with within_regions("eu"):
            assert Patient.objects(email="p3@example.org").count() == 1  # an EU subject
            assert Patient.objects(email="p2@example.org").count() == 0  # a US one
            assert Patient.objects.count() == subjects // 2
            assert {p.country for p in Patient.objects} <= set(EU)
        after = counts()
        pinned = {r: after[r] - before[r] for r in after}
    finally:
        for client in (eu, us):
            client.drop_database(stores.database)
            client.drop_database(f"{VAULT.partition('.')[0]}_{stores.database}")
            client.close()
    # one identity read and one key read per region, for 20 subjects as for 200
    assert listing == {"eu": 2, "us": 2}
    # a condition on an identity field asks each region once; the count is the server's
    assert probe == {"eu": 1, "us": 1}
    # pinned to the EU, the US stores are not asked at all
    assert pinned["us"] == 0
    assert pinned["eu"] > 0


def test_transfer_region_moves_rows_and_key_rewrapped_and_records_it(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _connect(backend, _regions(stores))
    row = connected["res_patient"].find_one({"country": "US", "visits": 7})  # Grace
    pseudonym = row["_pseudonym"]
    # an update never moves a subject, whatever it changes
    Patient.objects(id=row["_id"]).update(set__country="DE")
    assert connected["res_patient"].find_one({"_id": row["_id"]})["_region"] == "us"
    with pytest.raises(UnknownRegion, match="configured regions: eu, us"):
        Rights([Patient]).transfer_region(pseudonym, "mars")
    moved = Rights([Patient]).transfer_region(
        Subject(model="ResPatient", field="email", value="grace@example.org"), "eu"
    )
    assert (moved.pseudonym, moved.sources, moved.target, moved.rows) == (
        pseudonym,
        ("us",),
        "eu",
        1,
    )
    assert connected["res_patient"].find_one({"_id": row["_id"]})["_region"] == "eu"
    assert stores.identity("us").count_documents({"_id": pseudonym}) == 0
    assert stores.identity("eu").count_documents({"_id": pseudonym}) == 1
    us_names = {n for k in _raw(stores.vault("us")) for n in k.get("keyAltNames", ())}
    assert pseudonym not in us_names  # moved: no key, and no tombstone either
    assert not [t for t in _raw(stores.vault("us")) if pseudonym in repr(t)]
    (key,) = [k for k in _raw(stores.vault("eu")) if pseudonym in k.get("keyAltNames", ())]
    assert key["masterKey"]["provider"] == "local:eu"
    forget_keys()  # read again from the EU stores alone, the key unwrapped by the EU key
    grace = Patient.objects(email="grace@example.org").first()
    assert (grace.first_name, grace.country) == ("Grace", "DE")
    (record,) = connected[current().audit_collection].find({"operation": "transfer_region"})
    assert (record["subjects"], record["regions"], record["fields"]) == (
        [pseudonym],
        ["eu", "us"],
        [],
    )
    assert "grace" not in repr(record).lower()
    # moving it again to where it is changes nothing
    assert Rights([Patient]).transfer_region(pseudonym, "eu").sources == ()
    listed = processing_record(connected, models=[Patient]).activities
    transfers = [a for a in listed if a.operation == "transfer_region"]
    assert [(a.model, a.records) for a in transfers] == [("ResPatient", 2)]


def test_a_key_made_later_for_a_subject_is_wrapped_by_its_regions_master_key(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _connect(backend, _regions(stores))
    late = Patient(country="FR", visits=0).save()  # no identity value yet: no key
    pseudonym = connected["res_patient"].find_one({"_id": late.id})["_pseudonym"]
    assert pseudonym not in {n for k in _raw(stores.vault("eu")) for n in k["keyAltNames"]}
    Patient.objects(id=late.id).update(set__email="late@example.org")
    (key,) = [k for k in _raw(stores.vault("eu")) if pseudonym in k["keyAltNames"]]
    assert key["masterKey"]["provider"] == "local:eu"
    assert stores.identity("eu").count_documents({"_id": pseudonym}) == 1
    assert stores.identity("us").count_documents({"_id": pseudonym}) == 0
    forget_keys()
    assert Patient.objects(email="late@example.org").first().id == late.id


def test_the_region_is_kept_by_replacements_and_never_shown(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _connect(backend, _regions(stores))
    collection = Patient._get_collection()
    marie = connected["res_patient"].find_one({"country": "FR"})
    collection.replace_one(
        {"_id": marie["_id"]},
        {"first_name": "Marie", "email": "marie@example.org", "country": "PL", "visits": 6},
    )
    stored = connected["res_patient"].find_one({"_id": marie["_id"]})
    assert (stored["_region"], stored["country"]) == ("eu", "PL")
    assert stores.identity("eu").count_documents({"_id": stored["_pseudonym"]}) == 1
    assert stores.identity("us").count_documents({"_id": stored["_pseudonym"]}) == 0
    assert "_region" not in collection.find_one({"_id": marie["_id"]})
    assert all("_region" not in d for d in collection.find({}, {"_pseudonym": 1}))
    grouped = list(collection.aggregate([{"$match": {"country": "PL"}}]))
    assert [("_region" in d, d["email"]) for d in grouped] == [(False, "marie@example.org")]


def test_without_regions_a_field_named_like_the_region_is_the_applications(
    connected: Any, backend: Backend, settings_restored: None
) -> None:
    Patient = _connect(backend, None)
    collection = Patient._get_collection()
    collection.insert_one({"email": "own@example.org", "_region": "north wing"})
    found = collection.find_one({"email": "own@example.org"})
    assert found["_region"] == "north wing"
    assert connected["res_patient"].count_documents({"_region": "north wing"}) == 1


def test_regions_work_with_the_cache_of_identity_rows_and_keys(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    privata_mongo.configure(cache="memory://")
    Patient = _connect(backend, _regions(stores))
    observed = _observe(Patient)
    assert _observe(Patient) == observed  # read again, from the cache where it holds
    us_vault = _bytes(stores.vault("us"))
    Rights([Patient]).erase(Subject(model="ResPatient", field="email", value="emmy@example.org"))
    assert _bytes(stores.vault("us")) == us_vault
    assert Patient.objects(email="emmy@example.org").count() == 0
    Patient.objects(email="alan@example.org").update(set__first_name="Alan M.")
    assert Patient.objects(email="alan@example.org").first().first_name == "Alan M."
    assert stores.identity("us").count_documents({}) == 3


def test_a_resolver_may_place_a_subject_by_the_access_context_of_its_creation(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    # The region of the clinic creating the record decides, whatever the document says.
    clinics = {"clinic-berlin": "eu", "clinic-boston": "us"}

    def by_clinic(document: Any) -> str | None:
        access = current_access()
        return clinics.get(access.actor or "") if access is not None else None

    privata_mongo.configure(
        regions=_regions(stores), default_region="us", region_resolver=by_clinic
    )
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    Patient = _model()
    with access_context(actor="clinic-berlin", purpose="treatment"):
        emmy = Patient(first_name="Emmy", email="emmy@example.org", country="US").save()
    with access_context(actor="clinic-boston", purpose="treatment"):
        grace = Patient(first_name="Grace", email="grace@example.org", country="DE").save()
    stored = {d["_id"]: d["_region"] for d in connected["res_patient"].find({})}
    assert stored == {emmy.id: "eu", grace.id: "us"}
    assert stores.identity("eu").count_documents({}) == 1
    assert stores.identity("us").count_documents({}) == 1
    assert Patient.objects.get(id=emmy.id).email == "emmy@example.org"
