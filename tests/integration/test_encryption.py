"""Encryption of identity rows: format, keys, searchable fields, failures, shredding, rotation."""

from __future__ import annotations

import base64
import logging
import os
import secrets
from collections.abc import Iterator
from typing import Any

import mongoengine as me
import pytest
from bson.binary import Binary
from pymongo import AsyncMongoClient

import privata_mongo
import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from compat_suite.requirements import requires
from privata_mongo import ConfigurationError, KeyUnavailable, SubjectErased
from privata_mongo.config import current
from privata_mongo.core.crypto import KeyRing, key_id_bytes
from privata_mongo.core.crypto.ring import key_uuid
from privata_mongo.encryption import (
    DEV_KEY_PATH,
    MASTER_KEY_ENV,
    MASTER_KEY_FILE_ENV,
    forget_keys,
    new_master_key,
    rotate_master_key,
    shred,
    unseal_row,
)
from privata_mongo.testing import ScriptedDriver
from testkit.backends import Backend
from testkit.storage_scan import plaintext_leaks

PEOPLE = (
    ("Ada", "Lovelace", "ada@example.org"),
    ("Grace", "Hopper", "grace@example.org"),
    ("Alan", "Turing", "alan@example.org"),
)


def _local(flow: Any) -> Any:
    """Run a key-ring flow under the local master key: it asks for no I/O."""
    return ScriptedDriver([]).run(flow)


def _vault(client: Any) -> Any:
    """The key-vault collection the settings name, on ``client``."""
    database, _, collection = current().key_vault_namespace.partition(".")
    return client[database][collection]


def _model(alias: str = "default") -> Any:
    class CryptPatient(me.Document):
        first_name = me.StringField()
        last_name = me.StringField()
        email = me.StringField(unique=True)
        diagnosis = me.StringField()
        meta = {"collection": "crypt_patient", "db_alias": alias}

    return CryptPatient


@pytest.fixture
def stored(connected: Any) -> tuple[Any, Any]:
    """A model with three patients saved; yields ``(model, raw database)``."""
    Patient = _model()
    for first, last, email in PEOPLE:
        Patient(first_name=first, last_name=last, email=email, diagnosis="J45").save()
    return Patient, connected


