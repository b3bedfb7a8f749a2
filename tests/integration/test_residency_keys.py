"""Data residency and the operator's key tools: every region's vault, each by its own master key.

The regions are those of ``test_residency`` (two mongomock stores, or with ``--backend
ferretdb`` a second FerretDB server for the EU and the session's server for the US).
"""

from __future__ import annotations

import json
from typing import Any

import bson
import pytest
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions

from privata_mongo.config import current
from privata_mongo.encryption import (
    forget_keys,
    new_master_key,
    reindex,
    rotate_master_key,
    shred,
)
from privata_mongo.errors import ConfigurationError, UnknownRegion
from privata_mongo.report import compliance_report
from testkit.backends import Backend
from testkit.cli import run_cli
from tests.integration.test_residency import (
    EMAILS,
    VAULT,
    Stores,
    _connect,
    _raw,
    _regions,
    second_ferretdb,
    settings_restored,
    stores,
)

_STANDARD: CodecOptions[Any] = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
"""Encodes what a client configured with standard UUIDs decoded (the base vault's)."""

__all__ = ["second_ferretdb", "settings_restored", "stores"]  # fixtures shared with residency


def _bytes(collection: Any) -> list[bytes]:
    return sorted(bson.encode(d, codec_options=_STANDARD) for d in collection.find())


def _base_vault(connected: Any) -> Any:
    database, _, collection = current().key_vault_namespace.partition(".")
    return connected.client[database][collection]


def _subject_keys(collection: Any) -> dict[str, dict[str, Any]]:
    return {k["keyAltNames"][0]: k for k in _raw(collection) if k["keyAltNames"][0][:5] == "pseu_"}


def test_rotating_a_regions_master_key_rewraps_its_vault_only(
    connected: Any,
    backend: Backend,
    stores: Stores,
    settings_restored: None,
    monkeypatch: Any,
) -> None:
    Patient = _connect(backend, _regions(stores))
    us_vault, base_vault = _bytes(stores.vault("us")), _bytes(_base_vault(connected))
    eu_before = _subject_keys(stores.vault("eu"))
    with pytest.raises(UnknownRegion, match="configured regions: eu, us"):
        rotate_master_key(connected.client, new_master_key(), region="mars")
    new_eu = new_master_key()
    assert rotate_master_key(connected.client, new_eu, region="eu") == len(eu_before) == 5
    eu_after = _subject_keys(stores.vault("eu"))
    assert set(eu_after) == set(eu_before)
    for name, key in eu_after.items():
        assert key["masterKey"]["provider"] == "local:eu"
        assert key["keyMaterial"] != eu_before[name]["keyMaterial"]
    assert _bytes(stores.vault("us")) == us_vault  # the other region's vault is not touched
    assert _bytes(_base_vault(connected)) == base_vault
    # the old EU master key no longer unwraps them; the new one does
    forget_keys()
    with pytest.raises(Exception, match=r"(?i)key|decrypt|unwrap"):
        [p.email for p in Patient.objects(country="FR")]
    monkeypatch.setenv("PRIVATA_MASTER_KEY_EU", new_eu)
    forget_keys()
    assert sorted(p.email for p in Patient.objects) == sorted(EMAILS)


def test_rotating_the_base_master_key_leaves_every_regions_vault_alone(
    connected: Any,
    backend: Backend,
    stores: Stores,
    settings_restored: None,
    monkeypatch: Any,
) -> None:
    Patient = _connect(backend, _regions(stores))
    vaults = {r: _bytes(stores.vault(r)) for r in ("eu", "us")}
    base = _raw(_base_vault(connected))
    new_base = new_master_key()
    assert rotate_master_key(connected.client, new_base) == len(base) > 0
    assert {r: _bytes(stores.vault(r)) for r in ("eu", "us")} == vaults
    monkeypatch.setenv("PRIVATA_MASTER_KEY", new_base)
    forget_keys()
    assert Patient.objects(email="marie@example.org").first().first_name == "Marie"


