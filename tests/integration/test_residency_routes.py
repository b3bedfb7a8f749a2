"""Data residency on every path: pins honoured by each read, the resolver placing upserts.

The fixtures are those of ``test_residency.py`` (two regions' stores, mongomock or two FerretDB
servers); each claim is checked on the raw stores or by counting each region's requests.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pymongo
import pytest
from pymongo import DeleteOne, InsertOne, ReplaceOne, UpdateOne

import privata_mongo
import privata_mongo.mongoengine as pm
from compat_suite.requirements import requires
from privata_mongo.config import current
from privata_mongo.context import partial_results, subject_request, within_regions
from privata_mongo.encryption import forget_keys
from privata_mongo.errors import RegionUnavailable, UnknownRegion
from privata_mongo.rights import Rights, Subject
from testkit.backends import Backend
from tests.integration.test_residency import (
    EU,
    PEOPLE,
    VAULT,
    Stores,
    _connect,
    _counting_clients,
    _model,
    _regions,
    second_ferretdb,
    settings_restored,
    stores,
)

__all__ = ["second_ferretdb", "settings_restored", "stores"]

EU_PEOPLE = sum(1 for p in PEOPLE if p[3] in EU)


def test_every_read_path_sees_only_the_pinned_regions_subjects(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _connect(backend, _regions(stores))
    collection = Patient._get_collection()
    with within_regions("eu"):
        seen = {
            "estimated": collection.estimated_document_count(),
            "count": collection.count_documents({}),
            "find": sorted(d["email"] for d in collection.find({})),
            "find_one US": collection.find_one({"country": "US"}),
            "distinct": sorted(collection.distinct("country")),
            "distinct email": sorted(collection.distinct("email")),
            "aggregate": sorted(
                d["_id"] for d in collection.aggregate([{"$group": {"_id": "$country"}}])
            ),
            "aggregate identity": sorted(
                d["email"] for d in collection.aggregate([{"$project": {"email": 1}}])
            ),
            "find_one_and_update US": collection.find_one_and_update(
                {"country": "US"}, {"$set": {"visits": 100}}
            ),
            "find_one_and_delete US": collection.find_one_and_delete({"country": "US"}),
            "find_one_and_replace US": collection.find_one_and_replace(
                {"country": "US"}, {"country": "US", "visits": 0}
            ),
            "bulk": collection.bulk_write(
                [
                    UpdateOne({"country": "US"}, {"$set": {"visits": 101}}),
                    DeleteOne({"country": "US"}),
                    ReplaceOne({"country": "US"}, {"country": "US", "visits": 1}),
                ]
            ).bulk_api_result,
            "queryset count": Patient.objects.count(),
            "queryset emails": sorted(p.email for p in Patient.objects),
            "command count": Patient._get_db().command("count", "res_patient")["n"],
            "command distinct": sorted(
                Patient._get_db().command("distinct", "res_patient", key="email")["values"]
            ),
        }
        with subject_request("access"):  # no restriction clause: the server's estimate
            seen["estimated, no clause"] = collection.estimated_document_count()
    with subject_request("access"):
        assert collection.estimated_document_count() == len(PEOPLE)
    eu_emails = sorted(p[2] for p in PEOPLE if p[3] in EU)
    assert seen["estimated"] == EU_PEOPLE
    assert seen["count"] == EU_PEOPLE
    assert seen["find"] == eu_emails
    assert seen["find_one US"] is None
    assert seen["distinct"] == sorted({p[3] for p in PEOPLE if p[3] in EU})
    assert seen["distinct email"] == eu_emails
    assert seen["aggregate"] == sorted({p[3] for p in PEOPLE if p[3] in EU})
    assert seen["aggregate identity"] == eu_emails
    assert seen["find_one_and_update US"] is None
    assert seen["find_one_and_delete US"] is None
    assert seen["find_one_and_replace US"] is None
    result = seen["bulk"]
    assert (result["nMatched"], result["nModified"], result["nRemoved"]) == (0, 0, 0)
    assert seen["queryset count"] == EU_PEOPLE
    assert seen["queryset emails"] == eu_emails
    assert seen["command count"] == EU_PEOPLE
    assert seen["command distinct"] == eu_emails
    assert seen["estimated, no clause"] == EU_PEOPLE
    # nothing of the US subjects was changed
    us_rows = list(connected["res_patient"].find({"country": "US"}))
    assert sorted(r["visits"] for r in us_rows) == sorted(p[4] for p in PEOPLE if p[3] == "US")
    # outside the block, every subject again
    assert collection.estimated_document_count() == len(PEOPLE)


def _configure_by_field(backend: Backend, stores: Stores) -> Any:
    """Two regions placed by ``country`` through ``region_values``, and the model."""
    pm.disconnect()
    privata_mongo.configure(
        regions=_regions(stores),
        default_region="us",
        region_resolver=None,
        region_field="country",
        region_values=dict.fromkeys(EU, "eu") | {"US": "us"},
    )
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    return _model()


def _placed(connected: Any, stores: Stores, filter: dict[str, Any]) -> tuple[str, str, str]:
    """The region of the clinical row matching ``filter``, and where its identity row is."""
    row = connected["res_patient"].find_one(filter)
    assert row is not None
    pseudonym = row["_pseudonym"]
    held = [r for r in ("eu", "us") if stores.identity(r).count_documents({"_id": pseudonym})]
    keys = [r for r in ("eu", "us") if stores.vault(r).count_documents({"keyAltNames": pseudonym})]
    return row.get("_region", ""), ",".join(held), ",".join(keys)


UPSERTS: dict[str, Any] = {
    "update_one $set": lambda c: c.update_one(
        {"email": "u1@example.org"}, {"$set": {"country": "DE", "visits": 1}}, upsert=True
    ),
    "update_one filter equality": lambda c: c.update_one(
        {"country": "FR", "email": "u2@example.org"}, {"$set": {"visits": 2}}, upsert=True
    ),
    "update_one $setOnInsert": lambda c: c.update_one(
        {"email": "u3@example.org"}, {"$setOnInsert": {"country": "AT"}}, upsert=True
    ),
    "update_one clinical only": lambda c: c.update_one(
        {"visits": 4, "blood_type": "zz"}, {"$set": {"country": "DE"}}, upsert=True
    ),
    "update_many clinical only": lambda c: c.update_many(
        {"visits": 5, "blood_type": "zz"}, {"$set": {"country": "GB"}}, upsert=True
    ),
    "update pipeline": lambda c: c.update_one(
        {"visits": 6, "country": "FR", "blood_type": "zz"},
        [{"$set": {"blood_type": "zy"}}],
        upsert=True,
    ),
    "replace_one": lambda c: c.replace_one(
        {"email": "u7@example.org"},
        {"email": "u7@example.org", "country": "DE", "visits": 7},
        upsert=True,
    ),
    "find_one_and_update": lambda c: c.find_one_and_update(
        {"email": "u8@example.org"}, {"$set": {"country": "FR", "visits": 8}}, upsert=True
    ),
    "find_one_and_update clinical only": lambda c: c.find_one_and_update(
        {"visits": 9, "blood_type": "zz"}, {"$set": {"country": "FR"}}, upsert=True
    ),
    "find_one_and_replace": lambda c: c.find_one_and_replace(
        {"email": "u10@example.org"}, {"country": "DE", "visits": 10}, upsert=True
    ),
    "bulk_write upserts": lambda c: c.bulk_write(
        [
            UpdateOne({"visits": 11, "blood_type": "zz"}, {"$set": {"country": "DE"}}, upsert=True),
            ReplaceOne({"visits": 12}, {"country": "FR", "visits": 12}, upsert=True),
            InsertOne({"country": "US", "visits": 13}),
        ]
    ),
}
UPSERTED = {
    "update_one $set": {"visits": 1},
    "update_one filter equality": {"visits": 2},
    "update_one $setOnInsert": {"country": "AT"},
    "update_one clinical only": {"visits": 4},
    "update_many clinical only": {"visits": 5},
    "update pipeline": {"visits": 6},
    "replace_one": {"visits": 7},
    "find_one_and_update": {"visits": 8},
    "find_one_and_update clinical only": {"visits": 9},
    "find_one_and_replace": {"visits": 10},
    "bulk_write upserts": {"visits": 11},
}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=requires("update_pipelines")) if "pipeline" in p else p
        for p in UPSERTS
    ],
)
def test_an_upsert_places_its_new_subject_by_the_resolver(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None, path: str
) -> None:
    Patient = _configure_by_field(backend, stores)
    collection = Patient._get_collection()
    UPSERTS[path](collection)
    region, identity, keys = _placed(connected, stores, UPSERTED[path])
    assert region == "eu"
    assert identity == "eu"
    assert keys in ("eu", "")  # a subject with no identity value yet has no key
    if path == "bulk_write upserts":
        assert _placed(connected, stores, {"visits": 12})[:2] == ("eu", "eu")
        assert _placed(connected, stores, {"visits": 13})[:2] == ("us", "us")


def test_an_upsert_into_a_region_outside_the_pin_is_refused_only_when_it_creates(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _configure_by_field(backend, stores)
    collection = Patient._get_collection()
    Patient(email="kept@example.org", country="US", visits=1).save()
    Patient(email="eu@example.org", country="DE", visits=2).save()
    before = connected["res_patient"].count_documents({})
    with within_regions("eu"):
        for upsert in (
            lambda: collection.update_one(
                {"visits": 40, "blood_type": "zz"}, {"$set": {"country": "US"}}, upsert=True
            ),
            lambda: collection.update_one(
                {"email": "new@example.org"}, {"$set": {"country": "US"}}, upsert=True
            ),
            lambda: collection.find_one_and_update(
                {"visits": 41}, {"$set": {"country": "US"}}, upsert=True
            ),
            lambda: collection.replace_one({"visits": 42}, {"country": "US"}, upsert=True),
        ):
            with pytest.raises(UnknownRegion, match="restricted to"):
                upsert()
        # an upsert that matches updates, whatever the document it would have created
        eu = connected["res_patient"].find_one({"country": "DE"})
        assert (
            collection.update_one(
                {"_id": eu["_id"]}, {"$set": {"blood_type": "zz"}}, upsert=True
            ).matched_count
            == 1
        )
    assert connected["res_patient"].count_documents({}) == before
    assert stores.identity("us").count_documents({}) == 1


def test_mongoengine_upserts_place_by_the_resolver(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _configure_by_field(backend, stores)
    Patient.objects(email="m1@example.org").update_one(
        set__country="DE", set__visits=21, upsert=True
    )
    Patient.objects(email="m2@example.org").modify(
        set__country="FR", set__visits=22, upsert=True, new=True
    )
    Patient.objects(visits=23).update_one(set__country="AT", upsert=True)
    for visits in (21, 22, 23):
        assert _placed(connected, stores, {"visits": visits})[:2] == ("eu", "eu")


def test_a_filter_on_the_region_field_asks_only_the_regions_holding_its_values(
    connected: Any,
    backend: Backend,
    stores: Stores,
    settings_restored: None,
    request: pytest.FixtureRequest,
) -> None:
    eu, us, counts = _counting_clients(backend, request)
    try:
        Patient = _configure_by_field(backend, Stores(eu, us, stores.database))
        for first, _last, email, country, visits, _blood in PEOPLE:
            Patient(first_name=first, email=email, country=country, visits=visits).save()

        def asked(query: Callable[[], Any]) -> tuple[Any, dict[str, int]]:
            before = counts()
            answer = query()
            after = counts()
            return answer, {r: after[r] - before[r] for r in after}

        observed = {
            "count DE": asked(
                lambda: Patient.objects(country="DE", email="emmy@example.org").count()
            ),
            "find FR or DE": asked(
                lambda: [
                    p.first_name
                    for p in Patient.objects(
                        __raw__={
                            "$and": [
                                {"country": {"$in": ["FR", "DE"]}},
                                {"email": {"$in": ["marie@example.org", "grace@example.org"]}},
                            ]
                        }
                    )
                ]
            ),
            "US e-mail under DE": asked(
                lambda: Patient.objects(country="DE", email="grace@example.org").count()
            ),
            "US": asked(lambda: Patient.objects(country="US", email="grace@example.org").count()),
            "no such country": asked(
                lambda: Patient.objects(country="BR", email="grace@example.org").count()
            ),
        }
        # an update changes the field, never the region: the pin follows the stored regions
        Patient.objects(email="grace@example.org").update(set__country="DE")
        observed["moved field"] = asked(
            lambda: Patient.objects(country="DE", email="grace@example.org").count()
        )
    finally:
        for client in (eu, us):
            client.drop_database(stores.database)
            client.drop_database(f"{VAULT.partition('.')[0]}_{stores.database}")
            client.close()
    assert observed["count DE"] == (1, {"eu": 1, "us": 0})
    assert observed["find FR or DE"][0] == ["Marie"]
    assert observed["find FR or DE"][1]["us"] == 0
    assert observed["US e-mail under DE"] == (0, {"eu": 1, "us": 0})
    assert observed["US"] == (1, {"eu": 0, "us": 1})
    assert observed["no such country"] == (0, {"eu": 0, "us": 0})
    assert observed["moved field"] == (1, {"eu": 1, "us": 1})


def test_a_region_resolver_callable_pins_no_filter(
    connected: Any,
    backend: Backend,
    stores: Stores,
    settings_restored: None,
    request: pytest.FixtureRequest,
) -> None:
    eu, us, counts = _counting_clients(backend, request)
    try:
        Patient = _connect(backend, _regions(Stores(eu, us, stores.database)))
        before = counts()
        assert Patient.objects(country="DE", email="emmy@example.org").count() == 1
        after = counts()
    finally:
        for client in (eu, us):
            client.drop_database(stores.database)
            client.drop_database(f"{VAULT.partition('.')[0]}_{stores.database}")
            client.close()
    assert {r: after[r] - before[r] for r in after} == {"eu": 1, "us": 1}


def _eu_unreachable(stores: Stores) -> Any:
    """The regions again, the EU's server now unreachable (a closed port on this machine)."""
    dead = pymongo.MongoClient(
        "mongodb://127.0.0.1:1/", serverSelectionTimeoutMS=50, connectTimeoutMS=50
    )
    privata_mongo.configure(regions=_regions(Stores(dead, stores.us, stores.database)))
    forget_keys()
    return dead


