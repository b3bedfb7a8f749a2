"""The CSFLE format read without libmongocrypt reproduces libmongocrypt byte for byte."""

from __future__ import annotations

import datetime
import os
from typing import Any

import bson
import pytest
from bson.binary import Binary

from privata_mongo.core.crypto import KeyRing, aead
from privata_mongo.core.crypto import ring as ring_module
from privata_mongo.core.crypto.ring import _DETERMINISTIC
from privata_mongo.errors import KeyUnavailable
from privata_mongo.testing import ScriptedDriver

MASTER_KEY = os.urandom(96)
VALUES = {"first_name": "Ada", "email": "ada@example.org", "dob": datetime.datetime(1990, 1, 2)}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def local(flow: Any) -> Any:
    return ScriptedDriver([]).run(flow)


def _ring(clock: Clock | None = None) -> KeyRing:
    ring = KeyRing({"local": {"key": MASTER_KEY}}, clock=clock or Clock())
    ring.add([local(ring.new_key("pseu_a"))])
    return ring


def _material(ring: KeyRing, name: str) -> bytes:
    """The data key as libmongocrypt unwraps it, unwrapped here from its stored document."""
    document = bson.decode(ring.raw_keys({"keyAltNames": {"$in": [name]}})[0])
    return aead.decrypt(MASTER_KEY, bytes(document["keyMaterial"]), b"")


def _libmongocrypt_open(ring: KeyRing, value: Binary) -> Any:
    encoded = bson.encode({"v": value})
    out = local(ring._run(lambda c: c.explicit_decryption_context(encoded)))
    return bson.decode(out)["v"]


def test_a_value_libmongocrypt_sealed_opens_here_with_the_same_plaintext() -> None:
    ring = _ring()
    sealed = local(ring.seal("pseu_a", VALUES))
    kind, plain = aead.open_value(_material(ring, "pseu_a"), bytes(sealed))
    assert kind == 0x03
    assert bson.decode(plain) == VALUES == _libmongocrypt_open(ring, sealed)
    assert local(ring.open(sealed)) == VALUES


def test_deterministic_encryption_here_is_libmongocrypts_byte_for_byte() -> None:
    ring = _ring()
    key_id = ring.key_id("pseu_a")
    assert key_id is not None
    material = _material(ring, "pseu_a")
    for value in ("hello", 42, "a value longer than one AES block", datetime.datetime(2020, 1, 1)):
        out = local(ring._encrypt(bson.encode({"v": value}), _DETERMINISTIC, key_id))
        theirs = bytes(bson.decode(out)["v"])
        header = theirs[:18]
        assert header[0] == aead.DETERMINISTIC
        assert header[1:17] == key_id
        plaintext = aead.decrypt(material, theirs[18:], header)
        iv = aead.deterministic_iv(material, plaintext, header)
        assert header + aead.encrypt(material, plaintext, header, iv) == theirs


def test_libmongocrypt_opens_a_random_value_encrypted_here() -> None:
    ring = _ring()
    key_id = ring.key_id("pseu_a")
    assert key_id is not None
    header = bytes([aead.RANDOM]) + key_id + bytes([0x03])
    ours = header + aead.encrypt(
        _material(ring, "pseu_a"), bson.encode(VALUES), header, os.urandom(16)
    )
    assert _libmongocrypt_open(ring, Binary(ours, 6)) == VALUES


def test_an_altered_value_or_another_key_fails_authentication() -> None:
    ring = _ring()
    sealed = bytearray(local(ring.seal("pseu_a", VALUES)))
    sealed[-40] ^= 1
    with pytest.raises(KeyUnavailable, match="HMAC validation failure"):
        local(ring.open(Binary(bytes(sealed), 6)))
    with pytest.raises(aead.InvalidCiphertext):
        aead.decrypt(os.urandom(96), bytes(sealed[18:]), bytes(sealed[:18]))
    with pytest.raises(aead.InvalidCiphertext, match="impossible length"):
        aead.decrypt(os.urandom(96), b"short", b"")


def test_opening_takes_no_libmongocrypt_context_under_a_local_master_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ring = _ring()
    sealed = local(ring.seal("pseu_a", VALUES))

    def refuse(start: Any) -> Any:
        raise AssertionError("libmongocrypt was asked to open a value")

    monkeypatch.setattr(ring, "_run", refuse)
    assert [local(ring.open(sealed)) for _ in range(3)] == [VALUES] * 3


def test_unwrapped_keys_live_the_ttl_and_go_with_forget(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    ring = _ring(clock)
    ring.add([local(ring.new_key("pseu_b"))])
    sealed_a = local(ring.seal("pseu_a", VALUES))
    sealed_b = local(ring.seal("pseu_b", VALUES))
    unwraps: list[bytes] = []
    decrypt = aead.decrypt

    def counting(key: bytes, data: bytes, aad: bytes) -> bytes:
        if not aad:
            unwraps.append(data)
        return decrypt(key, data, aad)

    monkeypatch.setattr(ring_module.aead, "decrypt", counting)
    local(ring.open(sealed_a))
    local(ring.open(sealed_a))
    assert len(unwraps) == 1
    clock.now = 61.0  # past the TTL: unwrapped again
    local(ring.open(sealed_b))
    local(ring.open(sealed_a))
    assert len(unwraps) == 3
    ring.forget(["pseu_a"])
    with pytest.raises(KeyUnavailable):
        local(ring.open(sealed_a))
    assert local(ring.open(sealed_b)) == VALUES


def test_a_ring_with_another_master_key_cannot_open() -> None:
    ring = _ring()
    sealed = local(ring.seal("pseu_a", VALUES))
    other = KeyRing({"local": {"key": os.urandom(96)}}, clock=Clock())
    other.add([bson.decode(raw) for raw in ring.raw_keys({})])
    with pytest.raises(KeyUnavailable):
        local(other.open(sealed))