def test_a_region_wrapping_its_keys_in_a_remote_kms_is_not_rotated_here(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    regions = _regions(stores)
    _connect(backend, regions)
    from dataclasses import replace

    import privata_mongo

    privata_mongo.configure(
        regions={**regions, "eu": replace(regions["eu"], kms_provider="aws:eu")}
    )
    with pytest.raises(ConfigurationError, match="'aws:eu': rotate that master key in its KMS"):
        rotate_master_key(connected.client, new_master_key(), region="eu")


def test_reindex_rewrites_the_terms_in_every_regions_identity_store(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _connect(backend, _regions(stores))
    terms = {r: {d["_id"]: d["_idx"] for d in _raw(stores.identity(r))} for r in ("eu", "us")}
    for region in ("eu", "us"):
        # terms as some other version wrote them: found by no lookup until re-indexed
        stores.identity(region).update_many({}, {"$set": {"_idx.email": bson.Binary(b"stale")}})
    assert Patient.objects(email="marie@example.org").count() == 0
    assert reindex(Patient._get_collection()) == len(EMAILS)
    assert reindex(Patient._get_collection()) == 0
    for region in ("eu", "us"):
        assert {d["_id"]: d["_idx"] for d in _raw(stores.identity(region))} == terms[region]
    assert Patient.objects(email="marie@example.org").first().first_name == "Marie"
    assert Patient.objects(email="grace@example.org").first().first_name == "Grace"


def test_shredding_destroys_a_key_in_the_vault_of_its_region(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _connect(backend, _regions(stores))
    marie = connected["res_patient"].find_one({"country": "FR"})["_pseudonym"]
    us_vault = _bytes(stores.vault("us"))
    assert shred(connected.client, [marie]) == 1
    assert marie not in _subject_keys(stores.vault("eu"))
    tombstones = stores.vault("eu").database[f"{stores.vault('eu').name}.tombstones"]
    assert tombstones.count_documents({"_id": marie}) == 1
    assert _bytes(stores.vault("us")) == us_vault
    assert Patient.objects(country="FR").first().email is None


def test_keys_list_and_status_show_every_regions_vault_with_its_region(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    _connect(backend, _regions(stores))
    placed = {d["_pseudonym"]: d["_region"] for d in _raw(connected["res_patient"])}
    listed = run_cli("keys", "list", "--json", client=backend.client)
    assert listed.exit_code == 0, listed.output
    found = json.loads(listed.output)
    subjects = {k["name"]: k for k in found["keys"] if k["name"] in placed}
    assert {n: k["region"] for n, k in subjects.items()} == placed
    assert {n: k["provider"] for n, k in subjects.items()} == {
        n: f"local:{r}" for n, r in placed.items()
    }
    assert {k["region"] for k in found["keys"] if k["name"] not in placed} == {None}
    assert set(found["region_vaults"]) == {"eu", "us"}
    status = json.loads(run_cli("keys", "status", "--json", client=backend.client).output)
    assert {r["region"]: r["subject_keys"] for r in status["regions"]} == {"eu": 5, "us": 3}
    assert status["subject_keys"] == 0  # the base vault holds no subject's key
    table = run_cli("keys", "list", client=backend.client).output
    rows = [line.split("│")[2].strip() for line in table.splitlines() if line.count("│") > 2]
    assert {"eu", "us", ""} <= set(rows)  # the region column: each region's keys, the base's


def test_the_compliance_report_counts_each_regions_key_vault(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _connect(backend, _regions(stores))
    report = compliance_report(connected, [Patient])
    assert report.keys.subject_keys == 0  # the base vault: the library's own keys only
    counted = {k.region: (k.vault, k.subject_keys, k.shredded) for k in report.region_keys}
    namespace = f"{VAULT.partition('.')[0]}_{stores.database}.{VAULT.partition('.')[2]}"
    assert counted == {"eu": (namespace, 5, 0), "us": (namespace, 3, 0)}
    markdown = report.to_markdown()
    assert f"| eu | {namespace} |" in markdown
    assert f"<td>us</td><td>{namespace}</td>" in report.to_html()
