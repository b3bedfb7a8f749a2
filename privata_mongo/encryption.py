"""The operator API of encryption: master keys, key rings, crypto-shredding, key rotation.

The master key is resolved from the environment (``PRIVATA_MASTER_KEY`` or
``PRIVATA_MASTER_KEY_FILE``; a development key on the embedded backend), see
``privata_mongo.runtime.keys``. Every function here takes a client — a privata proxy client
(``get_connection()``, or the one behind a Beanie database), whose own runtime is used, or a
real client, for which a runtime is built — and runs the key flows of the core through the
drivers.

See ``docs/encryption.md`` for the stored format and the guarantees.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Generator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from privata_mongo.adapters.kms import AsyncKmsTransport, KmsTransport
from privata_mongo.config import cached as any_cache
from privata_mongo.config import current
from privata_mongo.core.audit import AccessContext, AuditRecord, records_for
from privata_mongo.core.crypto import keys as key_flows
from privata_mongo.core.crypto.ring import KeyRing
from privata_mongo.core.ops import Steps
from privata_mongo.core.schema import SEALED_FIELD
from privata_mongo.drivers import aio, sync
from privata_mongo.drivers._audit import AsyncAuditTrail, AuditTrail
from privata_mongo.drivers._dispatch import Binding
from privata_mongo.errors import ConfigurationError, UnknownRegion
from privata_mongo.proxy._collection_base import SplitCollectionBase
from privata_mongo.proxy.database import DatabaseBase
from privata_mongo.runtime import Runtime, build_runtime
from privata_mongo.runtime.keys import (
    DEV_KEY_PATH,
    MASTER_KEY_ENV,
    MASTER_KEY_FILE_ENV,
    MASTER_KEY_SIZE,
    forget_everywhere,
    is_embedded,
    kms_transports,
    master_key_of,
    new_master_key,
    real_client,
    region_key_env,
    region_provider,
    resolve_master_key,
)

__all__ = [
    "DEV_KEY_PATH",
    "MASTER_KEY_ENV",
    "MASTER_KEY_FILE_ENV",
    "MASTER_KEY_SIZE",
    "UNSEAL_OPERATION",
    "async_kms_transport",
    "forget_keys",
    "key_ring",
    "kms_transport",
    "new_master_key",
    "reindex",
    "reindex_async",
    "rotate_master_key",
    "shred",
    "shred_async",
    "unseal_row",
    "unseal_row_async",
]


UNSEAL_OPERATION = "unseal"
"""The ``operation`` (and ``model``) of the audit record ``unseal_row`` appends."""


_built: dict[int, tuple[weakref.ref[Any], dict[bool, Runtime]]] = {}
"""Runtimes kept per real client, by identity (clients to one server compare equal)."""


def _runtime(client: Any, *, asynchronous: bool) -> Runtime:
    """The runtime of a proxy client, or a new one for a real client (cheap: keys load lazily)."""
    runtime: Runtime | None = getattr(client, "runtime", None)
    if isinstance(runtime, Runtime):
        return runtime
    return build_runtime(real_client(client), asynchronous=asynchronous)


def _audit_runtime(client: Any, *, asynchronous: bool) -> Runtime:
    """The runtime of a proxy client, or the one kept for a real client.

    A real client's is built once and kept while the client lives, so the records of its
    ``unseal_row`` calls share one audit stream (a new runtime would start one per call).
    """
    runtime: Runtime | None = getattr(client, "runtime", None)
    if isinstance(runtime, Runtime):
        return runtime
    real = real_client(client)
    key = id(real)
    held = _built.get(key)
    if held is None or held[0]() is not real:

        def gone(ref: weakref.ref[Any], built: dict[int, Any] = _built) -> None:
            # ``built`` is bound now: at interpreter exit the module's globals may be gone
            if key in built and built[key][0] is ref:
                del built[key]

        try:
            ref = weakref.ref(real, gone)
        except TypeError:  # a client that cannot be weakly referenced
            return build_runtime(real, asynchronous=asynchronous)
        held = (ref, {})
        _built[key] = held
    runtimes = held[1]
    if asynchronous not in runtimes:
        runtimes[asynchronous] = build_runtime(real, asynchronous=asynchronous)
    return runtimes[asynchronous]


def _binding(runtime: Runtime) -> Binding[Any, Any, Any, Any, Any]:
    settings = runtime.settings()
    return Binding(
        clinical=None,
        identity=None,
        access=runtime.access,
        keys=runtime.keys.vault(settings),
        kms=runtime.keys.transport(settings),
        cache=runtime.cache(),
    )


def kms_transport() -> KmsTransport:
    """The KMS transport of the sync driver, with the configured ``kms_tls_options``.

    Raises:
        ConfigurationError: an unknown or insecure TLS option, or a file that cannot be loaded.
    """
    return kms_transports(current())[0]


def async_kms_transport() -> AsyncKmsTransport:
    """The KMS transport of the async driver (it never blocks the event loop)."""
    return kms_transports(current())[1]


def key_ring(client: Any) -> KeyRing:
    """The key ring ``client``'s operations use under the settings in force."""
    runtime = _runtime(client, asynchronous=False)
    return runtime.keys.ring(runtime.settings())