def _raw_values(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _raw_values(v)
    elif isinstance(value, list):
        for v in value:
            yield from _raw_values(v)
    else:
        yield value


def _reconnect(backend: Backend) -> Any:
    me.disconnect()
    forget_keys()
    return pm.connect(db=backend.db_name, **backend.mongoengine_settings())


# -- format --------------------------------------------------------------------------------------


def test_identity_rows_hold_one_csfle_value_and_no_plaintext(stored: tuple[Any, Any]) -> None:
    _, db = stored
    rows = list(db["crypt_patient__identity"].find())
    assert len(rows) == 3
    for row in rows:
        assert set(row) == {"_id", "_rev", "_idx", "_enc"}
        assert isinstance(row["_enc"], Binary)
        assert row["_enc"].subtype == 6
        assert row["_enc"][0] == 2  # CSFLE blob: AEAD_AES_256_CBC_HMAC_SHA_512-Random
        # the key id inside the ciphertext is the subject's own data key
        (key,) = _vault(db.client).find({"keyAltNames": row["_id"]})
        assert bytes(row["_enc"][1:17]) == key_id_bytes(key["_id"])
    plaintexts = {v for person in PEOPLE for v in person}
    for name in db.list_collection_names():
        for document in db[name].find():
            assert not plaintexts & {v for v in _raw_values(document) if isinstance(v, str)}


def test_each_subject_has_its_own_data_key(stored: tuple[Any, Any]) -> None:
    _, db = stored
    pseudonyms = [r["_id"] for r in db["crypt_patient__identity"].find()]
    keys = list(_vault(db.client).find({"keyAltNames": {"$in": pseudonyms}}))
    assert len(keys) == 3
    assert {k["masterKey"]["provider"] for k in keys} == {"local"}
    assert len({key_id_bytes(k["_id"]) for k in keys}) == 3


# -- searchable fields ---------------------------------------------------------------------------


def test_equality_and_in_on_a_searchable_field_run_on_the_server(connected: Any) -> None:
    Patient = _model()
    Patient._meta["privacy"] = {"scan_limit": 1}
    for first, last, email in PEOPLE:
        Patient(first_name=first, last_name=last, email=email).save()
    # a scan limit of one row: only a server-side (blind index) lookup can answer these
    assert Patient.objects.get(email="grace@example.org").first_name == "Grace"
    found = Patient.objects(email__in=["ada@example.org", "alan@example.org"]).order_by("id")
    assert [p.first_name for p in found] == ["Ada", "Alan"]
    assert Patient.objects(email="nobody@example.org").count() == 0


def test_unique_on_an_encrypted_field_is_enforced_by_the_server(stored: tuple[Any, Any]) -> None:
    Patient, _ = stored
    with pytest.raises(me.NotUniqueError) as caught:
        Patient(first_name="Eve", email="ada@example.org").save()
    assert "ada@example.org" not in str(caught.value)


def test_other_predicates_on_encrypted_fields_are_evaluated_after_decryption(
    stored: tuple[Any, Any],
) -> None:
    Patient, _ = stored
    starting = Patient.objects(first_name__startswith="A").order_by("first_name")
    assert [p.email for p in starting] == ["ada@example.org", "alan@example.org"]
    assert [p.last_name for p in Patient.objects(last_name="Hopper")] == ["Hopper"]
    assert [p.first_name for p in Patient.objects.order_by("-last_name")] == [
        "Alan",
        "Ada",
        "Grace",
    ]


def test_projections_of_encrypted_fields_are_applied_after_decryption(
    stored: tuple[Any, Any],
) -> None:
    Patient, _ = stored
    only = Patient.objects(email="ada@example.org").only("first_name").first()
    assert (only.first_name, only.last_name, only.email) == ("Ada", None, None)
    excluded = Patient.objects(email="ada@example.org").exclude("first_name").first()
    assert (excluded.first_name, excluded.last_name) == (None, "Lovelace")


# -- failures ------------------------------------------------------------------------------------


def test_a_tampered_ciphertext_raises_key_unavailable_naming_model_and_fields(
    stored: tuple[Any, Any],
) -> None:
    Patient, db = stored
    row = db["crypt_patient__identity"].find_one()
    tampered = bytearray(row["_enc"])
    tampered[-1] ^= 1
    db["crypt_patient__identity"].update_one(
        {"_id": row["_id"]}, {"$set": {"_enc": Binary(bytes(tampered), 6)}}
    )
    with pytest.raises(KeyUnavailable) as caught:
        list(Patient.objects)
    message = str(caught.value)
    assert caught.value.model == "CryptPatient"
    assert "email" in caught.value.fields
    assert "CryptPatient" in message
    assert not any(v in message for person in PEOPLE for v in person)


def test_a_data_key_missing_from_the_vault_raises_key_unavailable(
    stored: tuple[Any, Any], backend: Backend
) -> None:
    Patient, db = stored
    row = db["crypt_patient__identity"].find_one()
    _vault(db.client).delete_one({"keyAltNames": row["_id"]})
    Patient = _model()
    _reconnect(backend)
    with pytest.raises(KeyUnavailable, match="missing from the key vault"):
        list(Patient.objects)


def test_a_wrong_master_key_raises_key_unavailable(
    stored: tuple[Any, Any], backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, new_master_key())
    Patient = _model()
    _reconnect(backend)
    with pytest.raises(KeyUnavailable) as caught:
        list(Patient.objects)
    assert caught.value.model == "CryptPatient"


def test_a_write_whose_encryption_fails_writes_nothing(
    connected: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    Patient = _model()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise KeyUnavailable("no key")

    monkeypatch.setattr(KeyRing, "seal", refuse)
    with pytest.raises(KeyUnavailable) as caught:
        Patient(first_name="Ada", email="ada@example.org").save()
    assert caught.value.model == "CryptPatient"
    assert connected["crypt_patient"].count_documents({}) == 0
    assert connected["crypt_patient__identity"].count_documents({}) == 0


# -- master key configuration --------------------------------------------------------------------


def test_no_master_key_against_a_real_server_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.delenv(MASTER_KEY_FILE_ENV, raising=False)
    with pytest.raises(ConfigurationError, match=MASTER_KEY_ENV):
        pm.connect(db="nokey", host="mongodb://127.0.0.1:1/", alias="nokey")


async def test_init_beanie_refuses_a_real_server_without_a_master_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.delenv(MASTER_KEY_FILE_ENV, raising=False)
    client: AsyncMongoClient[Any] = AsyncMongoClient("mongodb://127.0.0.1:1/", connect=False)
    try:
        with pytest.raises(ConfigurationError, match=MASTER_KEY_ENV):
            await pb.init_beanie(database=client["nokey"], document_models=[])
    finally:
        await client.close()


def test_a_malformed_master_key_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(b"short").decode())
    with pytest.raises(ConfigurationError, match="96 bytes"):
        pm.connect(db="badkey", host="mongodb://127.0.0.1:1/", alias="badkey")


def test_the_embedded_backend_generates_a_development_key_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import mongomock

    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.delenv(MASTER_KEY_FILE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="privata_mongo.encryption"):
        pm.connect(
            db="devkey",
            alias="devkey",
            mongo_client_class=mongomock.MongoClient,
            uuidRepresentation="standard",
        )
    try:
        key = (tmp_path / DEV_KEY_PATH).read_text().strip()
        assert len(base64.b64decode(key)) == 96
        assert "development key" in caplog.text
        assert key not in caplog.text
    finally:
        me.disconnect("devkey")


def test_a_master_key_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    path = tmp_path / "master.key"
    path.write_text(new_master_key())
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.setenv(MASTER_KEY_FILE_ENV, str(path))
    pm.connect(
        db="filekey",
        host="mongodb://127.0.0.1:1/",
        alias="filekey",
        connect=False,
        uuidRepresentation="standard",
    )
    me.disconnect("filekey")


# -- crypto-shredding ----------------------------------------------------------------------------


def test_a_shredded_subject_is_unreadable_in_a_restored_backup_and_others_still_decrypt(
    stored: tuple[Any, Any], backend: Backend
) -> None:
    Patient, db = stored
    backup_identity = list(db["crypt_patient__identity"].find())
    backup_clinical = list(db["crypt_patient"].find())
    ada = Patient.objects.get(email="ada@example.org")
    ada_pseudonym = db["crypt_patient"].find_one({"_id": ada.id})["_pseudonym"]

    assert shred(db.client, [ada_pseudonym]) == 1

    # the backup is restored into a fresh database, after the erasure
    restored_name = f"{backend.db_name}_restored"
    restored = db.client[restored_name]
    restored["crypt_patient__identity"].insert_many(backup_identity)
    restored["crypt_patient"].insert_many(backup_clinical)
    try:
        # an operator with the master key and the key vault cannot read the erased subject
        ada_row = next(r for r in backup_identity if r["_id"] == ada_pseudonym)
        with pytest.raises(KeyUnavailable):
            unseal_row(db, ada_row)
        others = [unseal_row(db, r) for r in backup_identity if r["_id"] != ada_pseudonym]
        assert sorted(o["first_name"] for o in others) == ["Alan", "Grace"]

        # through the ODM: the erased subject reads without identity values
        me.disconnect()
        forget_keys()
        pm.connect(db=restored_name, **backend.mongoengine_settings())
        Restored = _model()
        read = {p.diagnosis + str(p.id): p for p in Restored.objects}
        assert len(read) == 3
        by_id = {p.id: p for p in read.values()}
        assert (by_id[ada.id].first_name, by_id[ada.id].email) == (None, None)
        assert sorted(p.first_name for p in read.values() if p.id != ada.id) == ["Alan", "Grace"]
        # an erased subject is not given a new identity under the same pseudonym
        with pytest.raises(SubjectErased):
            Restored.objects(id=ada.id).update_one(set__first_name="Eve")
    finally:
        db.client.drop_database(restored_name)


# -- rotation ------------------------------------------------------------------------------------


@pytest.fixture
def own_vault(backend: Backend) -> Iterator[None]:
    """A key vault of this test's own: rotation re-wraps every key of the vault it is given,
    and the session's holds the keys of every test before (thousands, on a slow server)."""
    saved = current()
    database = f"privata_rotation_{secrets.token_hex(4)}"
    privata_mongo.configure(key_vault_namespace=f"{database}.__keyVault")
    yield
    privata_mongo.config._current = saved
    forget_keys()
    client = backend.client()
    if client is not None:
        client.drop_database(database)
        client.close()


def test_rotation_rewraps_every_data_key_without_touching_documents(
    own_vault: None, stored: tuple[Any, Any], backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    Patient, db = stored
    before = {r["_id"]: r["_enc"] for r in db["crypt_patient__identity"].find()}
    vault = _vault(db.client)
    wrapped_before = {key_id_bytes(k["_id"]): k["keyMaterial"] for k in vault.find()}
    new_key = new_master_key()

    assert rotate_master_key(db.client, new_key) == len(wrapped_before)

    assert {r["_id"]: r["_enc"] for r in db["crypt_patient__identity"].find()} == before
    wrapped_after = {key_id_bytes(k["_id"]): k["keyMaterial"] for k in vault.find()}
    assert set(wrapped_after) == set(wrapped_before)
    assert all(wrapped_after[k] != wrapped_before[k] for k in wrapped_before)
    monkeypatch.setenv(MASTER_KEY_ENV, new_key)
    Patient = _model()
    _reconnect(backend)
    assert sorted(p.first_name for p in Patient.objects) == ["Ada", "Alan", "Grace"]
    assert Patient.objects.get(email="grace@example.org").last_name == "Hopper"


# -- interoperability: MongoDB's own tooling reads the data ------------------------------------


@requires("client_side_encryption")
def test_pymongo_client_encryption_decrypts_identity_rows(
    stored: tuple[Any, Any], backend: Backend
) -> None:
    from bson.codec_options import CodecOptions
    from pymongo.encryption import ClientEncryption

    _, db = stored
    assert backend.uri is not None, "pymongo's client-side encryption needs a wire server"
    master = base64.b64decode(os.environ[MASTER_KEY_ENV])
    client = backend.client()
    try:
        encryption = ClientEncryption(
            {"local": {"key": master}}, current().key_vault_namespace, client, CodecOptions()
        )
        with encryption:
            rows = list(client[db.name]["crypt_patient__identity"].find())
            plain = [encryption.decrypt(r["_enc"]) for r in rows]
        assert sorted(p["email"] for p in plain) == sorted(p[2] for p in PEOPLE)
        assert sorted(p["first_name"] for p in plain) == sorted(p[0] for p in PEOPLE)
    finally:
        client.close()


@requires("client_side_encryption")
def test_pymongo_automatic_decryption_reads_identity_rows(
    stored: tuple[Any, Any], backend: Backend
) -> None:
    from pymongo import MongoClient
    from pymongo.encryption_options import AutoEncryptionOpts

    _, db = stored
    assert backend.uri is not None, "pymongo's client-side encryption needs a wire server"
    master = base64.b64decode(os.environ[MASTER_KEY_ENV])
    options = AutoEncryptionOpts(
        {"local": {"key": master}}, current().key_vault_namespace, bypass_auto_encryption=True
    )
    client: MongoClient[Any] = MongoClient(backend.uri, auto_encryption_opts=options)
    try:
        rows = list(client[db.name]["crypt_patient__identity"].find())
        assert sorted(r["_enc"]["email"] for r in rows) == sorted(p[2] for p in PEOPLE)
    finally:
        client.close()


# -- raw-storage scans ---------------------------------------------------------------------------


def test_the_storage_scan_finds_no_plaintext_and_finds_a_planted_one(
    stored: tuple[Any, Any],
) -> None:
    _, db = stored
    assert plaintext_leaks(db.client, db) == []
    db["crypt_patient"].update_one({}, {"$set": {"note": "call grace@example.org"}})
    assert plaintext_leaks(db.client, db) == []  # a substring is not the value
    db["crypt_patient"].update_one({}, {"$set": {"note": "grace@example.org"}})
    assert plaintext_leaks(db.client, db) == ["crypt_patient: note"]


def test_the_demo_leaves_no_plaintext_in_storage(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import runpy
    from pathlib import Path

    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    demo = runpy.run_path(str(Path(__file__).parents[2] / "examples" / "demo.py"))
    leaks, checked = demo["run"]()
    out = capsys.readouterr().out
    assert leaks == []
    assert checked >= 8  # the demo's names, emails, MRNs and birth dates were all scanned
    assert '"$binary"' in out  # the demo shows the ciphertext identity row
    assert '"subType": "06"' in out
    assert "ada@example.org" in out  # ... and the joined document the app sees
    assert (tmp_path / DEV_KEY_PATH).exists()


def test_explain_says_which_identity_fields_are_searchable() -> None:
    import privata_mongo

    explanation = privata_mongo.explain(_model())
    assert explanation.searchable == ("email",)
    assert "searchable on the server (blind index): email" in str(explanation)


def test_remote_kms_settings_are_passed_through(monkeypatch: pytest.MonkeyPatch) -> None:
    import mongomock

    import privata_mongo
    from privata_mongo.adapters.kms import KmsTransport
    from privata_mongo.encryption import key_ring, kms_transport

    previous = current()
    aws = {"aws": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "example"}}
    master = {"region": "eu-west-1", "key": "arn:aws:kms:eu-west-1:000000000000:key/example"}
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.delenv(MASTER_KEY_FILE_ENV, raising=False)
    privata_mongo.configure(kms_providers=aws, kms_provider="aws", master_key=master)
    try:
        ring = key_ring(mongomock.MongoClient())
        assert (ring.provider, ring.master_key) == ("aws", master)
        assert set(ring.kms_providers) == {"aws"}
        # the network transport of remote providers
        assert isinstance(kms_transport(), KmsTransport)
    finally:
        privata_mongo.configure(
            kms_providers=previous.kms_providers,
            kms_provider=previous.kms_provider,
            master_key=previous.master_key,
        )
    with pytest.raises(ConfigurationError, match="key_cache_ttl"):
        privata_mongo.configure(key_cache_ttl=0)
    with pytest.raises(ConfigurationError, match="key_vault_namespace"):
        privata_mongo.configure(key_vault_namespace="nodot")


# -- the async path (Beanie) ---------------------------------------------------------------------


async def test_beanie_searches_seals_and_shreds_through_the_async_key_vault() -> None:
    from typing import Annotated

    from pydantic import Field, ValidationError

    from privata_mongo.encryption import shred_async, unseal_row_async

    class Member(pb.Document):
        first_name: str
        email: Annotated[str, pb.Indexed(unique=True)]
        nickname: Annotated[str | None, pb.PII(searchable=True)] = None
        ward: str = "A"
        notes: str | None = Field(default=None)

        class Settings:
            name = "crypt_members"
            privacy = {"scan_limit": 1}

    database = pb.embedded_database("crypt_beanie")
    await pb.init_beanie(database=database, document_models=[Member])
    for first, _, email in PEOPLE:
        await Member(first_name=first, email=email, nickname=first.lower()).insert()
    # scan limit 1: these lookups are answered by the blind index on the server
    found = await Member.find_one(Member.email == "grace@example.org")
    assert found is not None
    assert found.first_name == "Grace"
    assert [m.first_name for m in await Member.find(Member.nickname == "alan").to_list()] == [
        "Alan"
    ]
    rows = await database["crypt_members__identity"].find({}).to_list()
    assert all(set(row) == {"_id", "_rev", "_idx", "_enc"} for row in rows)
    assert set(rows[0]["_idx"]) == {"email", "nickname"}
    plain = [await unseal_row_async(database, row) for row in rows]
    assert sorted(p["email"] for p in plain) == sorted(p[2] for p in PEOPLE)

    grace_row = await database["crypt_members"].find_one({"_id": found.id})
    assert await shred_async(database.client, [grace_row["_pseudonym"]]) == 1
    # the identity values are gone: a model whose identity fields are required cannot be
    # built without them (pydantic's own error, naming the fields, no values) ...
    with pytest.raises(ValidationError) as caught:
        await Member.get(found.id)
    assert "grace" not in str(caught.value).lower()
    assert {e["loc"][0] for e in caught.value.errors()} == {"first_name", "email"}

    # ... while a model that declares them optional reads the erased subject with None
    class Visitor(pb.Document):
        first_name: str | None = None
        email: str | None = None
        ward: str = "A"

        class Settings:
            name = "crypt_visitors"

    await pb.init_beanie(database=database, document_models=[Member, Visitor])
    visitor = await Visitor(first_name="Alan", email="alan@example.org").insert()
    visitor_row = await database["crypt_visitors"].find_one({"_id": visitor.id})
    await shred_async(database.client, [visitor_row["_pseudonym"]])
    read = await Visitor.get(visitor.id)
    assert read is not None
    assert (read.first_name, read.email, read.ward) == (None, None, "A")


def test_the_key_vault_can_live_on_a_separate_client(backend: Backend) -> None:
    import mongomock

    import privata_mongo

    vault_client = mongomock.MongoClient()
    previous = current()
    privata_mongo.configure(key_vault_client=vault_client, key_vault_namespace="keys.vault")
    try:
        pm.connect(db=backend.db_name, alias="vaulted", **backend.mongoengine_settings())
        Patient = _model("vaulted")
        Patient(first_name="Ada", email="ada@example.org").save()
        assert Patient.objects.get(email="ada@example.org").first_name == "Ada"
        names = {n for k in vault_client["keys"]["vault"].find() for n in k["keyAltNames"]}
        assert "privata:blind-index" in names
        assert any(n.startswith("pseu_") for n in names)
    finally:
        me.disconnect("vaulted")
        privata_mongo.configure(
            key_vault_client=previous.key_vault_client,
            key_vault_namespace=previous.key_vault_namespace,
        )


# -- the key ports -------------------------------------------------------------------------------


def test_the_key_vault_adapter_honours_both_key_ports(backend: Backend) -> None:
    from privata_mongo.adapters.key_vault import CollectionKeyVault

    client = backend.client()
    ring = KeyRing({"local": {"key": os.urandom(96)}}, clock=lambda: 0.0)
    collection = client[backend.db_name]["vault"]
    vault = CollectionKeyVault(collection)
    try:
        a, b = _local(ring.new_key("pseu_a")), _local(ring.new_key("pseu_b"))
        vault.insert([a, b])
        vault.insert([_local(ring.new_key("pseu_a"))])  # a name already taken is skipped
        assert sorted(k["keyAltNames"][0] for k in vault.find(None)) == ["pseu_a", "pseu_b"]
        (found,) = vault.find(["pseu_b"])
        assert key_id_bytes(found["_id"]) == key_id_bytes(b["_id"])
        vault.replace([{**a, "keyMaterial": b"rewrapped", "masterKey": {"provider": "local"}}])
        assert vault.find(["pseu_a"])[0]["keyMaterial"] == b"rewrapped"
        assert vault.shred(["pseu_a"]) == 1
        assert [k["keyAltNames"] for k in vault.find(None)] == [["pseu_b"]]
        assert vault.erased(["pseu_a", "pseu_b"]) == ["pseu_a"]
        assert "keyAltNames_1" in collection.index_information()
    finally:
        client.drop_database(backend.db_name)
        client.close()


def test_a_data_key_id_is_derived_from_its_name_and_keeps_one_key_per_name(
    backend: Backend,
) -> None:
    """Two keys made for one name (two processes, two master keys) share their ``_id``: the
    second is refused by ``_id`` alone, even where ``keyAltNames`` has no unique index."""
    from privata_mongo.adapters.key_vault import CollectionKeyVault

    client = backend.client()
    collection = client[backend.db_name]["plain_vault"]
    vault = CollectionKeyVault(collection, unique_names=False)
    one = KeyRing({"local": {"key": os.urandom(96)}}, clock=lambda: 0.0)
    other = KeyRing({"local": {"key": os.urandom(96)}}, clock=lambda: 0.0)
    try:
        first, second = _local(one.new_key("pseu_a")), _local(other.new_key("pseu_a"))
        assert key_id_bytes(first["_id"]) == key_id_bytes(second["_id"]) == key_uuid("pseu_a").bytes
        assert first["keyMaterial"] != second["keyMaterial"]
        assert key_id_bytes(_local(one.new_key("pseu_b"))["_id"]) != key_uuid("pseu_a").bytes
        vault.insert([first])
        vault.insert([second])  # skipped: the name's _id is taken
        (kept,) = vault.find(["pseu_a"])
        assert kept["keyMaterial"] == first["keyMaterial"]
        assert not collection.index_information()["keyAltNames_1"].get("unique")
        one.add([kept])
        sealed = _local(one.seal("pseu_a", {"email": "ada@example.org"}))
        assert KeyRing.key_name_of(sealed) == key_uuid("pseu_a").bytes
        assert _local(one.open(sealed)) == {"email": "ada@example.org"}
    finally:
        client.drop_database(backend.db_name)
        client.close()


def test_the_embedded_key_vault_has_no_unique_index_and_a_server_keeps_it(
    stored: tuple[Any, Any], backend: Backend
) -> None:
    """mongomock checks a unique index by scanning every key on each insert: there the
    derived ``_id`` keeps one key per name; a server keeps MongoDB's unique partial index."""
    _, connected = stored
    info = _vault(connected.client).index_information()
    assert bool(info["keyAltNames_1"].get("unique")) is (backend.name != "mongomock")
    names = [n for k in _vault(connected.client).find({}) for n in k["keyAltNames"]]
    assert len(names) == len(set(names))
    assert all(
        key_id_bytes(k["_id"]) == key_uuid(k["keyAltNames"][0]).bytes
        for k in _vault(connected.client).find({})
    )


async def test_the_async_key_vault_adapter_honours_both_key_ports() -> None:
    from privata_mongo.adapters.key_vault import AsyncCollectionKeyVault

    database = pb.embedded_database("async_vault")
    ring = KeyRing({"local": {"key": os.urandom(96)}}, clock=lambda: 0.0)
    vault = AsyncCollectionKeyVault(database["vault"])
    await vault.insert([_local(ring.new_key("pseu_a")), _local(ring.new_key("pseu_b"))])
    await vault.insert([_local(ring.new_key("pseu_b"))])
    assert len(await vault.find(None)) == 2
    assert [k["keyAltNames"] for k in await vault.find(["pseu_a"])] == [["pseu_a"]]
    assert await vault.shred(["pseu_a", "pseu_c"]) == 1
    assert sorted(await vault.erased(["pseu_a", "pseu_b", "pseu_c"])) == ["pseu_a", "pseu_c"]


def test_a_missing_data_key_fails_the_listing_naming_its_subject_and_no_value(
    stored: tuple[Any, Any], backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    Patient, db = stored
    ada = Patient.objects.get(email="ada@example.org")
    ada_pseudonym = db["crypt_patient"].find_one({"_id": ada.id})["_pseudonym"]
    _vault(db.client).delete_one({"keyAltNames": ada_pseudonym})  # lost: no tombstone
    Patient = _model()
    _reconnect(backend)
    with caplog.at_level(logging.WARNING), pytest.raises(KeyUnavailable) as caught:
        list(Patient.objects)
    # fail closed, naming the subject (a pseudonym, not personal data) and no value
    assert caught.value.pseudonyms == (ada_pseudonym,)
    assert caught.value.model == "CryptPatient"
    assert ada_pseudonym in str(caught.value)
    assert not any(v in str(caught.value) for person in PEOPLE for v in person)
    # the operator's log says so too, with no value
    (warned,) = [r for r in caplog.records if "missing from the key vault" in r.getMessage()]
    assert warned.levelno == logging.WARNING
    assert not any(v in warned.getMessage() for person in PEOPLE for v in person)
    # the other subjects stay readable: the failure is the missing subject's only
    others = Patient.objects(id__ne=ada.id)
    assert sorted(p.first_name for p in others) == ["Alan", "Grace"]
