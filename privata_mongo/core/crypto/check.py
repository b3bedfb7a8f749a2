"""The master-key check: a process with the wrong master key must not write.

A data key made under the wrong master key works in the process that made it and in no other:
everything sealed with it is unreadable with the right key. A key vault therefore holds one
*key-check* key (``KEY_CHECK_NAME``), created with the first key the vault gets under the ``local``
master key: a data key like any other, so its ``keyMaterial`` is encrypted and authenticated
(AES-256-CBC, HMAC-SHA-512) under the master key, and master-key rotation re-wraps it with the
rest. Before a key ring creates its first key, it unwraps the key-check key once; a master key
that cannot unwrap it is refused with ``ConfigurationError`` naming the remedy. (KMS-backed
systems check a master key the same way: they decrypt a known value before trusting the key.
With a remote KMS, the KMS itself refuses credentials it does not know; what is compared there
is the master key document, with no KMS request.)

A key vault written before the check existed has no key-check key: any existing key stands in
for it (the blind index key, else the first key found), and the key-check key is created once it
unwraps. An empty key vault next to encrypted identity rows has been lost (dropped, or being
restored): creating keys there would seal new rows under keys the restored vault will not have,
so that is refused with ``KeyUnavailable``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privata_mongo.core.crypto.blind import INDEX_KEY_NAME
from privata_mongo.core.crypto.ring import KEY_CHECK_NAME, KeyRing
from privata_mongo.core.flows.context import Context
from privata_mongo.core.ops import Document, FetchAll, Flow, LoadKeys, Query, StoreKeys
from privata_mongo.core.schema import SEALED_FIELD, Side
from privata_mongo.errors import ConfigurationError, KeyUnavailable

__all__ = ["check_master_key", "refuse_other_master_key"]

_REMEDY = (
    "set the master key the key vault was created with (PRIVATA_MASTER_KEY, "
    "PRIVATA_MASTER_KEY_FILE, or configure(kms_providers=..., master_key=...)), or re-wrap the "
    "vault's keys to this master key with privata_mongo.encryption.rotate_master_key"
)


def check_master_key(ctx: Context, ring: KeyRing) -> Flow[None]:
    """Verify once per ring that its master key is the key vault's, before it makes a key.

    Under the ``local`` master key the key-check key is unwrapped (and created when missing).
    Under a remote KMS the KMS is the authority on its keys (a wrap with credentials it refuses
    fails on its own), so only the configured master key document (key ARN, endpoint …) is
    compared with the one the vault's keys name, and no KMS request is made.

    Raises:
        ConfigurationError: the configured master key is not the key vault's.
        KeyUnavailable: the key vault is empty while identity rows are encrypted.
    """
    if ring.checked:
        return
    found: list[Document] = yield from LoadKeys((KEY_CHECK_NAME, INDEX_KEY_NAME))
    by_name = {n: d for d in found for n in d.get("keyAltNames", ())}
    has_check = KEY_CHECK_NAME in by_name
    sample = by_name.get(KEY_CHECK_NAME) or by_name.get(INDEX_KEY_NAME)
    if sample is None:
        # A vault from before the key check with no blind index key: read it once.
        existing: list[Document] = yield from LoadKeys(None)
        sample = existing[0] if existing else None
    if sample is None:
        yield from _refuse_if_sealed(ctx)
    if ring.provider != "local":
        if sample is not None:
            _same_master_key(ring, sample)
        ring.checked = True
        return
    if sample is not None:
        yield from _unwraps(ring, sample)
    if not has_check:
        made = yield from ring.new_key(KEY_CHECK_NAME)
        yield StoreKeys((made,))
        # Another process may have stored its key-check key first: check whichever is stored.
        stored: list[Document] = yield from LoadKeys((KEY_CHECK_NAME,))
        if stored and stored[0]["_id"] != made["_id"]:
            yield from _unwraps(ring, stored[0])
    ring.checked = True


def _same_master_key(ring: KeyRing, document: Mapping[str, Any]) -> None:
    """Refuse a remote master key document other than the one the vault's keys name."""
    stored = dict(document.get("masterKey") or {})
    configured = ring.master_key or {}
    if stored.get("provider") == ring.provider and any(
        stored.get(k) != v for k, v in configured.items()
    ):
        raise ConfigurationError(
            f"the configured '{ring.provider}' master key is not the one the key vault's keys "
            f"are wrapped with; {_REMEDY}"
        )


def refuse_other_master_key(ring: KeyRing) -> Flow[None]:
    """Raise ``check_master_key``'s error if the ring's master key is not the key vault's.

    For a caller that found a stored key it cannot unwrap (the audit chain key, read before an
    operation's first write to seal its intent): the operation then fails as a write would,
    naming the remedy, rather than with the bare unwrap failure. Under a remote KMS, or when
    the key-check key unwraps, nothing is raised and the caller's own error stands.

    Raises:
        ConfigurationError: the ``local`` master key does not unwrap the key-check key.
    """
    if ring.provider != "local":
        return
    found: list[Document] = yield from LoadKeys((KEY_CHECK_NAME,))
    if found:
        yield from _unwraps(ring, found[0])


def _unwraps(ring: KeyRing, document: Mapping[str, Any]) -> Flow[None]:
    """Unwrap ``document`` under the ring's ``local`` master key, or refuse the master key."""
    try:
        yield from ring.probe(document)
    except KeyUnavailable as exc:
        raise ConfigurationError(
            f"the master key does not unwrap the key vault's keys ({exc}): this process was "
            f"started with another master key than the one that made them; {_REMEDY}"
        ) from None


def _refuse_if_sealed(ctx: Context) -> Flow[None]:
    """An empty key vault is only new if no identity row is encrypted yet."""
    if not ctx.schema.sealed:
        return
    query = Query({SEALED_FIELD: {"$exists": True}}, projection={"_id": 1}, limit=1)
    if (yield from FetchAll(Side.IDENTITY, query)):
        raise KeyUnavailable(
            f"{ctx.schema.model}: the key vault holds no keys while "
            f"{ctx.schema.identity_collection} holds encrypted rows: the key vault was dropped "
            "or is being restored; restore it from its backup before writing (keys made now "
            "would be missing from the restored vault)",
            model=ctx.schema.model,
            fields=tuple(sorted(ctx.schema.identity_fields)),
        )