def forget_keys() -> None:
    """Drop every data key held in memory by this process (all key rings)."""
    forget_everywhere()


def _shred_bindings(
    runtime: Runtime, pseudonyms: Sequence[str]
) -> Generator[Any, Any, list[tuple[Binding[Any, Any, Any, Any, Any], list[str]]]]:
    """The key vault of each pseudonym's key, and the pseudonyms shredded there.

    Without regions, the base vault. With regions, the vault of the region holding each key
    (each vault is read, none other is changed); a pseudonym whose key is nowhere gets its
    tombstone in the default region's vault. Each vault call is yielded (taken or awaited).
    """
    settings = runtime.settings()
    base = _binding(runtime)
    if not settings.regions:
        return [(base, list(pseudonyms))]
    left = list(dict.fromkeys(pseudonyms))
    found: list[tuple[Binding[Any, Any, Any, Any, Any], list[str]]] = []
    for name, region in settings.regions.items():
        vault = runtime.keys.region_vault(region)
        held = {n for d in (yield vault.find(left)) for n in d.get("keyAltNames", ())}
        mine = [n for n in left if n in held]
        if mine:
            found.append((replace(base, keys=vault, cache=runtime.cache(name)), mine))
            left = [n for n in left if n not in held]
    if left:
        default = settings.default_region or next(iter(settings.regions))
        home = runtime.keys.region_vault(settings.regions[default])
        found.append((replace(base, keys=home, cache=runtime.cache(default)), left))
    return found


def shred(client: Any, pseudonyms: Sequence[str]) -> int:
    """Crypto-shred data subjects: destroy their data keys; returns the keys deleted.

    Every copy of their identity rows (the live collection, replicas, backups, exports)
    becomes unreadable; a read returns their documents without identity values. Tombstones
    record which pseudonyms were shredded (no personal data). Every key ring of this process
    drops the keys at once; other processes stop using them within ``key_cache_ttl``, or
    within ``key_recheck_ms`` when they share a cache with this one (``docs/cache.md``).
    With regions, each key is shredded in the vault of the region holding it.

    Raises:
        CacheUnavailable: a cache is configured and cannot be reached; nothing was shredded.
    """
    runtime = _runtime(client, asynchronous=False)
    ring = runtime.keys.ring(runtime.settings())
    cached = any_cache(runtime.settings())
    steps: Steps[Any] = Steps(_shred_bindings(runtime, pseudonyms))
    made: Any = steps.advance()
    while not steps.finished:
        made = steps.advance(made)
    deleted = 0
    for binding, names in steps.value:
        deleted += sync.run(key_flows.shred(ring, names, cached=cached), binding)
    forget_everywhere(pseudonyms)
    return deleted


