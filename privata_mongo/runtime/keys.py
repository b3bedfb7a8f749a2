"""Master key resolution and the key rings of one connection.

The ``local`` master key (96 bytes, base64) comes from the environment, never from code:
``PRIVATA_MASTER_KEY`` or a file named by ``PRIVATA_MASTER_KEY_FILE``. On the embedded backend
(mongomock) with neither set, a development key is generated into ``.privata/master.key`` in the
working directory, with a warning, so a demo and a fresh clone just work; against a real server
``connect``/``init_beanie`` refuse to start without a key (``ConfigurationError``). Remote KMS
providers (``aws``, ``azure``, ``gcp``, ``kmip``) are passed through from
``configure(kms_providers=..., kms_provider=..., master_key=...)`` to libmongocrypt.

Each connection's runtime holds its ``KeyRings``: the key ring for the settings in force (a new
one when ``configure`` changes the KMS configuration), the key vault it loads from, and the KMS
transport that serves the flows' KMS requests (with ``configure(kms_tls_options=...)``).
Erasure must reach every copy of a key held in this process, whichever connection loaded it,
so rings are also listed (weakly) for ``forget_everywhere``.
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
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from privata_mongo.adapters.key_vault import AsyncCollectionKeyVault, CollectionKeyVault
from privata_mongo.adapters.kms import AsyncKmsTransport, KmsTransport
from privata_mongo.config import Region, Settings
from privata_mongo.core.crypto.ring import KeyRing
from privata_mongo.errors import ConfigurationError

__all__ = [
    "DEV_KEY_PATH",
    "MASTER_KEY_ENV",
    "MASTER_KEY_FILE_ENV",
    "MASTER_KEY_SIZE",
    "KeyRings",
    "check_master_key",
    "decode_master_key",
    "forget_everywhere",
    "held_everywhere",
    "is_embedded",
    "kms_providers",
    "kms_transports",
    "master_key_of",
    "new_master_key",
    "real_client",
    "region_key_env",
    "region_provider",
    "region_providers",
    "resolve_master_key",
]

logger = logging.getLogger(__name__)

MASTER_KEY_ENV = "PRIVATA_MASTER_KEY"
MASTER_KEY_FILE_ENV = "PRIVATA_MASTER_KEY_FILE"
MASTER_KEY_SIZE = 96
DEV_KEY_PATH = Path(".privata") / "master.key"

_EMBEDDED_MODULES = ("mongomock", "privata_mongo.embedded")
_lock = threading.Lock()
_dev_keys: dict[Path, bytes] = {}
_live_rings: weakref.WeakSet[KeyRing] = weakref.WeakSet()


def new_master_key() -> str:
    """A fresh ``local`` master key, base64, for ``PRIVATA_MASTER_KEY``."""
    return base64.b64encode(secrets.token_bytes(MASTER_KEY_SIZE)).decode()


def is_embedded(client: Any) -> bool:
    """Whether ``client`` (a real client) is the embedded, in-process backend."""
    return type(client).__module__.startswith(_EMBEDDED_MODULES)


def decode_master_key(text: str, source: str) -> bytes:
    """A base64 ``local`` master key, checked for its size.

    Raises:
        ConfigurationError: not base64, or not 96 bytes.
    """
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


def resolve_master_key(settings: Settings, *, embedded: bool) -> bytes | None:
    """The ``local`` master key from the environment (or the development key file).

    Returns ``None`` when a remote KMS provider is configured and no local key is set.

    Raises:
        ConfigurationError: a malformed key, or no key against a real server.
    """
    text = os.environ.get(MASTER_KEY_ENV, "").strip()
    if text:
        return decode_master_key(text, MASTER_KEY_ENV)
    path_name = os.environ.get(MASTER_KEY_FILE_ENV, "").strip()
    if path_name:
        path = Path(path_name)
        try:
            return decode_master_key(path.read_text(), f"{MASTER_KEY_FILE_ENV} ({path})")
        except OSError as exc:
            raise ConfigurationError(
                f"{MASTER_KEY_FILE_ENV} names {path}, which cannot be read: {exc.strerror}"
            ) from None
    if settings.kms_provider != "local":
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
        key = decode_master_key(path.read_text(), str(path))
        _dev_keys[path] = key
        return key


def kms_providers(settings: Settings, *, embedded: bool) -> dict[str, Any]:
    """Libmongocrypt's ``kms_providers``: the configured remote ones and the local key."""
    providers: dict[str, Any] = dict(settings.kms_providers or {})
    local = resolve_master_key(settings, embedded=embedded)
    if local is not None:
        providers["local"] = {"key": local}
    return providers


