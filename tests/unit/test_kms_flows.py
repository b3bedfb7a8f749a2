"""A remote master key (AWS KMS): the ring's flows yield the KMS traffic, nothing blocks inside.

Each test scripts the KMS's replies and pins the exact requests: connect to the endpoint
libmongocrypt names, send its message, read what it needs, close — and, for a failure, the retry
libmongocrypt asks for after its back-off.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import os
from typing import Any

import bson
import pytest

from privata_mongo.core.crypto import KeyRing
from privata_mongo.core.flows.common import fetch_identities
from privata_mongo.core.ops import (
    CloseKms,
    ConnectKms,
    FetchAll,
    LoadKeys,
    ReceiveKms,
    SendKms,
)
from privata_mongo.core.schema import SEALED_FIELD
from privata_mongo.errors import ConfigurationError, KeyUnavailable
from privata_mongo.testing import ScriptedDriver
from tests.unit.builders import make_context, make_schema

AWS = {"aws": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "example-secret"}}
ARN = "arn:aws:kms:eu-west-1:000000000000:key/example"
MASTER_KEY = {"region": "eu-west-1", "key": ARN}
ENDPOINT = "kms.eu-west-1.amazonaws.com:443"
WANTS = 1024  # what libmongocrypt asks to read of a KMS reply at a time
BLOB = b"wrapped by the KMS " * 8  # the CiphertextBlob the KMS returns for a data key
MATERIAL = os.urandom(96)  # the data key the KMS unwraps BLOB to
KEY_ID = bson.Binary(os.urandom(16), 4)


class Connection:
    """An opaque connection handle, as a driver hands it back."""


def _ring() -> KeyRing:
    return KeyRing(AWS, provider="aws", master_key=MASTER_KEY, clock=lambda: 0.0)


def _reply(body: dict[str, Any], status: str = "200 OK") -> bytes:
    payload = json.dumps(body).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\n"
    return f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload


def _request(op: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """The headers and the JSON body of the HTTP request a ``SendKms`` carries."""
    head, _, body = op.message.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(":", 1) for line in lines[1:])
    return {k.strip(): v.strip() for k, v in headers.items()}, json.loads(body)


def _key_document() -> dict[str, Any]:
    """A data key as the key vault stores it: wrapped by the AWS master key."""
    return {
        "_id": KEY_ID,
        "keyAltNames": ["pseu_a"],
        "keyMaterial": BLOB,
        "creationDate": datetime.datetime(2024, 1, 1),
        "updateDate": datetime.datetime(2024, 1, 1),
        "status": 0,
        "masterKey": {"provider": "aws", **MASTER_KEY},
    }


def _exchange(connection: Connection, reply: bytes, target: str) -> list[tuple[Any, Any]]:
    """The script of one KMS round trip: connect, send a ``target`` request, read, close."""
    return [
        (lambda op: op == ConnectKms("aws", ENDPOINT, 0.0), connection),
        (
            lambda op: (
                isinstance(op, SendKms)
                and op.handle is connection
                and _request(op)[0]["X-Amz-Target"] == target
            ),
            None,
        ),
        (lambda op: op == ReceiveKms(connection, WANTS), reply),
        (lambda op: op == CloseKms(connection), None),
    ]


def _unwrap(connection: Connection) -> list[tuple[Any, Any]]:
    plaintext = base64.b64encode(MATERIAL).decode()
    reply = _reply({"Plaintext": plaintext, "KeyId": ARN})
    return _exchange(connection, reply, "TrentService.Decrypt")


def test_creating_a_data_key_is_one_encrypt_request_to_the_kms() -> None:
    connection = Connection()
    reply = _reply({"CiphertextBlob": base64.b64encode(BLOB).decode(), "KeyId": ARN})
    driver = ScriptedDriver(_exchange(connection, reply, "TrentService.Encrypt"))
    document = driver.run(_ring().new_key("pseu_a"))
    assert document["keyAltNames"] == ["pseu_a"]
    assert document["keyMaterial"] == BLOB
    assert document["masterKey"] == {"provider": "aws", **MASTER_KEY}
    headers, body = _request(driver.seen[1])
    assert headers["Host"] == "kms.eu-west-1.amazonaws.com"
    assert "Credential=AKIAEXAMPLE/" in headers["Authorization"]
    assert body["KeyId"] == ARN
    # the new data key travels to the KMS only: it never shows in a request's repr
    assert len(base64.b64decode(body["Plaintext"])) == 96
    assert body["Plaintext"] not in repr(driver.seen[1])


def test_sealing_under_a_kms_wrapped_key_unwraps_it_once_then_works_from_memory() -> None:
    ring = _ring()
    ring.add([_key_document()])
    connection = Connection()
    driver = ScriptedDriver(_unwrap(connection))
    sealed = driver.run(ring.seal("pseu_a", {"email": "a@x.org"}))
    _, body = _request(driver.seen[1])
    assert base64.b64decode(body["CiphertextBlob"]) == BLOB
    # libmongocrypt keeps the unwrapped key for the TTL: no more KMS requests
    again = ScriptedDriver([]).run(ring.seal("pseu_a", {"email": "b@x.org"}))
    assert ScriptedDriver([]).run(ring.open(sealed)) == {"email": "a@x.org"}
    # another process with the same KMS reads the value after its own unwrap
    other = _ring()
    other.add([_key_document()])
    assert ScriptedDriver(_unwrap(Connection())).run(other.open(again)) == {"email": "b@x.org"}


def test_a_read_of_sealed_rows_asks_the_kms_between_the_key_load_and_the_result() -> None:
    writer = _ring()
    writer.add([_key_document()])
    sealed = ScriptedDriver(_unwrap(Connection())).run(writer.seal("pseu_a", {"email": "a@x"}))
    schema = dataclasses.replace(make_schema(), sealed=True)
    ctx = dataclasses.replace(make_context(schema), crypto=_ring())
    connection = Connection()
    rows = [{"_id": "pseu_a", "_rev": "r", SEALED_FIELD: sealed}]
    driver = ScriptedDriver(
        [
            (FetchAll, rows),
            (lambda op: op == LoadKeys(("pseu_a",)), [_key_document()]),
            *_unwrap(connection),
        ]
    )
    found = driver.run(fetch_identities(ctx, ["pseu_a"]))
    assert found == {"pseu_a": {"_id": "pseu_a", "_rev": "r", "email": "a@x"}}
    assert [type(op) for op in driver.seen] == [
        FetchAll,
        LoadKeys,
        ConnectKms,
        SendKms,
        ReceiveKms,
        CloseKms,
    ]


def _retried(op: Any) -> bool:
    """libmongocrypt's first retry comes after a back-off of up to 0.2 seconds."""
    return isinstance(op, ConnectKms) and op.endpoint == ENDPOINT and 0 < op.delay <= 0.2


