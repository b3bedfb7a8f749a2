"""The audit chain key: the secret the audit trail's MACs are made with.

It is derived (``ring.derived_secret``) from one data key of the key vault, ``CHAIN_KEY_NAME``,
created once with the first audited operation: like every data key its material is wrapped by
the master key, so only a process holding the master key can extend or verify the chain, and a
master-key rotation re-wraps it with the rest (the secret does not change). It is never shredded
(it names no data subject), and it is never stored in the clear.

The key's presence also tells ``verify`` that a trail was started: an empty audit collection
next to a chain key was emptied.
"""

from __future__ import annotations

from privata_mongo.core.crypto.ring import KEY_CHECK_NAME, KeyRing, derived_secret
from privata_mongo.core.ops import Document, Flow, LoadKeys, StoreKeys
from privata_mongo.errors import ConfigurationError, KeyUnavailable

__all__ = ["CHAIN_KEY_NAME", "chain_key"]

CHAIN_KEY_NAME = "privata:audit-chain"
"""``keyAltName`` of the data key the audit chain key is derived from."""

_LABEL = b"privata audit chain key v1"


def chain_key(ring: KeyRing, *, create: bool) -> Flow[bytes | None]:
    """The audit chain key, read from the key vault (made there first with ``create``).

    Returns ``None`` when the vault has no chain key and ``create`` is false (nothing was ever
    audited with this vault). Before the key is made, the master key is checked against the
    vault's key-check key: a key made under another master key would seal a chain that no
    correctly configured process could verify.

    Raises:
        ConfigurationError: the master key does not unwrap the vault's key-check key.
        KeyUnavailable: the chain key cannot be unwrapped (wrong master key, KMS unreachable).
    """
    found: list[Document] = yield from LoadKeys((CHAIN_KEY_NAME,))
    if not found:
        if not create:
            return None
        check: list[Document] = yield from LoadKeys((KEY_CHECK_NAME,))
        if check:
            try:
                yield from ring.probe(check[0])
            except KeyUnavailable:
                raise ConfigurationError(
                    "the master key does not unwrap the key vault's keys: the audit chain key "
                    "cannot be made; set the master key the key vault was created with"
                ) from None
        made = yield from ring.new_key(CHAIN_KEY_NAME)
        yield StoreKeys((made,))
        # Another process may have stored its chain key first: use whichever is stored.
        found = yield from LoadKeys((CHAIN_KEY_NAME,))
    ring.add(found[:1])
    secret: bytes = yield from derived_secret(ring, CHAIN_KEY_NAME, _LABEL)
    return secret