async def shred_async(client: Any, pseudonyms: Sequence[str]) -> int:
    """``shred`` for an async client."""
    runtime = _runtime(client, asynchronous=True)
    ring = runtime.keys.ring(runtime.settings())
    cached = any_cache(runtime.settings())
    steps: Steps[Any] = Steps(_shred_bindings(runtime, pseudonyms))
    made: Any = steps.advance()
    while not steps.finished:
        made = steps.advance(await made)
    deleted = 0
    for binding, names in steps.value:
        deleted += await aio.run(key_flows.shred(ring, names, cached=cached), binding)
    forget_everywhere(pseudonyms)
    return deleted


def _split(collection: Any) -> SplitCollectionBase:
    if not isinstance(collection, SplitCollectionBase):
        raise ConfigurationError(
            f"reindex needs a model's split collection (e.g. Model._get_collection() or "
            f"Model.get_pymongo_collection()), not a {type(collection).__name__}"
        )
    return collection


def reindex(collection: Any) -> int:
    """Rewrite the blind index terms of a split collection's identity rows; the rows changed.

    Terms are bound to their database since format 2; rows written before hold terms bound to
    the collection only, which lookups match while ``legacy_blind_terms`` is on. Run this once
    per split collection with searchable fields (in every database), then turn
    ``legacy_blind_terms`` off. It can run while the application writes, and again: a row
    already re-indexed is not rewritten. Rows of erased subjects lose their terms.

    Raises:
        ConfigurationError: ``collection`` is not a split collection.
        KeyUnavailable: a data key is missing without a tombstone, or the index key is gone.
    """
    split = _split(collection)
    flow = key_flows.reindex(split._plans.context())
    return sync.run(flow, split._binding)


async def reindex_async(collection: Any) -> int:
    """``reindex`` for an async split collection (Beanie's ``get_pymongo_collection()``)."""
    split = _split(collection)
    flow = key_flows.reindex(split._plans.context())
    return await aio.run(flow, split._binding)


def rotate_master_key(
    client: Any,
    new_key: bytes | str,
    *,
    old_key: bytes | str | None = None,
    master_key: Mapping[str, Any] | None = None,
    region: str | None = None,
) -> int:
    """Re-wrap every data key under a new ``local`` master key; returns the keys re-wrapped.

    Documents are not re-encrypted: only the wrapping of the data keys in the key vault
    changes (pymongo's ``rewrap_many_data_key`` semantics). ``old_key`` defaults to the
    configured key. Afterwards, set ``PRIVATA_MASTER_KEY`` to the new key in every process.

    With ``region`` (``docs/residency.md``), the keys of that region's vault wrapped by its
    own master key (``local:<name>``) are re-wrapped by its new one: ``old_key`` defaults to
    the region's variable (``PRIVATA_MASTER_KEY_<NAME>``), which every process then sets to
    the new key. Each region's master key is rotated on its own, so no key is ever re-wrapped
    by another region's master key; without ``region`` the base vault's keys are rotated and
    regions' keys it may hold are left alone.

    Raises:
        ConfigurationError: a key is malformed, or the region's master key is not local.
        UnknownRegion: ``region`` is not configured.
        KeyUnavailable: a data key cannot be unwrapped with the old key.
    """
    runtime = _runtime(client, asynchronous=False)
    settings = current()
    regions = settings.regions or {}
    others = frozenset(region_provider(n, r) for n, r in regions.items() if n != region)
    if region is None:
        provider = "local"
        binding = _binding(runtime)
        old = (
            master_key_of(old_key, "old_key")
            if old_key is not None
            else resolve_master_key(settings, embedded=is_embedded(runtime.keys.client))
        )
        if old is None:
            raise ConfigurationError("rotate_master_key needs the current local master key")
    else:
        chosen = regions.get(region)
        if chosen is None:
            raise UnknownRegion(
                "rotate_master_key names a region that is not configured; configured "
                f"regions: {', '.join(regions) or 'none'}"
            )
        provider = region_provider(region, chosen)
        if provider.partition(":")[0] != "local":
            raise ConfigurationError(
                f"region '{region}' wraps its keys with '{provider}': rotate that master key "
                "in its KMS (rotate_master_key re-wraps local master keys)"
            )
        variable = region_key_env(region, chosen)
        old = master_key_of(
            old_key if old_key is not None else os.environ.get(variable, ""), variable
        )
        binding = replace(
            _binding(runtime), keys=runtime.keys.region_vault(chosen), cache=runtime.cache(region)
        )
        others |= {"local", settings.kms_provider}  # the base keys of a vault it shares
    new = master_key_of(new_key, "new_key")
    ring = runtime.keys.ring(settings)
    flow = key_flows.rotate(
        ring,
        {provider: {"key": old}},
        {provider: {"key": new}},
        master_key=master_key,
        cached=any_cache(settings),
        provider=provider,
        others=others,
    )
    count = sync.run(flow, binding)
    forget_everywhere()
    return count


