"""MongoDB's CSFLE value format, read without a libmongocrypt context.

A CSFLE (FLE1) value is BSON binary subtype 6 holding ``blob subtype (1 byte: 1 deterministic,
2 random) || data key id (16) || BSON type of the plaintext (1) || AEAD ciphertext``, the
ciphertext being ``AEAD_AES_256_CBC_HMAC_SHA_512`` (draft-mcgrew-aead-aes-cbc-hmac-sha2, with
SHA-512 truncated to 256 bits): ``IV || AES-256-CBC(PKCS#7) || HMAC tag``, authenticated over
the first 18 bytes as associated data. A 96-byte data key is the MAC key, the encryption key
and (for deterministic values) the IV key, in that order. A data key wrapped by the ``local``
master key is the same AEAD over the 96 key bytes with no associated data.

Why this exists: libmongocrypt keeps the keys it has unwrapped in a list that every new context
scans, and the ring holds one data key per data subject, so opening a row cost more the more
subjects had been read (32 µs with one key held, ~100 µs past a thousand). Opening a value here
costs the same at any number of keys. Sealing stays with libmongocrypt, which draws the random
IVs itself; ``encrypt`` is the inverse of ``decrypt``, so a test can prove byte for byte that
both read and write exactly what libmongocrypt does (``tests/unit/test_aead.py``).
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "DETERMINISTIC",
    "KEY_LENGTH",
    "RANDOM",
    "InvalidCiphertext",
    "decrypt",
    "deterministic_iv",
    "encrypt",
    "open_value",
]

KEY_LENGTH = 96
"""Bytes of a CSFLE data key (and of a ``local`` master key)."""

DETERMINISTIC = 1
RANDOM = 2
"""The blob subtypes of ``AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic`` and ``-Random``."""

_HEADER = 18
_IV = 16
_TAG = 32
_BLOCK = 16


class InvalidCiphertext(ValueError):
    """The value is not a CSFLE ciphertext of this key, or it was altered."""


def _keys(key: bytes) -> tuple[bytes, bytes, bytes]:
    if len(key) != KEY_LENGTH:
        raise InvalidCiphertext(f"a CSFLE key has {KEY_LENGTH} bytes")
    return key[:32], key[32:64], key[64:]


def _tag(mac_key: bytes, aad: bytes, sealed: bytes) -> bytes:
    length = (len(aad) * 8).to_bytes(8, "big")
    return hmac.new(mac_key, aad + sealed + length, hashlib.sha512).digest()[:_TAG]


def deterministic_iv(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """The IV libmongocrypt derives for a deterministic value (HMAC-SHA-512 under the IV key)."""
    _, _, iv_key = _keys(key)
    length = (len(aad) * 8).to_bytes(8, "big")
    return hmac.new(iv_key, aad + length + plaintext, hashlib.sha512).digest()[:_IV]


def encrypt(key: bytes, plaintext: bytes, aad: bytes, iv: bytes) -> bytes:
    """``IV || AES-256-CBC(plaintext) || tag``: the AEAD ciphertext, as libmongocrypt writes it.

    Raises:
        InvalidCiphertext: the key or the IV has the wrong length.
    """
    mac_key, enc_key, _ = _keys(key)
    if len(iv) != _IV:
        raise InvalidCiphertext(f"a CSFLE IV has {_IV} bytes")
    padder = padding.PKCS7(_BLOCK * 8).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
    sealed = iv + encryptor.update(padded) + encryptor.finalize()
    return sealed + _tag(mac_key, aad, sealed)


def decrypt(key: bytes, data: bytes, aad: bytes) -> bytes:
    """The plaintext of an AEAD ciphertext, after its tag is verified (in constant time).

    Raises:
        InvalidCiphertext: the tag does not verify (another key, or altered bytes), or the
            ciphertext is malformed.
    """
    mac_key, enc_key, _ = _keys(key)
    if len(data) < _IV + _BLOCK + _TAG or (len(data) - _IV - _TAG) % _BLOCK:
        raise InvalidCiphertext("the ciphertext has an impossible length")
    sealed, tag = data[:-_TAG], data[-_TAG:]
    if not hmac.compare_digest(_tag(mac_key, aad, sealed), tag):
        raise InvalidCiphertext("HMAC validation failure")
    decryptor = Cipher(algorithms.AES(enc_key), modes.CBC(sealed[:_IV])).decryptor()
    padded = decryptor.update(sealed[_IV:]) + decryptor.finalize()
    unpadder = padding.PKCS7(_BLOCK * 8).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise InvalidCiphertext("the ciphertext's padding is invalid") from None


def open_value(key: bytes, blob: bytes) -> tuple[int, bytes]:
    """The BSON type and the BSON value bytes a CSFLE value holds.

    Raises:
        InvalidCiphertext: not an FLE1 value, or its tag does not verify under ``key``.
    """
    if len(blob) <= _HEADER or blob[0] not in (DETERMINISTIC, RANDOM):
        raise InvalidCiphertext("not a CSFLE AEAD_AES_256_CBC_HMAC_SHA_512 value")
    return blob[17], decrypt(key, blob[_HEADER:], blob[:_HEADER])
