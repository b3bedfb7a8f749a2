"""Process-wide settings, set with ``privata_mongo.configure``.

Settings are a frozen value replaced as a whole, so a reader never sees half of an update;
every operation reads the settings in force when it starts, so a change applies to every later
operation, on collections and connections already in use too. The exception is the *storage
layout* (``LAYOUT_SETTINGS``: classification, name defaults, identity suffix, encryption,
searchable names): it decides where each field of every stored document lives, so once a
model's layout has been compiled it cannot change in the running process (``configure``
raises ``ConfigurationError``); set it at start-up, before the first query. Per-model choices
(``meta = {"privacy": {...}}``) take precedence over these.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from privata_mongo.core.audit import MAX_SUBJECTS, AccessContext
from privata_mongo.core.classify import DEFAULT_PII_NAMES, DEFAULT_SEARCHABLE_NAMES, Policy
from privata_mongo.core.rights.consent import DEFAULT_CONSENT_BASES
from privata_mongo.errors import ConfigurationError

__all__ = [
    "LAYOUT_SETTINGS",
    "Region",
    "Settings",
    "cached",
    "configure",
    "current",
    "layout_policy",
    "parse_cache_uri",
    "region_cache",
]

LAYOUT_SETTINGS = (
    "classification",
    "name_defaults",
    "identity_suffix",
    "encryption",
    "searchable_names",
)
"""Settings that decide where stored data lives: fixed once a model's layout is compiled."""


