"""The audit chain key: the secret the audit trail's MACs are made with.

It is derived (``ring.derived_secret``) from one data key of the key vault per audit
destination (``chain_key_name``: ``privata:audit-chain:<database>.<collection>`` for an audit
collection, ``privata:audit-chain`` for any other sink), created once with the destination's
first audited operation: like every data key its material is wrapped by the master key, so only
a process holding the master key can extend or verify the chain, and a master-key rotation
re-wraps it with the rest (the secret does not change). It is never shredded (it names no data
subject), and it is never stored in the clear.

The key's presence also tells ``verify`` that a trail was started at that destination: an empty
audit collection next to its chain key was emptied. (One key per destination, because one key
vault serves many databases: a key shared by all would make every new database's empty trail
look emptied.)
"""

from __future__ import annotations

from privata_mongo.core.crypto.ring import KEY_CHECK_NAME, KeyRing, derived_secret
from privata_mongo.core.ops import Document, Flow, LoadKeys, StoreKeys
from privata_mongo.errors import ConfigurationError, KeyUnavailable

__all__ = ["CHAIN_KEY_NAME", "chain_key", "chain_key_name", "is_chain_key_name"]

CHAIN_KEY_NAME = "privata:audit-chain"
"""``keyAltName`` prefix of the data keys audit chain keys are derived from."""


def chain_key_name(destination: str | None) -> str:
    """The ``keyAltName`` of the chain key of ``destination`` (``db.collection``, or ``None``)."""
    return f"{CHAIN_KEY_NAME}:{destination}" if destination else CHAIN_KEY_NAME


def is_chain_key_name(name: str) -> bool:
    """Whether ``name`` names a chain key (never shredded)."""
    return name == CHAIN_KEY_NAME or name.startswith(CHAIN_KEY_NAME + ":")


_LABEL = b"privata audit chain key v1"


def chain_key(ring: KeyRing, *, create: bool, destination: str | None = None) -> Flow[bytes | None]:
    """The chain key of ``destination``, read from the key vault (made first with ``create``).

    Returns ``None`` when the vault has no chain key and ``create`` is false (nothing was ever
    audited with this vault). Before the key is made, the master key is checked against the
    vault's key-check key: a key made under another master key would seal a chain that no
    correctly configured process could verify.

    Raises:
        ConfigurationError: the master key does not unwrap the vault's key-check key.
        KeyUnavailable: the chain key cannot be unwrapped (wrong master key, KMS unreachable).
    """
    name = chain_key_name(destination)
    found: list[Document] = yield from LoadKeys((name,))
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
        made = yield from ring.new_key(name)
        yield StoreKeys((made,))
        # Another process may have stored its chain key first: use whichever is stored.
        found = yield from LoadKeys((name,))
    ring.add(found[:1])
    secret: bytes = yield from derived_secret(ring, name, _LABEL)
    return secret