def test_a_network_failure_is_retried_after_libmongocrypts_back_off() -> None:
    ring = _ring()
    ring.add([_key_document()])
    first, second = Connection(), Connection()
    driver = ScriptedDriver(
        [
            (lambda op: op == ConnectKms("aws", ENDPOINT, 0.0), first),
            (SendKms, None),
            (ReceiveKms, ConnectionResetError("reset by peer")),
            (lambda op: op == CloseKms(first), None),
            (_retried, second),
            *_unwrap(second)[1:],
        ]
    )
    sealed = driver.run(ring.seal("pseu_a", {"email": "a@x"}))
    assert ScriptedDriver([]).run(ring.open(sealed)) == {"email": "a@x"}


def test_a_kms_that_stays_unreachable_is_key_unavailable_after_three_retries() -> None:
    ring = _ring()
    ring.add([_key_document()])
    refused = ConnectionRefusedError("connection refused")
    driver = ScriptedDriver(
        [(lambda op: op == ConnectKms("aws", ENDPOINT, 0.0), refused)]
        + [(lambda op: isinstance(op, ConnectKms) and op.delay > 0, refused)] * 3
    )
    with pytest.raises(KeyUnavailable, match="3 retries") as caught:
        driver.run(ring.seal("pseu_a", {"email": "a@x"}))
    assert "connection refused" in str(caught.value)
    assert "a@x" not in str(caught.value)


def test_a_server_error_of_the_kms_is_retried_and_a_refusal_is_not() -> None:
    ring = _ring()
    ring.add([_key_document()])
    busy, refusing = Connection(), Connection()
    unavailable = _reply({"__type": "KMSInternalException"}, "500 Internal Server Error")
    denied = _reply({"__type": "AccessDeniedException", "message": "denied"}, "400 Bad Request")
    driver = ScriptedDriver(
        [
            *_exchange(busy, unavailable, "TrentService.Decrypt"),
            (_retried, refusing),
            (SendKms, None),
            (ReceiveKms, denied),
            (lambda op: op == CloseKms(refusing), None),
        ]
    )
    with pytest.raises(KeyUnavailable, match="AccessDeniedException"):
        driver.run(ring.seal("pseu_a", {"email": "a@x"}))


def test_a_cloud_provider_without_credentials_is_refused_when_the_ring_is_made() -> None:
    with pytest.raises(ConfigurationError, match=r"kms_providers\['aws'\] is empty"):
        KeyRing({"aws": {}}, provider="aws", master_key=MASTER_KEY, clock=lambda: 0.0)
