"""Migration with regions: each migrated subject is placed by the resolver, as an insert is.

The fixtures are those of ``test_residency.py``: two regions' stores (mongomock, or two
FerretDB servers). A migrated EU document's identity row and data key must be in the EU stores
only, a US one's in the US stores only, and ``unmigrate`` must give back the plaintext
documents byte for byte, in place and through new collections alike.
"""

from __future__ import annotations

from typing import Any

import bson
import pytest
from bson import ObjectId

import privata_mongo
import privata_mongo.mongoengine as pm
from privata_mongo import access_context
from privata_mongo.config import current
from privata_mongo.core.pseudonym import is_pseudonym
from privata_mongo.encryption import forget_keys
from privata_mongo.migration import migrate, swap_migration, unmigrate
from testkit.backends import Backend
from tests.integration.test_residency import (
    EU,
    Stores,
    _regions,
    second_ferretdb,
    settings_restored,
    stores,
)

__all__ = ["second_ferretdb", "settings_restored", "stores"]

NAME = "res_mig"
COUNTRIES = ("DE", "US", "FR", "US", "AT", "BR")  # BR: no mapping, the default region


class ResMigPatient(pm.Document):
    full_name = pm.StringField()
    email = pm.EmailField(searchable=True)
    country = pm.StringField()
    visits = pm.IntField()
    meta = {"collection": NAME}


def _sources() -> list[dict[str, Any]]:
    return [
        {
            "_id": ObjectId(),
            "full_name": f"Person {i}",
            "email": f"p{i}@example.org",
            "country": country,
            "visits": i,
        }
        for i, country in enumerate(COUNTRIES)
    ]


def _bytes(collection: Any) -> dict[str, bytes]:
    return {repr(d["_id"]): bson.encode(d) for d in collection.find({})}


def _configure(stores: Stores) -> None:
    forget_keys()
    privata_mongo.configure(
        regions=_regions(stores),
        default_region="us",
        region_resolver=None,
        region_field="country",
        region_values=dict.fromkeys(EU, "eu") | {"US": "us"},
    )


def _identity(stores: Stores, region: str) -> Any:
    return (stores.eu if region == "eu" else stores.us)[stores.database][f"{NAME}__identity"]


def _placement(connected: Any, stores: Stores, name: str) -> dict[str, tuple[str, str, str]]:
    """Each migrated document's country → (its region, where its identity row and key are)."""
    placed: dict[str, tuple[str, str, str]] = {}
    for row in connected[name].find({}):
        pseudonym = row["_pseudonym"]
        rows = [r for r in ("eu", "us") if _identity(stores, r).count_documents({"_id": pseudonym})]
        keys = [
            r for r in ("eu", "us") if stores.vault(r).count_documents({"keyAltNames": pseudonym})
        ]
        placed[f"{row['country']}{row['visits']}"] = (
            row["_region"],
            ",".join(rows),
            ",".join(keys),
        )
    return placed


EXPECTED = {
    f"{country}{i}": ("eu", "eu", "eu") if country in EU else ("us", "us", "us")
    for i, country in enumerate(COUNTRIES)
}


@pytest.mark.parametrize("into", [None, "res_mig_split"])
def test_migrated_subjects_are_placed_by_the_resolver_and_unmigrate_gives_them_back(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None, into: str | None
) -> None:
    _configure(stores)
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    connected[NAME].insert_many(_sources())
    before = _bytes(connected[NAME])
    with access_context(actor="ops", purpose="migration", legal_basis="art6_1c"):
        report = migrate(connected, ResMigPatient, batch_size=4, into=into)
        assert report.migrated == len(COUNTRIES)
        if into is not None:
            swap_migration(connected, ResMigPatient, into=into)
        assert _placement(connected, stores, NAME) == EXPECTED
        assert f"{NAME}__identity" not in connected.list_collection_names()
        vault_db, _, vault = current().key_vault_namespace.partition(".")
        base = [n for k in connected.client[vault_db][vault].find({}) for n in k["keyAltNames"]]
        assert not [n for n in base if is_pseudonym(n)]  # no subject's key outside its region
        forget_keys()  # read back from the regions' stores alone
        found = ResMigPatient.objects(country="DE", email="p0@example.org").first()
        assert (found.full_name, found.country) == ("Person 0", "DE")
        if into is not None:  # out through new collections too, the split ones only read
            unmigrate(connected, ResMigPatient, batch_size=4, into="res_mig_back")
            assert _bytes(connected["res_mig_back"]) == before
        unmigrate(connected, ResMigPatient, batch_size=4)
    assert _bytes(connected[NAME]) == before
    assert _identity(stores, "eu").count_documents({}) == 0
    assert _identity(stores, "us").count_documents({}) == 0