def region_key_env(name: str, region: Region) -> str:
    """The environment variable holding region ``name``'s local master key."""
    return region.master_key_env or f"{MASTER_KEY_ENV}_{name.upper()}"


def region_provider(name: str, region: Region) -> str:
    """The KMS provider region ``name``'s new data keys are wrapped with."""
    return region.kms_provider or f"local:{name}"


def region_providers(settings: Settings) -> dict[str, Any]:
    """The named local master keys of the configured regions, from the environment.

    Raises:
        ConfigurationError: a region's local key is not set, or malformed.
    """
    providers: dict[str, Any] = {}
    for name, region in (settings.regions or {}).items():
        provider = region_provider(name, region)
        if provider.partition(":")[0] != "local":
            continue
        variable = region_key_env(name, region)
        text = os.environ.get(variable, "").strip()
        if not text:
            raise ConfigurationError(
                f"region '{name}' wraps its data keys with its own local master key, and "
                f"{variable} is not set: set it (base64 of {MASTER_KEY_SIZE} random bytes, "
                "privata_mongo.encryption.new_master_key()), or give the region a kms_provider"
            )
        providers[provider] = {"key": decode_master_key(text, variable)}
    return providers


def check_master_key(settings: Settings, *, embedded: bool) -> None:
    """Fail at start-up, not on the first write, when no master key can be found.

    Raises:
        ConfigurationError: encryption is on and no usable master key is configured, or the
            KMS TLS options are unknown, insecure or name files that cannot be loaded.
    """
    if settings.encryption:
        kms_providers(settings, embedded=embedded)
        region_providers(settings)
        kms_transports(settings)


_transports: dict[str, tuple[KmsTransport, AsyncKmsTransport]] = {}


def kms_transports(settings: Settings) -> tuple[KmsTransport, AsyncKmsTransport]:
    """The sync and async KMS transports for the settings' ``kms_tls_options``.

    Raises:
        ConfigurationError: an unknown or insecure TLS option, or a file that cannot be loaded.
    """
    options = settings.kms_tls_options
    fingerprint = repr(options)
    pair = _transports.get(fingerprint)
    if pair is None:
        # Built outside the lock: loading certificate files is I/O.
        made = (KmsTransport(options), AsyncKmsTransport(options))
        with _lock:
            pair = _transports.setdefault(fingerprint, made)
    return pair


def held_everywhere() -> int:
    """How many data subjects' keys the rings of this process hold now, summed over rings."""
    return sum(ring.held_subjects for ring in list(_live_rings))


def forget_everywhere(names: Iterable[str] | None = None) -> None:
    """Drop data keys (all of them when ``names`` is ``None``) from every ring of the process."""
    chosen = None if names is None else tuple(names)
    for ring in list(_live_rings):
        ring.forget(chosen)