@dataclass(frozen=True, slots=True)
class Region:
    """Where the identity data and data keys of one region's data subjects live.

    Attributes:
        identity_client: the client of the region's identity store (pymongo, mongomock, or
            an async client for Beanie); identity collections keep their names there.
        identity_database: the database of the identity collections (default: the name of
            the application's database).
        key_vault_client: the client of the region's key vault (default: ``identity_client``).
        key_vault_namespace: ``database.collection`` of the region's key vault.
        kms_provider: the provider the region's new data keys are wrapped with; by default
            a local key of its own, ``local:<name>``, read from ``master_key_env``. A remote
            provider (``aws:eu`` …) takes its credentials from ``kms_providers``.
        master_key: that provider's master key document (not used for a local key).
        master_key_env: the environment variable holding the region's local master key
            (default ``PRIVATA_MASTER_KEY_<NAME>``), never a value in code.
        clinical_client: the client of the region's own clinical store (default ``None``: the
            region's subjects' clinical rows stay on the application's server); clinical
            collections keep their names there.
        clinical_database: the database of the region's clinical collections (default: the
            name of the application's database).
        cache: the region's own cache of identity rows and wrapped keys (``"memory://"`` or
            ``"redis://host:port/db"``, ``docs/cache.md``): its subjects' entries are cached
            there and nowhere else. Without one, the region uses the deployment's cache if
            that is the in-process ``memory://``, and no cache if it is a shared Redis (which
            runs in some region: ``region_cache``).
    """

    identity_client: Any
    identity_database: str | None = None
    key_vault_client: Any = None
    key_vault_namespace: str = "encryption.__keyVault"
    kms_provider: str | None = None
    master_key: Mapping[str, Any] | None = None
    master_key_env: str | None = None
    clinical_client: Any = None
    clinical_database: str | None = None
    cache: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``configure`` can change.

    Attributes:
        classification: ``"Model.field"`` or ``"field"`` → ``True`` (identity) / ``False``.
        name_defaults: field names treated as identity data by default.
        identity_suffix: identity collection name = clinical name + this suffix.
        scan_limit: most identity rows one query may read into the process.
        batch_size: clinical documents joined per identity read.
        encryption: encrypt identity rows (CSFLE format, see ``docs/encryption.md``); turning
            it off is for tests of the storage layout only.
        searchable_names: identity field names that get a blind index by default.
        key_vault_namespace: ``database.collection`` of the key vault.
        key_vault_client: a separate client holding the key vault (default: the app's client).
        kms_providers: libmongocrypt's ``kms_providers`` for ``aws``/``azure``/``gcp``/``kmip``
            (passed through); the ``local`` key always comes from the environment.
        kms_provider: the provider new data keys are wrapped with.
        master_key: that provider's master key document (not used for ``local``).
        kms_tls_options: TLS options per KMS provider, as pymongo's ``kms_tls_options``
            (``{"aws": {"tlsCAFile": ...}}``: ``tlsCAFile``, ``tlsCertificateKeyFile``,
            ``tlsCertificateKeyFilePassword``, ``tlsCRLFile``).
        key_cache_ttl: seconds a data key stays in memory after it was read.
        key_cache_size: about how many subjects' data keys stay in memory (about 1.1 KiB
            each): past it the least recently used go first, except those a running
            operation still holds (``core.crypto.holds``).
        cache: where identity rows (as stored, encrypted) and wrapped data keys are cached
            (``docs/cache.md``): ``None`` (the default: no cache), ``"memory://"`` (this
            process) or ``"redis://host:port/db"`` (shared by every process naming it).
        cache_ttl: seconds a cached row or key document lives.
        key_recheck_ms: with a cache, how long a data key held in memory is used before it
            is checked against the cache again; an erasure in another process sharing the
            cache stops this one from decrypting the subject within this bound.
        audit: record every operation on personal data (see ``docs/audit.md``).
        audit_collection: the audit collection's name, in the database of the data, when no
            ``audit_sink`` is given.
        audit_sink: where records go instead: an ``AuditSink``/``AsyncAuditSink`` (for
            instance ``CollectionAuditSink`` over a collection on another server).
        audit_strict: refuse (``MissingAccessContext``) to touch personal data with no access
            context and no ``default_access``.
        default_access: the access context of code that declares none (batch jobs …).
        audit_max_subjects: most pseudonyms per audit record (larger results are chunked).
        audit_buffer: buffered mode: records kept in memory and appended this many at a time
            (0, the default: appended before every result; see ``docs/audit.md``).
        write_lease_ms: how long an update touching identity fields holds its documents'
            write lease; a writer that crashed holds it no longer than this (see
            ``docs/reliability.md``).
        write_wait_ms: how long such an update waits for documents another writer holds
            before it fails with a write conflict; keep it above ``write_lease_ms``.
        legacy_blind_terms: lookups on searchable fields also match blind index terms of the
            first format (not bound to the database), so rows written by earlier versions are
            found; turn it off once every identity collection was re-indexed
            (``privata_mongo.encryption.reindex``, see ``docs/encryption.md``).
        erasure_collection: the erasure log's collection (``docs/rights.md``, Erasure): one
            entry per erased subject, kept apart from the data so that ``replay_erasures``
            can re-apply every erasure after a backup of the data is restored.
        erasure_database: the erasure log's database (default: the database of the first
            served model); name another one to keep the log out of the data's backups.
        erasure_client: a separate client holding the erasure log (default: the app's
            client; sync for ``Rights``, async for ``AsyncRights``).
        transactions: ``"auto"`` (the default): a connection probes once whether its server
            really runs multi-document transactions (``runtime.transactions``: a replica set
            in ``hello`` *and* a probe transaction that is aborted and proven rolled back);
            ``"off"``: never probe, never use them. The writes still run the crash-safety
            protocol either way (``docs/reliability.md``, *Transactions*).
        consent_collection: the consent history's name, in the database of the data (see
            ``docs/rights.md``, Consent); only privata writes it.
        consent_legal_bases: the legal bases that are consent (GDPR Art. 6(1)(a), 9(2)(a)):
            an operation declaring one of them sees only the subjects consenting to its
            purpose (compared without case).
        regions: named regions (``Region``), each with its own identity store and key vault
            (``docs/residency.md``); ``None`` (the default): one region, as before.
        default_region: the region of a subject the resolver does not place.
        region_field: a field of the document deciding its subject's region (``country``).
        region_values: the region of each value of ``region_field`` (a value that is a
            region's name needs no entry).
        region_resolver: ``document → region name`` (or ``None`` for the default), instead of
            ``region_field``.
    """

    classification: Mapping[str, bool] = field(default_factory=dict)
    name_defaults: frozenset[str] = DEFAULT_PII_NAMES
    identity_suffix: str = "__identity"
    scan_limit: int = 10_000
    batch_size: int = 1_000
    encryption: bool = True
    searchable_names: frozenset[str] = DEFAULT_SEARCHABLE_NAMES
    key_vault_namespace: str = "encryption.__keyVault"
    key_vault_client: Any = None
    kms_providers: Mapping[str, Any] | None = None
    kms_provider: str = "local"
    master_key: Mapping[str, Any] | None = None
    kms_tls_options: Mapping[str, Mapping[str, Any]] | None = None
    key_cache_ttl: float = 60.0
    key_cache_size: int = 10_000
    cache: str | None = None
    cache_ttl: float = 300.0
    key_recheck_ms: int = 1_000
    audit: bool = True
    audit_collection: str = "privata_audit"
    audit_sink: Any = None
    audit_strict: bool = False
    default_access: AccessContext | None = None
    audit_max_subjects: int = MAX_SUBJECTS
    audit_buffer: int = 0
    write_lease_ms: int = 15_000
    write_wait_ms: int = 30_000
    legacy_blind_terms: bool = True
    erasure_collection: str = "privata_erasures"
    erasure_database: str | None = None
    erasure_client: Any = None
    transactions: Literal["auto", "off"] = "auto"
    consent_collection: str = "privata_consents"
    consent_legal_bases: frozenset[str] = DEFAULT_CONSENT_BASES
    regions: Mapping[str, Region] | None = None
    default_region: str | None = None
    region_field: str | None = None
    region_values: Mapping[Any, str] = field(default_factory=dict)
    region_resolver: Callable[[Mapping[str, Any]], str | None] | None = None

    def policy(self) -> Policy:
        """The classification policy these settings describe."""
        return Policy(
            mapping=dict(self.classification),
            name_defaults=self.name_defaults,
            identity_suffix=self.identity_suffix,
            scan_limit=self.scan_limit,
            sealed=self.encryption,
            searchable_defaults=self.searchable_names,
        )


_lock = threading.Lock()
_current = Settings()
_compiled: Settings | None = None  # the settings the first compiled layout was read from


def current() -> Settings:
    """The settings in force."""
    return _current


def layout_policy(settings: Settings) -> Policy:
    """The classification policy of ``settings``, for compiling a model's storage layout.

    From then on the layout settings of the process are fixed (see the module docstring).
    """
    global _compiled
    with _lock:
        if _compiled is None:
            _compiled = settings
    return settings.policy()


def _check_layout(changes: Mapping[str, Any]) -> None:
    if _compiled is None:
        return
    changed = sorted(
        name
        for name in LAYOUT_SETTINGS
        if name in changes and changes[name] != getattr(_compiled, name)
    )
    if changed:
        raise ConfigurationError(
            f"{', '.join(changed)} decide(s) where stored documents keep each field and cannot "
            "change once a model has been used in this process (documents already stored "
            "would no longer be found); configure them at start-up, before the first query, "
            "and restart the process to change them"
        )


def _check_consent(changes: dict[str, Any]) -> None:
    name = changes.get("consent_collection", "x")
    if not isinstance(name, str) or not name:
        raise ConfigurationError("consent_collection must be a non-empty collection name")
    if "consent_legal_bases" in changes:
        bases = changes["consent_legal_bases"]
        if (
            isinstance(bases, str)
            or not isinstance(bases, Iterable)
            or not all(isinstance(b, str) and b.strip() for b in bases)
        ):
            raise ConfigurationError(
                "consent_legal_bases must be a collection of legal basis names, "
                "e.g. {'consent', 'art6_1a', 'art9_2a'}"
            )
        changes["consent_legal_bases"] = frozenset(bases)


def _check_regions(merged: Mapping[str, Any]) -> None:
    regions = merged["regions"]
    if regions is None:
        for name in ("default_region", "region_field", "region_resolver"):
            if merged[name] is not None:
                raise ConfigurationError(f"{name} needs regions: configure regions={{...}} too")
        return
    if not isinstance(regions, Mapping) or not regions:
        raise ConfigurationError(
            "regions must map region names to privata_mongo.Region(identity_client=...)"
        )
    for name, region in regions.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigurationError("region names must be identifiers, e.g. 'eu' or 'us'")
        if not isinstance(region, Region):
            raise ConfigurationError(
                f"regions['{name}'] must be a privata_mongo.Region(identity_client=...)"
            )
        database, _, collection = region.key_vault_namespace.partition(".")
        if not database or not collection:
            raise ConfigurationError(
                f"regions['{name}'].key_vault_namespace must be 'database.collection'"
            )
        if region.clinical_database is not None and region.clinical_client is None:
            raise ConfigurationError(
                f"regions['{name}'].clinical_database needs clinical_client: name the client "
                "of the region's clinical store too"
            )
        if region.cache is not None:
            if not isinstance(region.cache, str):
                raise ConfigurationError(
                    f"regions['{name}'].cache must be None, 'memory://' or 'redis://host:port/db'"
                )
            parse_cache_uri(region.cache)
    default = merged["default_region"]
    if default not in regions:
        raise ConfigurationError(
            f"default_region must name one of the configured regions: {', '.join(regions)}"
        )
    unknown = sorted({v for v in merged["region_values"].values() if v not in regions})
    if unknown:
        raise ConfigurationError(
            f"region_values names region(s) {unknown} that are not configured; configured "
            f"regions: {', '.join(regions)}"
        )
    if merged["region_resolver"] is not None and not callable(merged["region_resolver"]):
        raise ConfigurationError("region_resolver must be a callable: document → region name")


def parse_cache_uri(uri: str) -> tuple[str, dict[str, Any]]:
    """``("memory", {})`` or ``("redis", aiocache's RedisCache options)`` for ``uri``.

    Raises:
        ConfigurationError: not ``memory://`` or ``redis://[:password@]host[:port][/db]``.
    """
    parts = urlsplit(uri)
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(
            "the cache URI's port must be a number, e.g. redis://127.0.0.1:6379/0"
        ) from None
    if parts.scheme == "memory":
        return "memory", {}
    if parts.scheme == "redis":
        database = parts.path.strip("/") or "0"
        if not database.isdigit():
            raise ConfigurationError(
                f"the cache URI's database must be a number, e.g. redis://127.0.0.1:6379/0 "
                f"(got '/{database}')"
            )
        options: dict[str, Any] = {
            "endpoint": parts.hostname or "127.0.0.1",
            "port": port or 6379,
            "db": int(database),
        }
        if parts.password:
            options["password"] = unquote(parts.password)
        return "redis", options
    raise ConfigurationError(
        "cache must be 'memory://' or 'redis://host:port/db' (or None for no cache); "
        f"the scheme '{parts.scheme}' is not known"
    )


def region_cache(settings: Settings, name: str) -> tuple[str | None, str]:
    """The cache URI of region ``name``'s entries, and the scope naming its instance.

    The region's own ``Region.cache`` (scope: the region's name, so even two ``memory://``
    caches are two); else the deployment's ``cache`` if it is ``memory://`` (in this process,
    which runs where it runs anyway; scope ``""``, the deployment's own instance); else none:
    a shared Redis sits in one region, and another region's ciphertext and wrapped keys must
    not be copied there.
    """
    region = (settings.regions or {}).get(name)
    if region is not None and region.cache is not None:
        return region.cache, name
    if settings.cache is not None and parse_cache_uri(settings.cache)[0] == "memory":
        return settings.cache, ""
    return None, ""


def cached(settings: Settings) -> bool:
    """Whether anything is cached: the deployment's cache, or some region's own."""
    return settings.cache is not None or any(
        r.cache is not None for r in (settings.regions or {}).values()
    )


def _check_cache(changes: Mapping[str, Any]) -> None:
    uri = changes.get("cache")
    if uri is not None:
        if not isinstance(uri, str):
            raise ConfigurationError(
                "cache must be None, 'memory://' or 'redis://host:port/db', "
                "e.g. configure(cache='redis://127.0.0.1:6379/0')"
            )
        parse_cache_uri(uri)
    ttl = changes.get("cache_ttl", 1.0)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
        raise ConfigurationError("cache_ttl must be a positive number of seconds")


def configure(**changes: Any) -> Settings:
    """Change settings for the whole process; returns the new settings.

    Every later operation uses them, on connections and collections already in use too.
    ``LAYOUT_SETTINGS`` are the exception: they are fixed once a model has been used.

    Raises:
        ConfigurationError: an unknown setting, a value of the wrong shape, or a change of a
            layout setting after a model's layout was compiled.
    """
    global _current
    known = {f.name for f in fields(Settings)}
    unknown = set(changes) - known
    if unknown:
        raise ConfigurationError(
            f"unknown settings {sorted(unknown)}; known settings: {sorted(known)}"
        )
    for name in (
        "scan_limit",
        "batch_size",
        "audit_max_subjects",
        "write_lease_ms",
        "write_wait_ms",
        "key_recheck_ms",
        "key_cache_size",
    ):
        value = changes.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigurationError(f"{name} must be a positive integer")
    if "searchable_names" in changes:
        searchable = changes["searchable_names"]
        if isinstance(searchable, str) or not isinstance(searchable, Iterable):
            raise ConfigurationError("searchable_names must be a collection of field names")
        changes["searchable_names"] = frozenset(searchable)
    if "name_defaults" in changes:
        names = changes["name_defaults"]
        if isinstance(names, str) or not isinstance(names, Iterable):
            raise ConfigurationError("name_defaults must be a collection of field names")
        changes["name_defaults"] = frozenset(names)
    if "classification" in changes:
        mapping = changes["classification"]
        if not isinstance(mapping, Mapping) or not all(
            isinstance(v, bool) for v in mapping.values()
        ):
            raise ConfigurationError(
                "classification must map 'Model.field' or 'field' to True (identity) or False"
            )
    buffer = changes.get("audit_buffer", 0)
    if not isinstance(buffer, int) or isinstance(buffer, bool) or buffer < 0:
        raise ConfigurationError("audit_buffer must be a non-negative integer")
    if changes.get("transactions", "auto") not in ("auto", "off"):
        raise ConfigurationError('transactions must be "auto" or "off"')
    if not isinstance(changes.get("legacy_blind_terms", True), bool):
        raise ConfigurationError("legacy_blind_terms must be True or False")
    if not isinstance(changes.get("default_access"), (AccessContext, type(None))):
        raise ConfigurationError("default_access must be a privata_mongo.AccessContext or None")
    if not isinstance(changes.get("audit_collection", "x"), str) or not changes.get(
        "audit_collection", "x"
    ):
        raise ConfigurationError("audit_collection must be a non-empty collection name")
    if not isinstance(changes.get("erasure_collection", "x"), str) or not changes.get(
        "erasure_collection", "x"
    ):
        raise ConfigurationError("erasure_collection must be a non-empty collection name")
    erasure_database = changes.get("erasure_database")
    if erasure_database is not None and (
        not isinstance(erasure_database, str) or not erasure_database
    ):
        raise ConfigurationError(
            "erasure_database must be a database name, or None for the data's database"
        )
    sink = changes.get("audit_sink")
    if sink is not None and not callable(getattr(sink, "append", None)):
        raise ConfigurationError("audit_sink must have an append(records) method")
    ttl = changes.get("key_cache_ttl", 1.0)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
        raise ConfigurationError("key_cache_ttl must be a positive number of seconds")
    database, _, collection = str(changes.get("key_vault_namespace", "a.b")).partition(".")
    if not database or not collection:
        raise ConfigurationError(
            "key_vault_namespace must be 'database.collection', e.g. 'encryption.__keyVault'"
        )
    if changes.get("kms_providers") is not None and not isinstance(
        changes["kms_providers"], Mapping
    ):
        raise ConfigurationError("kms_providers must map provider names to their options")
    tls = changes.get("kms_tls_options")
    if tls is not None and not (
        isinstance(tls, Mapping) and all(isinstance(v, Mapping) for v in tls.values())
    ):
        raise ConfigurationError("kms_tls_options must map provider names to TLS options")
    _check_consent(changes)
    _check_regions({**{f.name: getattr(_current, f.name) for f in fields(Settings)}, **changes})

    _check_cache(changes)
    suffix = changes.get("identity_suffix", "__identity")
    if not isinstance(suffix, str) or not suffix:
        raise ConfigurationError("identity_suffix must be a non-empty string")
    _check_layout(changes)
    with _lock:
        _current = replace(_current, **changes)
        return _current