def test_access_and_export_give_the_reachable_regions_data_under_partial_results(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _connect(backend, _regions(stores))
    rights = Rights([Patient])
    marie = Subject(model="ResPatient", field="email", value="marie@example.org")
    pseudonym = rights.pseudonym(marie)
    grace = rights.pseudonym(Subject(model="ResPatient", field="email", value="grace@example.org"))
    dead = _eu_unreachable(stores)
    try:
        with pytest.raises(RegionUnavailable) as caught:
            rights.access(pseudonym)
        assert caught.value.region == "eu"
        with pytest.raises(RegionUnavailable):
            rights.export(pseudonym, io.BytesIO())
        with partial_results() as partial:
            held = rights.access(pseudonym)
            out = io.BytesIO()
            counts = rights.export(pseudonym, out)
        with partial_results() as whole:
            complete = rights.access(grace)  # a US subject: nothing left out
        # erasure and rectification stay all or nothing, in a partial block too
        with partial_results(), pytest.raises(RegionUnavailable):
            rights.erase(pseudonym)
        with partial_results(), pytest.raises(RegionUnavailable):
            rights.rectify(pseudonym, "ResPatient", {"first_name": "Maria"})
    finally:
        dead.close()
    assert partial.regions == {"eu"}
    assert held.missing_regions == ("eu",)
    (document,) = held.documents["ResPatient"]
    assert (document["country"], document["blood_type"]) == ("FR", "B+")
    assert document.get("email") is None  # its identity half is in the EU, out of reach
    assert counts == {"ResPatient": 1}
    assert b"marie@" not in out.getvalue()
    assert whole.regions == set()
    assert complete.missing_regions == ()
    assert complete.documents["ResPatient"][0]["email"] == "grace@example.org"
    trail = connected[current().audit_collection]
    accessed = list(trail.find({"operation": "access", "subjects": pseudonym}))
    assert [r.get("missing_regions") for r in accessed] == [["eu"]]
    exported = list(trail.find({"operation": "export", "subjects": pseudonym}))
    assert [r.get("missing_regions") for r in exported][-1] == ["eu"]
    assert all("missing_regions" not in r for r in trail.find({"subjects": grace}))
    # the subject was not erased: its identity is whole once the EU is back
    privata_mongo.configure(regions=_regions(stores))
    assert Patient.objects(email="marie@example.org").count() == 1


@requires("explain")
def test_explain_inside_within_regions_explains_the_query_the_find_runs(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _connect(backend, _regions(stores))
    collection = Patient._get_collection()
    outside = collection.find({"visits": {"$gte": 0}}).explain()
    with within_regions("eu"):
        inside = collection.find({"visits": {"$gte": 0}}).explain()
        found = list(collection.find({"visits": {"$gte": 0}}))
    assert "_region" not in repr(outside["command"]["filter"])
    assert inside["command"]["filter"]["_region"] in ("eu", {"$in": ["eu"]})
    assert len(found) == EU_PEOPLE


def test_a_transfer_to_an_unreachable_region_fails_naming_it_and_moves_nothing(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _connect(backend, _regions(stores))
    rights = Rights([Patient])
    grace = rights.pseudonym(Subject(model="ResPatient", field="email", value="grace@example.org"))
    us_rows, us_keys = (
        stores.identity("us").count_documents({}),
        stores.vault("us").count_documents({}),
    )
    dead = _eu_unreachable(stores)
    try:
        with partial_results(), pytest.raises(RegionUnavailable) as caught:
            rights.transfer_region(grace, "eu")
    finally:
        dead.close()
    assert caught.value.region == "eu"
    assert stores.identity("us").count_documents({}) == us_rows
    assert stores.vault("us").count_documents({}) == us_keys
    assert connected["res_patient"].find_one({"_pseudonym": grace})["_region"] == "us"