def _audited_target(target: Any) -> tuple[Any, Any]:
    """``(client, real database)`` of ``unseal_row``'s target, where its record goes.

    The target is a database, or a client whose connection string names a default database.

    Raises:
        ConfigurationError: a client without a default database.
    """
    if isinstance(target, DatabaseBase):
        return target.client, target.inner
    kind = type(target)
    if hasattr(kind, "list_collection_names") and not hasattr(kind, "list_database_names"):
        return target.client, target  # a real database (its attributes are collections)
    try:
        database = real_client(target).get_default_database()
    except Exception:
        raise ConfigurationError(
            "unseal_row records who read the row in the audit trail of a database: pass the "
            "database (client[name]) rather than a client without a default database"
        ) from None
    return target, database


def _wrong_twin(other: str) -> ConfigurationError:
    return ConfigurationError(
        f"this database's connection is the other twin's (sync or async): use {other}, so that "
        "the unseal is recorded in its audit trail"
    )


def _unsealed(
    runtime: Runtime, access: AccessContext, row: Mapping[str, Any], plain: Mapping[str, Any]
) -> tuple[AuditRecord, ...]:
    return records_for(
        at=runtime.clock.now(),
        access=access,
        operation=UNSEAL_OPERATION,
        model=UNSEAL_OPERATION,
        subjects=[str(row["_id"])],
        fields=plain.keys(),
        count=1,
    )


def unseal_row(target: Any, row: Mapping[str, Any]) -> dict[str, Any]:
    """The identity values of one raw identity row, decrypted (for operators and tests).

    The read is audited like any other: before the values are returned, a record (operation
    ``unseal``, the row's pseudonym, the names of the fields decrypted) is appended to the
    audit trail of ``target`` — a database (privata or real), or a client whose connection
    string names one — under the access context in force. If the record cannot be stored,
    nothing is returned (``AuditUnavailable``).

    Raises:
        KeyUnavailable: the subject's data key is missing (shredded) or unusable.
        AuditUnavailable: the audit record could not be stored.
        MissingAccessContext: strict mode, and no access context was declared.
        ConfigurationError: a client without a default database, or an async connection.
    """
    if row.get(SEALED_FIELD) is None:
        return {}
    client, database = _audited_target(target)
    runtime = _audit_runtime(client, asynchronous=False)
    access = runtime.access()  # strict mode refuses before anything is decrypted
    trail = runtime.trails.of(database, runtime.settings())
    if trail is not None and not isinstance(trail, AuditTrail):
        raise _wrong_twin("unseal_row_async")
    flow = key_flows.unseal_row(runtime.keys.ring(runtime.settings()), row)
    plain = sync.run(flow, _binding(runtime))
    if trail is not None:
        trail.append(_unsealed(runtime, access, row, plain))
    return plain


async def unseal_row_async(target: Any, row: Mapping[str, Any]) -> dict[str, Any]:
    """``unseal_row`` for an async database or client; audited the same way."""
    if row.get(SEALED_FIELD) is None:
        return {}
    client, database = _audited_target(target)
    runtime = _audit_runtime(client, asynchronous=True)
    access = runtime.access()
    trail = runtime.trails.of(database, runtime.settings())
    if trail is not None and not isinstance(trail, AsyncAuditTrail):
        raise _wrong_twin("unseal_row")
    flow = key_flows.unseal_row(runtime.keys.ring(runtime.settings()), row)
    plain = await aio.run(flow, _binding(runtime))
    if trail is not None:
        await trail.append(_unsealed(runtime, access, row, plain))
    return plain
