"""Keys for the encryption of identity rows: master key, key rings, key vaults, operator API.

Crypto-shredding (``shred``) and master-key rotation (``rotate_master_key``) are here too.

The ``local`` master key (96 bytes, base64) comes from the environment, never from code:
``PRIVATA_MASTER_KEY`` or a file named by ``PRIVATA_MASTER_KEY_FILE``. On the embedded backend
(mongomock) with neither set, a development key is generated into ``.privata/master.key`` in the
working directory, with a warning, so a demo and a fresh clone just work; against a real server
``connect``/``init_beanie`` refuse to start without a key (``ConfigurationError``). Remote KMS
providers (``aws``, ``azure``, ``gcp``, ``kmip``) are passed through from
``configure(kms_providers=..., kms_provider=..., master_key=...)`` to libmongocrypt; their
network requests go through the KMS transport built here (``kms_transport``), with the TLS
options of ``configure(kms_tls_options=...)``.

See ``docs/encryption.md`` for the stored format and the guarantees.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from privata_mongo.adapters.key_vault import AsyncCollectionKeyVault, CollectionKeyVault
from privata_mongo.adapters.kms import AsyncKmsTransport, KmsTransport
from privata_mongo.config import current
from privata_mongo.context import resolve_access
from privata_mongo.core.crypto import keys as key_flows
from privata_mongo.core.crypto.ring import KeyRing
from privata_mongo.core.schema import SEALED_FIELD
from privata_mongo.drivers import aio, sync
from privata_mongo.drivers._dispatch import Binding
from privata_mongo.errors import ConfigurationError

__all__ = [
    "DEV_KEY_PATH",
    "MASTER_KEY_ENV",
    "MASTER_KEY_FILE_ENV",
    "MASTER_KEY_SIZE",
    "async_key_vault",
    "async_kms_transport",
    "check_master_key",
    "forget_keys",
    "is_embedded",
    "key_ring",
    "key_vault",
    "kms_transport",
    "new_master_key",
    "resolve_master_key",
    "rotate_master_key",
    "shred",
    "shred_async",
    "unseal_row",
    "unseal_row_async",
]

logger = logging.getLogger(__name__)

MASTER_KEY_ENV = "PRIVATA_MASTER_KEY"
MASTER_KEY_FILE_ENV = "PRIVATA_MASTER_KEY_FILE"
MASTER_KEY_SIZE = 96
DEV_KEY_PATH = Path(".privata") / "master.key"

_EMBEDDED_MODULES = ("mongomock", "privata_mongo.adapters.mongomock_async")
_lock = threading.Lock()
# Keyed by the key vault's client too: two servers in one process have two key vaults. The
# value keeps the client alive, so its id is never reused for another client.
_rings: dict[tuple[Any, ...], tuple[Any, KeyRing]] = {}
_dev_keys: dict[Path, bytes] = {}
_transports: dict[str, tuple[KmsTransport, AsyncKmsTransport]] = {}


def new_master_key() -> str:
    """A fresh ``local`` master key, base64, for ``PRIVATA_MASTER_KEY``."""
    return base64.b64encode(secrets.token_bytes(MASTER_KEY_SIZE)).decode()


def _real(client: Any) -> Any:
    """The real client behind a privata proxy client (or ``client`` itself)."""
    if type(client).__module__.startswith("privata_mongo.proxy"):
        return client.inner
    return client


def is_embedded(client: Any) -> bool:
    """Whether ``client`` is the embedded, in-process backend (mongomock, sync or async)."""
    return type(_real(client)).__module__.startswith(_EMBEDDED_MODULES)


def _decode(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"{source} is not base64; expected {MASTER_KEY_SIZE} bytes"
        ) from None
    if len(key) != MASTER_KEY_SIZE:
        raise ConfigurationError(
            f"{source} holds {len(key)} bytes; a local master key has {MASTER_KEY_SIZE} bytes "
            "(generate one with privata_mongo.encryption.new_master_key())"
        )
    return key


def resolve_master_key(*, embedded: bool) -> bytes | None:
    """The ``local`` master key from the environment (or the development key file).

    Returns ``None`` when a remote KMS provider is configured and no local key is set.

    Raises:
        ConfigurationError: a malformed key, or no key against a real server.
    """
    text = os.environ.get(MASTER_KEY_ENV, "").strip()
    if text:
        return _decode(text, MASTER_KEY_ENV)
    path_name = os.environ.get(MASTER_KEY_FILE_ENV, "").strip()
    if path_name:
        path = Path(path_name)
        try:
            return _decode(path.read_text(), f"{MASTER_KEY_FILE_ENV} ({path})")
        except OSError as exc:
            raise ConfigurationError(
                f"{MASTER_KEY_FILE_ENV} names {path}, which cannot be read: {exc.strerror}"
            ) from None
    if current().kms_provider != "local":
        return None
    if embedded:
        return _development_key()
    raise ConfigurationError(
        "identity data is encrypted and no master key is configured: set "
        f"{MASTER_KEY_ENV} (base64 of {MASTER_KEY_SIZE} random bytes) or "
        f"{MASTER_KEY_FILE_ENV}, or configure a KMS provider "
        "(privata_mongo.configure(kms_provider=..., kms_providers=..., master_key=...))"
    )


def _development_key() -> bytes:
    path = Path.cwd() / DEV_KEY_PATH
    known = _dev_keys.get(path)
    if known is not None:
        return known
    with _lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Created readable by its owner only, never briefly readable by others.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(new_master_key() + "\n")
            logger.warning(
                "no master key configured: generated a development key in %s (embedded "
                "backend only; set %s for real deployments, and keep the key: without it "
                "the identity data cannot be read)",
                path,
                MASTER_KEY_ENV,
            )
        key = _decode(path.read_text(), str(path))
        _dev_keys[path] = key
        return key


def _providers(embedded: bool) -> dict[str, Any]:
    settings = current()
    providers: dict[str, Any] = dict(settings.kms_providers or {})
    local = resolve_master_key(embedded=embedded)
    if local is not None:
        providers["local"] = {"key": local}
    return providers


def check_master_key(client: Any = None, *, embedded: bool | None = None) -> None:
    """Fail at start-up, not on the first write, when no master key can be found.

    Raises:
        ConfigurationError: encryption is on and no usable master key is configured.
    """
    if current().encryption:
        _providers(is_embedded(client) if embedded is None else embedded)
        kms_transport()


def key_ring(client: Any) -> KeyRing:
    """The process's key ring for ``client``'s key vault and the configured master key."""
    settings = current()
    providers = _providers(is_embedded(client))
    # The master key document too: a new ``endpoint`` or key ARN is a new ring.
    identity = repr((sorted(providers.items()), settings.master_key))
    fingerprint = hashlib.sha256(identity.encode()).hexdigest()
    owner = _real(settings.key_vault_client or client)
    key = (id(owner), settings.key_vault_namespace, fingerprint, settings.kms_provider)
    with _lock:
        held = _rings.get(key)
        ring = held[1] if held is not None else None
        if ring is None:
            ring = KeyRing(
                providers,
                provider=settings.kms_provider,
                master_key=settings.master_key,
                ttl=settings.key_cache_ttl,
                clock=time.monotonic,
            )
            _rings[key] = (owner, ring)
        return ring


def forget_keys() -> None:
    """Drop every data key held in memory by this process (all key rings)."""
    with _lock:
        rings = [ring for _, ring in _rings.values()]
    for ring in rings:
        ring.forget()


def _vault_collection(client: Any) -> Any:
    settings = current()
    database, _, collection = settings.key_vault_namespace.partition(".")
    if not database or not collection:
        raise ConfigurationError(
            "key_vault_namespace must be 'database.collection', e.g. 'encryption.__keyVault'"
        )
    owner = _real(settings.key_vault_client or client)
    return owner[database][collection]


def key_vault(client: Any) -> CollectionKeyVault:
    """The key vault (and shredder) of a sync client."""
    return CollectionKeyVault(_vault_collection(client))


def async_key_vault(client: Any) -> AsyncCollectionKeyVault:
    """The key vault (and shredder) of an async client."""
    return AsyncCollectionKeyVault(_vault_collection(client))


def _transport_pair() -> tuple[KmsTransport, AsyncKmsTransport]:
    options = current().kms_tls_options
    fingerprint = repr(options)
    with _lock:
        pair = _transports.get(fingerprint)
    if pair is None:
        # Built outside the lock: loading certificate files is I/O.
        pair = (KmsTransport(options), AsyncKmsTransport(options))
        with _lock:
            pair = _transports.setdefault(fingerprint, pair)
    return pair


def kms_transport() -> KmsTransport:
    """The KMS transport of the sync driver, with the configured ``kms_tls_options``.

    Raises:
        ConfigurationError: an unknown or insecure TLS option, or a file that cannot be loaded.
    """
    return _transport_pair()[0]


def async_kms_transport() -> AsyncKmsTransport:
    """The KMS transport of the async driver (never blocks the event loop)."""
    return _transport_pair()[1]


def _binding(vault: Any, kms: Any = None) -> Binding[Any, Any, Any, Any]:
    return Binding(clinical=None, identity=None, access=resolve_access, keys=vault, kms=kms)


def shred(client: Any, pseudonyms: Sequence[str]) -> int:
    """Crypto-shred data subjects: destroy their data keys; returns the keys deleted.

    Every copy of their identity rows (the live collection, replicas, backups, exports)
    becomes unreadable; a read returns their documents without identity values. Tombstones
    record which pseudonyms were shredded (no personal data).
    """
    ring = key_ring(client)
    return sync.run(key_flows.shred(ring, pseudonyms), _binding(key_vault(client)))


async def shred_async(client: Any, pseudonyms: Sequence[str]) -> int:
    """``shred`` for an async client."""
    ring = key_ring(client)
    return await aio.run(key_flows.shred(ring, pseudonyms), _binding(async_key_vault(client)))


def rotate_master_key(
    client: Any,
    new_key: bytes | str,
    *,
    old_key: bytes | str | None = None,
    master_key: Mapping[str, Any] | None = None,
) -> int:
    """Re-wrap every data key under a new ``local`` master key; returns the keys re-wrapped.

    Documents are not re-encrypted: only the wrapping of the data keys in the key vault
    changes (pymongo's ``rewrap_many_data_key`` semantics). ``old_key`` defaults to the
    configured key. Afterwards, set ``PRIVATA_MASTER_KEY`` to the new key in every process.

    Raises:
        ConfigurationError: a key is malformed.
        KeyUnavailable: a data key cannot be unwrapped with the old key.
    """
    embedded = is_embedded(client)
    old = (
        _as_key(old_key, "old_key")
        if old_key is not None
        else resolve_master_key(embedded=embedded)
    )
    if old is None:
        raise ConfigurationError("rotate_master_key needs the current local master key")
    new = _as_key(new_key, "new_key")
    ring = key_ring(client)
    flow = key_flows.rotate(
        ring, {"local": {"key": old}}, {"local": {"key": new}}, master_key=master_key
    )
    count = sync.run(flow, _binding(key_vault(client), kms_transport()))
    forget_keys()
    return count


def _as_key(key: bytes | str, name: str) -> bytes:
    if isinstance(key, str):
        return _decode(key, name)
    if len(key) != MASTER_KEY_SIZE:
        raise ConfigurationError(f"{name} must be {MASTER_KEY_SIZE} bytes")
    return key


def unseal_row(client: Any, row: Mapping[str, Any]) -> dict[str, Any]:
    """The identity values of one raw identity row, decrypted (for operators and tests).

    Raises:
        KeyUnavailable: the subject's data key is missing (shredded) or unusable.
    """
    if row.get(SEALED_FIELD) is None:
        return {}
    flow = key_flows.unseal_row(key_ring(client), row)
    return sync.run(flow, _binding(key_vault(client), kms_transport()))


async def unseal_row_async(client: Any, row: Mapping[str, Any]) -> dict[str, Any]:
    """``unseal_row`` for an async client."""
    if row.get(SEALED_FIELD) is None:
        return {}
    flow = key_flows.unseal_row(key_ring(client), row)
    return await aio.run(flow, _binding(async_key_vault(client), async_kms_transport()))