class KeyRings:
    """The key rings and key vaults of one connection.

    Args:
        client: the connection's real client (the key vault's, unless the settings name
            another ``key_vault_client``).
        asynchronous: whether key vaults are served awaited.
    """

    def __init__(self, client: Any, *, asynchronous: bool) -> None:
        self.client = client
        self.asynchronous = asynchronous
        self.embedded = is_embedded(client)
        self._lock = threading.Lock()
        # Values keep the settings alive, so an id in a key is never reused while cached.
        self._providers: dict[tuple[Any, ...], tuple[Settings, dict[str, Any]]] = {}
        self._rings: dict[tuple[Any, ...], KeyRing] = {}
        self._vaults: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def _kms_providers(self, settings: Settings) -> dict[str, Any]:
        environment = (
            os.environ.get(MASTER_KEY_ENV),
            os.environ.get(MASTER_KEY_FILE_ENV),
            *(
                os.environ.get(region_key_env(name, region))
                for name, region in (settings.regions or {}).items()
            ),
        )
        key = (id(settings), *environment)
        held = self._providers.get(key)
        if held is None:
            providers = kms_providers(settings, embedded=self.embedded)
            providers.update(region_providers(settings))
            held = (settings, providers)
            with self._lock:
                self._providers[key] = held
        return held[1]

    def ring(self, settings: Settings) -> KeyRing:
        """The key ring for ``settings`` (the same ring while the KMS configuration holds)."""
        providers = self._kms_providers(settings)
        # The master key document too: a new ``endpoint`` or key ARN is a new ring.
        identity = repr((sorted(providers.items()), settings.master_key))
        fingerprint = hashlib.sha256(identity.encode()).hexdigest()
        owner = settings.key_vault_client or self.client
        key = (id(owner), settings.key_vault_namespace, fingerprint, settings.kms_provider)
        ring = self._rings.get(key)
        if ring is not None:
            ring.size = settings.key_cache_size  # a later configure() applies at once
            return ring
        with self._lock:
            ring = self._rings.get(key)
            if ring is None:
                ring = KeyRing(
                    providers,
                    provider=settings.kms_provider,
                    master_key=settings.master_key,
                    ttl=settings.key_cache_ttl,
                    clock=time.monotonic,
                    size=settings.key_cache_size,
                )
                self._rings[key] = ring
                _live_rings.add(ring)
        return ring

    def region_vault(self, region: Region) -> CollectionKeyVault | AsyncCollectionKeyVault:
        """The key vault (and shredder) of a region (``config.Region``)."""
        database, _, collection = region.key_vault_namespace.partition(".")
        return self._vault_on(
            region.key_vault_client or region.identity_client, database, collection
        )

    def transport(self, settings: Settings) -> KmsTransport | AsyncKmsTransport:
        """The KMS transport of this connection's driver (the async one never blocks)."""
        sync, asynchronous = kms_transports(settings)
        return asynchronous if self.asynchronous else sync

    def vault(self, settings: Settings) -> CollectionKeyVault | AsyncCollectionKeyVault:
        """The key vault (and shredder) the settings name."""
        database, _, collection = settings.key_vault_namespace.partition(".")
        if not database or not collection:
            raise ConfigurationError(
                "key_vault_namespace must be 'database.collection', e.g. 'encryption.__keyVault'"
            )
        return self._vault_on(settings.key_vault_client or self.client, database, collection)

    def _vault_on(
        self, client: Any, database: str, collection: str
    ) -> CollectionKeyVault | AsyncCollectionKeyVault:
        """The key vault ``database.collection`` of ``client``, made once per connection."""
        owner = real_client(client)
        key = (id(owner), database, collection)
        held = self._vaults.get(key)
        if held is None:
            vault = owner[database][collection]
            unique = not is_embedded(owner)
            made = (
                AsyncCollectionKeyVault(vault, unique_names=unique)
                if self.asynchronous
                else CollectionKeyVault(vault, unique_names=unique)
            )
            # The owner is kept with the vault, so its id is not reused while cached.
            held = self._vaults.setdefault(key, (owner, made))
        vault_of: CollectionKeyVault | AsyncCollectionKeyVault = held[1]
        return vault_of


def real_client(client: Any) -> Any:
    """The real client behind a privata proxy client (or ``client`` itself)."""
    if type(client).__module__.startswith("privata_mongo.proxy"):
        return client.inner
    return client


def master_key_of(key: bytes | str, name: str) -> bytes:
    """A master key given as bytes or base64 text, checked."""
    if isinstance(key, str):
        return decode_master_key(key, name)
    if len(key) != MASTER_KEY_SIZE:
        raise ConfigurationError(f"{name} must be {MASTER_KEY_SIZE} bytes")
    return key
