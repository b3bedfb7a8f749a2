"""A remote master key end to end: a fake AWS KMS over TLS, through both facades.

The KMS runs in the test on 127.0.0.1 with a self-signed certificate (``testkit.fake_kms``);
privata reaches it only through ``kms_tls_options``. The sync facade's requests go through the
blocking transport; the async facade's through the asyncio one, and the event loop keeps
running while the KMS holds its reply.
"""

from __future__ import annotations

import ast
import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mongoengine as me
import pytest

import privata_mongo
import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from compat_suite.requirements import requires
from privata_mongo import ConfigurationError, KeyUnavailable
from privata_mongo.adapters.kms import AsyncKmsTransport, KmsTransport, parse_endpoint
from privata_mongo.config import current
from privata_mongo.core.ops import CloseKms, ConnectKms, Flow, ReceiveKms, SendKms
from privata_mongo.drivers import sync
from privata_mongo.drivers._dispatch import Binding
from privata_mongo.encryption import (
    forget_keys,
    shred,
    shred_async,
    unseal_row,
    unseal_row_async,
)
from testkit.backends import Backend
from testkit.fake_kms import ARN, FakeAwsKms

ROOT = Path(__file__).resolve().parents[2]
AWS = {"aws": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "example-secret"}}
ENCRYPT, DECRYPT = "TrentService.Encrypt", "TrentService.Decrypt"


@pytest.fixture
def kms(tmp_path: Path) -> Iterator[FakeAwsKms]:
    """The fake KMS, and privata configured to wrap new data keys with its master key.

    The keys go to a key vault of their own: a server's key vault outlives the test, and its
    blind index key must stay readable with the session's local master key.
    """
    previous = current()
    with FakeAwsKms(tmp_path) as server:
        privata_mongo.configure(
            key_vault_namespace=f"kms_keys_{uuid.uuid4().hex[:8]}.__keyVault",
            kms_providers=AWS,
            kms_provider="aws",
            master_key={"region": "us-east-1", "key": ARN, "endpoint": server.endpoint},
            kms_tls_options={"aws": {"tlsCAFile": str(server.ca_file)}},
        )
        forget_keys()
        try:
            yield server
        finally:
            privata_mongo.configure(
                key_vault_namespace=previous.key_vault_namespace,
                kms_providers=previous.kms_providers,
                kms_provider=previous.kms_provider,
                master_key=previous.master_key,
                kms_tls_options=previous.kms_tls_options,
            )
            forget_keys()


def _model() -> Any:
    class KmsPatient(me.Document):
        first_name = me.StringField()
        email = me.StringField(unique=True)
        diagnosis = me.StringField()
        meta = {"collection": "kms_patient"}

    return KmsPatient


def test_the_sync_facade_wraps_and_unwraps_data_keys_with_the_kms(
    kms: FakeAwsKms, backend: Backend
) -> None:
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    raw = backend.client()
    try:
        Patient = _model()
        Patient(first_name="Ada", email="ada@example.org", diagnosis="J45").save()
        Patient(first_name="Grace", email="grace@example.org").save()
        # three data keys (the blind index's and one per subject) and the audit chain key,
        # each wrapped by the KMS and unwrapped by it once to be used
        assert sorted(kms.requests) == [DECRYPT] * 4 + [ENCRYPT] * 4
        database, _, collection = current().key_vault_namespace.partition(".")
        vault = raw[database][collection]
        assert {k["masterKey"]["provider"] for k in vault.find()} == {"aws"}
        assert {k["masterKey"]["endpoint"] for k in vault.find()} == {kms.endpoint}
        assert Patient.objects.get(email="grace@example.org").first_name == "Grace"
        assert len(kms.requests) == 8  # unwrapped keys stay in memory for the TTL

        forget_keys()  # a fresh process: it must ask the KMS again
        assert [p.first_name for p in Patient.objects.order_by("first_name")] == ["Ada", "Grace"]
        assert kms.requests[8:] == [DECRYPT] * 2  # the trail keeps its chain key

        db = raw[backend.db_name]
        ada = db["kms_patient"].find_one({"diagnosis": "J45"})
        row = db["kms_patient__identity"].find_one({"_id": ada["_pseudonym"]})
        plain = unseal_row(raw[backend.db_name], row)
        assert plain == {"first_name": "Ada", "email": "ada@example.org"}
        assert shred(raw, [ada["_pseudonym"]]) == 1
        with pytest.raises(KeyUnavailable):
            unseal_row(raw[backend.db_name], row)
    finally:
        me.disconnect()
        raw.drop_database(database)
        raw.close()


