"""Data residency and the rights: exports say where each part is stored, records name regions.

The regions are those of ``test_residency`` (two mongomock stores, or with ``--backend
ferretdb`` a second FerretDB server for the EU and the session's server for the US). Requests
are counted per region, as there, to show that a right about an EU subject asks the EU stores
alone.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import bson
import mongoengine as me
import pytest

import privata_mongo
import privata_mongo.mongoengine as pm
from privata_mongo.config import current
from privata_mongo.context import access_context
from privata_mongo.encryption import forget_keys
from privata_mongo.erasure import erasure_log
from privata_mongo.rights import Rights
from testkit.backends import Backend
from testkit.cli import run_cli
from tests.integration.test_residency import (
    VAULT,
    Stores,
    _connect,
    _counting_clients,
    _raw,
    _regions,
    second_ferretdb,
    settings_restored,
    stores,
)

__all__ = ["second_ferretdb", "settings_restored", "stores"]  # fixtures shared with residency

CONTEXT = {"actor": "dpo", "purpose": "data-subject-request", "legal_basis": "art6_1c"}
RIGHTS = (
    "access",
    "export",
    "rectify",
    "restrict",
    "object",
    "consent",
    "erase",
    "replay",
)


def _vault_namespace(stores: Stores) -> str:
    database, _, collection = VAULT.partition(".")
    return f"{database}_{stores.database}.{collection}"


def _pseudonym(connected: Any, country: str) -> str:
    row = connected["res_patient"].find_one({"country": country})
    return str(row["_pseudonym"])


def test_access_and_export_say_where_each_part_is_stored(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _connect(backend, _regions(stores))
    marie = _pseudonym(connected, "FR")
    with access_context(**CONTEXT):
        held = Rights([Patient]).access(marie)
    expected = {
        "region": "eu",
        "key": {"region": "eu", "key_vault": _vault_namespace(stores), "master_key": "local:eu"},
        "models": [
            {
                "model": "ResPatient",
                "clinical": {
                    "region": None,
                    "database": backend.db_name,
                    "collection": "res_patient",
                },
                "identity": {
                    "region": "eu",
                    "database": stores.database,
                    "collection": "res_patient__identity",
                },
            }
        ],
    }
    assert held.storage is not None
    assert held.storage.document() == expected
    outputs: dict[str, bytes] = {}
    for fmt in ("json", "csv", "xml"):
        out = io.BytesIO()
        with access_context(**CONTEXT):
            Rights([Patient]).export(marie, out, format=fmt)
        outputs[fmt] = out.getvalue()
    assert json.loads(outputs["json"])["storage"] == expected
    with zipfile.ZipFile(io.BytesIO(outputs["csv"])) as archive:
        rows = list(csv.reader(io.StringIO(archive.read("_storage.csv").decode())))
    assert rows == [
        ["part", "model", "region", "stored_in", "master_key"],
        ["key", "", "eu", _vault_namespace(stores), "local:eu"],
        ["identity", "ResPatient", "eu", f"{stores.database}.res_patient__identity", ""],
        ["clinical", "ResPatient", "", f"{backend.db_name}.res_patient", ""],
    ]
    root = ET.fromstring(outputs["xml"])  # noqa: S314 - the export this test just wrote
    storage = root.find("storage")
    assert storage is not None
    assert [f.text for f in storage.findall("field") if f.get("name") == "region"] == ["eu"]
    # where, never how to get in: no host, no connection string, no key material
    every = b"".join(outputs.values()) + repr(held.storage).encode()
    for secret in (b"mongodb://", b"localhost", b"127.0.0.1", b"keyMaterial"):
        assert secret not in every


def test_without_regions_access_names_the_deployments_stores_and_exports_keep_their_shape(
    connected: Any, backend: Backend, settings_restored: None
) -> None:
    Patient = _connect(backend, None)
    ada = _pseudonym(connected, "GB")
    with access_context(**CONTEXT):
        held = Rights([Patient]).access(ada)
        out = io.BytesIO()
        Rights([Patient]).export(ada, out)
    assert held.storage is not None
    assert held.storage.document() == {
        "region": None,
        "key": {"region": None, "key_vault": current().key_vault_namespace, "master_key": "local"},
        "models": [
            {
                "model": "ResPatient",
                "clinical": {
                    "region": None,
                    "database": backend.db_name,
                    "collection": "res_patient",
                },
                "identity": {
                    "region": None,
                    "database": backend.db_name,
                    "collection": "res_patient__identity",
                },
            }
        ],
    }
    assert set(json.loads(out.getvalue())) == {"subject", "models", "processing"}


def _each_right(Patient: Any, pseudonym: str) -> dict[str, Any]:
    rights = Rights([Patient])
    return {
        "access": lambda: rights.access(pseudonym),
        "export": lambda: rights.export(pseudonym, io.BytesIO()),
        "rectify": lambda: rights.rectify(pseudonym, Patient, {"first_name": "Maria"}),
        "restrict": lambda: rights.restrict(pseudonym),
        "object": lambda: rights.object(pseudonym, "marketing"),
        "consent": lambda: rights.consent(
            pseudonym, "research", source="web form", notice_version="v1"
        ),
        "erase": lambda: rights.erase(pseudonym),
        "replay": rights.replay_erasures,
    }


def test_the_rights_about_an_eu_subject_ask_the_eu_stores_only_and_records_name_the_region(
    connected: Any,
    backend: Backend,
    stores: Stores,
    settings_restored: None,
    request: pytest.FixtureRequest,
) -> None:
    eu, us, counts = _counting_clients(backend, request)
    try:
        Patient = _connect(backend, _regions(Stores(eu, us, stores.database)))
        marie = _pseudonym(connected, "FR")
        forget_keys()
        asked: dict[str, dict[str, int]] = {}
        for name, right in _each_right(Patient, marie).items():
            before = counts()
            with access_context(**CONTEXT):
                right()
            after = counts()
            asked[name] = {r: after[r] - before[r] for r in after}
        entry = erasure_log([Patient._get_collection().database]).find_one({"_id": marie})
    finally:
        for client in (eu, us):
            client.drop_database(stores.database)
            client.drop_database(f"{VAULT.partition('.')[0]}_{stores.database}")
            client.close()
    # every right but the replay reads and writes the EU stores, and never the US ones
    assert {name for name, n in asked.items() if n["us"]} == {"replay"}
    assert all(asked[name]["eu"] > 0 for name in RIGHTS), asked
    trail = list(connected[current().audit_collection].find({"subjects": marie}))
    operations = {r["operation"] for r in trail}
    assert {"access", "export", "rectify", "restrict", "object", "consent", "erase"} <= operations
    assert {(r["operation"], tuple(r.get("regions", ()))) for r in trail} == {
        (operation, ("eu",)) for operation in operations
    }
    assert entry["regions"] == ["eu"]
    assert {r.get("outcome") for r in trail if r["operation"] == "erase"} >= {"ok", "replay"}


def test_a_replay_after_a_restore_shreds_the_key_again_in_its_regions_vault_only(
    connected: Any, backend: Backend, stores: Stores, settings_restored: None
) -> None:
    Patient = _connect(backend, _regions(stores))
    emmy = _pseudonym(connected, "DE")
    (key,) = [k for k in _raw(stores.vault("eu")) if emmy in k["keyAltNames"]]
    with access_context(**CONTEXT):
        Rights([Patient]).erase(emmy)
    us_vault = sorted(bson.encode(k) for k in _raw(stores.vault("us")))
    stores.vault("eu").insert_one(key)  # the EU vault restored from a backup
    with access_context(**CONTEXT):
        (replayed,) = Rights([Patient]).replay_erasures()
    assert (replayed.pseudonym, replayed.key_shredded) == (emmy, True)
    assert not [k for k in _raw(stores.vault("eu")) if emmy in k.get("keyAltNames", ())]
    assert sorted(bson.encode(k) for k in _raw(stores.vault("us"))) == us_vault
    (record,) = connected[current().audit_collection].find({"outcome": "replay"})
    assert (record["subjects"], record["regions"]) == ([emmy], ["eu"])


CLI_MODELS = """
import privata_mongo.mongoengine as me