@requires("client_side_encryption")
def test_pymongo_decrypts_rows_whose_keys_the_kms_wraps(kms: FakeAwsKms, backend: Backend) -> None:
    from bson.codec_options import CodecOptions
    from pymongo.encryption import ClientEncryption

    assert backend.uri is not None, "pymongo's client-side encryption needs a wire server"
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    raw = backend.client()
    try:
        _model()(first_name="Ada", email="ada@example.org").save()
        encryption = ClientEncryption(
            AWS,
            current().key_vault_namespace,
            raw,
            CodecOptions(),
            kms_tls_options={"aws": {"tlsCAFile": str(kms.ca_file)}},
        )
        with encryption:
            (row,) = raw[backend.db_name]["kms_patient__identity"].find()
            assert encryption.decrypt(row["_enc"]) == {
                "first_name": "Ada",
                "email": "ada@example.org",
            }
        # privata's two unwraps and the audit chain key's, then pymongo's
        assert kms.requests.count(DECRYPT) == 4
    finally:
        me.disconnect()
        raw.drop_database(current().key_vault_namespace.partition(".")[0])
        raw.close()


def test_the_kms_certificate_is_verified(kms: FakeAwsKms, backend: Backend) -> None:
    privata_mongo.configure(kms_tls_options=None)  # the system's CAs do not know the fake KMS
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    raw = backend.client()
    try:
        Patient = _model()
        with pytest.raises(KeyUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            Patient(first_name="Ada", email="ada@example.org").save()
        assert kms.requests == []  # no request got through the failed handshakes
        # read raw: an audited count needs the audit chain key, which the KMS cannot unwrap
        assert raw[backend.db_name]["kms_patient"].count_documents({}) == 0
    finally:
        me.disconnect()
        raw.drop_database(current().key_vault_namespace.partition(".")[0])
        raw.close()


def test_insecure_or_unknown_tls_options_are_refused_at_connect(kms: FakeAwsKms) -> None:
    privata_mongo.configure(kms_tls_options={"aws": {"tlsAllowInvalidCertificates": True}})
    with pytest.raises(ConfigurationError, match="insecure TLS options are prohibited"):
        pm.connect(db="kms_refused", mongo_client_class=_mongomock_client())
    privata_mongo.configure(kms_tls_options={"aws": {"tlsCAFiel": "ca.pem"}})
    with pytest.raises(ConfigurationError, match="unknown option 'tlsCAFiel'"):
        pm.connect(db="kms_refused", mongo_client_class=_mongomock_client())
    with pytest.raises(ConfigurationError, match="kms_tls_options"):
        privata_mongo.configure(kms_tls_options={"aws": "tlsCAFile=ca.pem"})
    me.disconnect()


def _mongomock_client() -> Any:
    import mongomock

    return mongomock.MongoClient


async def test_the_async_facade_talks_to_the_kms_without_blocking_the_event_loop(
    kms: FakeAwsKms, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[str] = []
    connect = AsyncKmsTransport.connect

    async def counted(self: AsyncKmsTransport, provider: str, endpoint: str, delay: float) -> Any:
        served.append(endpoint)
        return await connect(self, provider, endpoint, delay)

    def blocking(*args: Any) -> Any:
        raise AssertionError("the asyncio path opened a blocking KMS connection")

    monkeypatch.setattr(AsyncKmsTransport, "connect", counted)
    monkeypatch.setattr(KmsTransport, "connect", blocking)

    class KmsMember(pb.Document):
        first_name: str | None = None
        email: str | None = None
        ward: str = "A"

        class Settings:
            name = "kms_members"

    database = pb.embedded_database("kms_beanie")
    await pb.init_beanie(database=database, document_models=[KmsMember])

    async def release_from_the_loop() -> None:
        # a worker thread waits for the request; releasing it is back on the event loop
        assert await asyncio.to_thread(kms.wait_until_held)
        kms.release()

    kms.hold()  # the KMS answers its first request only once this loop has run the task
    releaser = asyncio.create_task(release_from_the_loop())
    member = await KmsMember(first_name="Ada", email="ada@example.org").insert()
    await releaser
    assert not kms.stalled
    found = await KmsMember.find_one(KmsMember.email == "ada@example.org")
    assert found is not None
    assert found.first_name == "Ada"
    assert sorted(kms.requests) == [DECRYPT] * 3 + [ENCRYPT] * 3  # with the audit chain key
    assert served == [kms.endpoint] * len(kms.requests)

    raw = await database["kms_members"].find_one({"_id": member.id})
    row = await database["kms_members__identity"].find_one({"_id": raw["_pseudonym"]})
    forget_keys()
    assert await unseal_row_async(database, row) == {
        "first_name": "Ada",
        "email": "ada@example.org",
    }
    # the unseal's own runtime also unwraps the audit chain key, to record the unseal
    assert served == [kms.endpoint] * len(kms.requests) == [kms.endpoint] * 8
    assert await shred_async(database.client, [raw["_pseudonym"]]) == 1
    erased = await KmsMember.get(member.id)
    assert erased is not None
    assert (erased.first_name, erased.email) == (None, None)


# -- the transport and the driver ----------------------------------------------------------------


def test_kms_endpoints_are_host_and_port_with_https_by_default() -> None:
    assert parse_endpoint("kms.us-east-1.amazonaws.com") == ("kms.us-east-1.amazonaws.com", 443)
    assert parse_endpoint("127.0.0.1:8443") == ("127.0.0.1", 8443)
    assert parse_endpoint("[::1]:5696") == ("::1", 5696)
    for bad in ("", ":443", "host:port", "host:0", "[::1", "kms.sock"):
        with pytest.raises(ConfigurationError, match="KMS endpoint"):
            parse_endpoint(bad)


class _Connection:
    def __init__(self) -> None:
        self.closed = 0

    def send(self, message: bytes, /) -> None:
        return None

    def receive(self, size: int, /) -> bytes:
        return b""

    def close(self) -> None:
        self.closed += 1


class _Connector:
    def __init__(self) -> None:
        self.opened: list[_Connection] = []

    def connect(self, provider: str, endpoint: str, delay: float, /) -> _Connection:
        self.opened.append(_Connection())
        return self.opened[-1]


def test_the_driver_serves_kms_requests_and_closes_what_a_flow_left_open() -> None:
    def flow() -> Flow[bytes]:
        first = yield from ConnectKms("aws", "kms.example:443")
        yield from SendKms(first, b"request")
        data = yield from ReceiveKms(first, 10)
        yield CloseKms(first)
        yield from ConnectKms("aws", "kms.example:443")  # left open: the driver closes it
        return data

    connector = _Connector()
    binding: Binding[Any, Any, Any, Any, Any] = Binding(
        None, None, access=lambda: None, kms=connector
    )
    assert sync.run(flow(), binding) == b""
    assert [c.closed for c in connector.opened] == [2, 1]


# -- no private pymongo API ------------------------------------------------------------------------

_PRIVATE = ("pymongo.synchronous.encryption", "pymongo.asynchronous.encryption")


def _private_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith(_PRIVATE)]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(_PRIVATE):
            found.append(node.module or "")
    return found


def test_no_module_imports_pymongos_private_encryption_io() -> None:
    sources = [
        p
        for folder in ("privata_mongo", "tests", "compat_suite", "testkit", "stress", "examples")
        for p in sorted((ROOT / folder).rglob("*.py"))
    ]
    assert len(sources) > 100
    offenders = {str(p.relative_to(ROOT)): _private_imports(p.read_text()) for p in sources}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_import_check_finds_a_private_import() -> None:
    assert _private_imports("from pymongo.synchronous.encryption import _EncryptionIO") == [
        "pymongo.synchronous.encryption"
    ]
    assert _private_imports("import pymongo.asynchronous.encryption as e") == [
        "pymongo.asynchronous.encryption"
    ]
    assert _private_imports("from pymongo.encryption import ClientEncryption") == []