class CliResPatient(me.Document):
    first_name = me.StringField()
    email = me.EmailField(searchable=True)
    country = me.StringField()
    meta = {"collection": "cli_res_patient"}
"""


def test_the_cli_access_and_export_say_where_each_part_is_stored(
    connected: Any,
    backend: Backend,
    stores: Stores,
    settings_restored: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "cli_res_models.py").write_text(CLI_MODELS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    models = importlib.import_module("cli_res_models")
    privata_mongo.configure(regions=_regions(stores), default_region="us", region_resolver=_eu)
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    try:
        models.CliResPatient(first_name="Marie", email="marie@example.org", country="FR").save()
    finally:
        me.disconnect()
    marie = connected["cli_res_patient"].find_one()["_pseudonym"]
    common = ("--models", "cli_res_models", "--db", backend.db_name, "--actor", "dpo")
    printed = run_cli("rights", "access", marie, *common, "--json", client=backend.client)
    assert printed.exit_code == 0, printed.output
    storage = json.loads(printed.output)["storage"]
    assert (storage["region"], storage["key"]["master_key"]) == ("eu", "local:eu")
    assert storage["models"][0]["identity"]["region"] == "eu"
    out = tmp_path / "marie.json"
    exported = run_cli("rights", "export", marie, *common, "--out", str(out), client=backend.client)
    assert exported.exit_code == 0, exported.output
    assert json.loads(out.read_text())["storage"] == storage


def _eu(document: Any) -> str:
    return "eu" if document.get("country") == "FR" else "us"
