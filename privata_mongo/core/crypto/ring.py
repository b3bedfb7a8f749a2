"""CSFLE-format encryption of identity rows over an in-memory key ring.

Values are sealed with libmongocrypt: BSON binary subtype 6,
``AEAD_AES_256_CBC_HMAC_SHA_512-Random``, exactly what MongoDB's own drivers write and read. The
ring drives libmongocrypt's contexts itself (``machine.run``, the loop of pymongocrypt's
``ExplicitEncrypter``), so it never does I/O: key lookups are answered from the key documents
held here (flows yield ``LoadKeys``/``StoreKeys`` and hand the documents to ``KeyRing.add``),
and the operations that may need a remote KMS — ``new_key``, ``seal``, ``open``,
``index_key``, ``rewrap`` — are flows that yield its network traffic as requests. Under the
``local`` master key they yield nothing: wrapping and unwrapping happen in the process.

One data key per data subject, ``keyAltNames: [pseudonym]``; the blind index key is derived from
one more data key (``INDEX_KEY_NAME``), so the key vault holds every secret and a master-key
rotation covers all of them.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bson
from bson.binary import UUID_SUBTYPE, Binary, UuidRepresentation
from bson.codec_options import CodecOptions
from pymongocrypt.errors import MongoCryptError
from pymongocrypt.mongocrypt import MongoCrypt
from pymongocrypt.options import DataKeyOpts, ExplicitEncryptOpts, MongoCryptOptions
from pymongocrypt.synchronous.state_machine import MongoCryptCallback

from privata_mongo.core.crypto import aead, holds, machine
from privata_mongo.core.crypto.blind import INDEX_KEY_NAME
from privata_mongo.core.ops import Flow
from privata_mongo.core.pseudonym import is_pseudonym
from privata_mongo.errors import ConfigurationError, KeyUnavailable

__all__ = [
    "ALGORITHM",
    "KEY_CHECK_NAME",
    "KEY_ID_NAMESPACE",
    "KeyRing",
    "derived_secret",
    "key_document",
    "key_id_bytes",
    "key_uuid",
    "rewrap",
    "rewrap_to",
]

ALGORITHM = "AEAD_AES_256_CBC_HMAC_SHA_512-Random"
"""The CSFLE algorithm of every sealed identity value."""

KEY_CHECK_NAME = "privata:key-check"
"""``keyAltName`` of the data key that proves a master key is the key vault's (``check``)."""

_DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
_INDEX_LABEL = b"privata blind index key v1"
_CHECK_LABEL = b"privata master key check v1"
_ON_DEMAND = ("aws", "azure", "gcp")

Document = dict[str, Any]
_KEY_CODEC: CodecOptions[Any] = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)


KEY_ID_NAMESPACE = uuid.UUID("6f1c7f8e-2b4a-5d3e-9a61-0c2f4b8d7e15")
"""The UUID namespace of data key ids (``key_uuid``)."""


def key_uuid(name: str) -> uuid.UUID:
    """The ``_id`` of the data key named ``name``: a UUID (version 5) of the name.

    A key's ``_id`` is in clear in every value it seals, and its name (a pseudonym) is the
    ``_id`` of the identity row that value sits in, so deriving one from the other discloses
    nothing. What it gives: two keys can never be made for one name, on any backend, by the
    ``_id`` index alone (the key vault's unique index on ``keyAltNames`` says the same again on
    a server; an embedded store, which would check it by scanning every key on every insert,
    does without it). The key material is not bound to its ``_id``: libmongocrypt looks a key up
    by it and unwraps the material alone.
    """
    return uuid.uuid5(KEY_ID_NAMESPACE, name)


def key_id_bytes(value: Any) -> bytes:
    """The 16 bytes of a data key ``_id`` (a subtype-4 ``Binary`` or a decoded ``uuid.UUID``)."""
    return value.bytes if isinstance(value, uuid.UUID) else bytes(value)


def key_document(raw: bytes) -> Document:
    """A key document from the BSON ``KeyRing.stored`` gives (``_id`` as a ``uuid.UUID``)."""
    document: Document = bson.decode(raw, codec_options=_KEY_CODEC)
    return document


class _Codec(MongoCryptCallback):  # type: ignore[misc]
    """What pymongocrypt still asks of a callback when the ring drives the contexts: BSON.

    Every I/O callback is unused (``machine.run`` answers those states), so each one fails.
    """

    def kms_request(self, kms_context: Any) -> None:
        raise MongoCryptError("KMS requests are yielded by the ring's flows")

    def collection_info(self, database: str, filter: bytes) -> None:
        raise MongoCryptError("automatic encryption is not used; no collection info")

    def mark_command(self, database: str, cmd: bytes) -> bytes:
        raise MongoCryptError("automatic encryption is not used; nothing to mark")

    def fetch_keys(self, filter: bytes) -> list[bytes]:
        raise MongoCryptError("keys are served from the ring's memory")

    def insert_data_key(self, data_key: bytes) -> Any:
        raise MongoCryptError("new keys are stored by the key flows")

    def bson_encode(self, doc: Mapping[str, Any]) -> bytes:
        return bson.encode(doc)

    def close(self) -> None:
        return None


_CODEC = _Codec()


_UNWRAPPED_PER_INSTANCE = 512
"""Data keys one libmongocrypt instance unwraps before the ring replaces it.

libmongocrypt keeps unwrapped keys in a list that every new context scans (to evict expired
entries and to look its key up), so with one instance per process a context cost grew with the
number of subjects seen within the TTL: 0.6 ms at 1,000 keys, 2.8 ms at 8,000, ~15 ms at 50,000.
A fresh instance every this many keys keeps it flat. The price: a key needed again after the
switch is unwrapped again (one KMS request with a remote master key), once per instance.
"""


_BSON_DOCUMENT = 0x03


@dataclass(slots=True)
class _Entry:
    raw: bytes
    key_id: bytes
    names: tuple[str, ...]
    loaded: float
    provider: str | None = None
    wrapped: bytes | None = None
    material: bytes | None = None
    """The unwrapped key, for ``open`` (``local`` master keys only), dropped after the TTL."""
    unwrapped: float = 0.0
    subject: bool = False
    """A data subject's key (named by a pseudonym): evictable, and counted in ``size``."""


def _local_key(provider: str | None, kms_providers: Mapping[str, Any]) -> bytes | None:
    """The 96 bytes of a ``local`` (or named ``local:…``) master key, if that is the provider."""
    if provider is None or provider.partition(":")[0] != "local":
        return None
    key = (kms_providers.get(provider) or {}).get("key")
    if isinstance(key, str):
        key = base64.b64decode(key)
    return bytes(key) if isinstance(key, bytes | bytearray) else None


class KeyRing:
    """Data key documents in memory, and the libmongocrypt instance that uses them.

    Key documents are kept wrapped (as stored in the key vault); an operation loads a key
    again when it was loaded more than ``ttl`` seconds ago (``missing``), and then uses what it
    holds until it ends, even if the TTL runs out meanwhile. libmongocrypt keeps unwrapped key
    material for the same time (so a remote KMS is asked once per data key and TTL, not per
    document). ``forget`` drops keys at once (erasure), including libmongocrypt's own cache.

    The ring holds about ``size`` subjects' keys: one data key per subject means a process
    that reads every subject once would otherwise keep a key for each of them (about 1.1 KiB
    apiece) for as long as it runs. When a key is added past ``size``, the subjects' keys used
    longest ago go first (loaded, found by ``missing`` or confirmed), but never one an
    operation running under ``holds.holding`` still holds: it uses the keys it was handed
    right after, and must find them here. So the ring holds at most ``size`` subjects' keys,
    or the keys of the operations running at that moment if those are more. The library's own
    keys (the blind index key, the audit chain keys) are neither evicted nor counted. An
    evicted key is loaded again when next needed.

    Args:
        kms_providers: libmongocrypt's ``kms_providers`` (``{"local": {"key": <96 bytes>}}``,
            or ``aws``/``azure``/``gcp``/``kmip`` credentials).
        provider: the provider new data keys are wrapped with.
        master_key: the provider's master key document for new data keys (not for ``local``).
        ttl: seconds a loaded key stays usable without being read again.
        clock: monotonic seconds, for the TTL.
        size: how many subjects' keys the ring holds before it evicts the oldest.

    Raises:
        ConfigurationError: a cloud provider with empty credentials (libmongocrypt would look
            them up on demand, over the network, which the core cannot do).
    """

    def __init__(
        self,
        kms_providers: Mapping[str, Any],
        *,
        provider: str = "local",
        master_key: Mapping[str, Any] | None = None,
        ttl: float = 60.0,
        clock: Callable[[], float],
        size: int = 10_000,
    ) -> None:
        for name in _ON_DEMAND:
            if name in kms_providers and not kms_providers[name]:
                raise ConfigurationError(
                    f"kms_providers['{name}'] is empty: credentials are not looked up on "
                    "demand; configure them explicitly (see docs/encryption.md)"
                )
        self.kms_providers = dict(kms_providers)
        self.provider = provider
        self.master_key = dict(master_key) if master_key else None
        self.ttl = ttl
        self.size = size
        self._clock = clock
        self._lock = threading.Lock()
        self._by_name: dict[str, _Entry] = {}
        self._by_id: dict[bytes, _Entry] = {}
        self._index_keys: dict[bytes, tuple[bytes, float]] = {}
        # Entries holding unwrapped material, oldest unwrap first: the expired ones are dropped
        # from the front, so unwrapped keys live the TTL, as in libmongocrypt's own cache.
        self._unwrapped_keys: dict[bytes, _Entry] = {}
        self._subjects = 0  # subjects' keys in ``_by_id``
        self._pins: dict[bytes, int] = {}  # key id → holds of running operations pinning it
        self._crypt = self._new_crypt()
        self._unwrapped = 0  # keys served to ``self._crypt`` so far
        self.checked = False
        """Whether the master key was verified against the key vault (``check``)."""

    def _new_crypt(self) -> MongoCrypt:
        options = MongoCryptOptions(
            self.kms_providers, key_expiration_ms=max(1, int(self.ttl * 1000))
        )
        return MongoCrypt(options, _CODEC)

    def _run(self, start: Callable[[MongoCrypt], Any]) -> Flow[bytes | None]:
        """Run the libmongocrypt context ``start`` opens; key lookups come from this ring."""
        # The flow holds the instance for as long as its context lives: ``forget`` may replace
        # it meanwhile, and a context must not outlive the instance it was made by.
        with self._lock:
            if self._unwrapped >= _UNWRAPPED_PER_INSTANCE:
                self._crypt, self._unwrapped = self._new_crypt(), 0
            crypt = self._crypt

        def serve(filter: Mapping[str, Any]) -> list[bytes]:
            raws = self.raw_keys(filter)
            with self._lock:
                if crypt is self._crypt:
                    self._unwrapped += len(raws)
            return raws

        out: bytes | None = yield from machine.run(start(crypt), serve)
        return out

    # -- the cache ------------------------------------------------------------------------------

    def missing(self, names: Iterable[str], within: float | None = None) -> list[str]:
        """Which of ``names`` are not in memory (never loaded, or older than the TTL).

        ``within`` (seconds, below the TTL) asks for the keys not loaded or confirmed that
        recently instead: those a flow checks against the shared cache before using them.
        """
        now = self._clock()
        limit = self.ttl if within is None else min(within, self.ttl)
        hold = holds.current()
        out = []
        with self._lock:
            for name in dict.fromkeys(names):
                entry = self._by_name.get(name)
                if entry is None or now - entry.loaded > limit:
                    out.append(name)
                else:
                    self._use(entry, hold)  # the caller goes on to use it
        return out

    def _use(self, entry: _Entry, hold: holds.Hold | None) -> None:
        """Count ``entry`` as used now, and pin it for the running operation (under the lock).

        ``_by_id`` is kept in the order of use, least recent first, which is the order of
        eviction.
        """
        if self._by_id.get(entry.key_id) is entry:
            del self._by_id[entry.key_id]
            self._by_id[entry.key_id] = entry
        if hold is not None and hold.take(self, entry.key_id):
            self._pins[entry.key_id] = self._pins.get(entry.key_id, 0) + 1

    def release(self, keys: Iterable[bytes]) -> None:
        """Unpin ``keys`` for an operation that is done with them (``holds.Pinned``).

        Nothing is evicted here: the ring shrinks back to its size when a key is next added.
        """
        with self._lock:
            for key in keys:
                count = self._pins.get(key, 0) - 1
                if count > 0:
                    self._pins[key] = count
                else:
                    self._pins.pop(key, None)

    @property
    def held_subjects(self) -> int:
        """How many data subjects' keys the ring holds now."""
        return self._subjects

    def stored(self, name: str) -> bytes | None:
        """The key document ``name`` as held: BSON of the key vault's document, still wrapped."""
        entry = self._by_name.get(name)
        return None if entry is None else entry.raw

    def confirm(self, names: Iterable[str]) -> None:
        """Count the held keys ``names`` as loaded now: the shared cache holds them unchanged.

        Their unwrapped material is kept (it expires on its own clock), so a confirmation
        costs no unwrapping and no KMS request.
        """
        now = self._clock()
        hold = holds.current()
        with self._lock:
            for name in names:
                entry = self._by_name.get(name)
                if entry is not None:
                    entry.loaded = now
                    self._use(entry, hold)

    def add(self, documents: Iterable[Mapping[str, Any]]) -> None:
        """Hold key documents as read from (or written to) the key vault."""
        now = self._clock()
        hold = holds.current()
        with self._lock:
            for document in documents:
                raw = bson.encode(document, codec_options=_KEY_CODEC)
                key_id = key_id_bytes(document["_id"])
                master = document.get("masterKey") or {}
                material = document.get("keyMaterial")
                names = tuple(document.get("keyAltNames", ()))
                entry = _Entry(
                    raw,
                    key_id,
                    names,
                    now,
                    provider=master.get("provider") if isinstance(master, Mapping) else None,
                    wrapped=bytes(material) if isinstance(material, bytes) else None,
                    subject=any(is_pseudonym(name) for name in names),
                )
                self._unwrapped_keys.pop(key_id, None)
                self._drop(key_id)
                self._by_id[key_id] = entry
                self._subjects += entry.subject
                for name in entry.names:
                    self._by_name[name] = entry
                self._use(entry, hold)
            self._evict()

    def _drop(self, key_id: bytes) -> None:
        """Take the entry ``key_id`` out of the order of use (under the lock)."""
        entry = self._by_id.pop(key_id, None)
        if entry is not None:
            self._subjects -= entry.subject

    def _evict(self) -> None:
        """Drop the subjects' keys used longest ago while more than ``size`` are held.

        Called under the lock. ``_by_id`` is in the order of use, so the walk takes the first
        unpinned subjects' keys it meets; it passes over only the library's keys and the keys
        running operations hold, without copying the ring.
        """
        excess = self._subjects - self.size
        if excess <= 0:
            return
        victims: list[_Entry] = []
        for entry in self._by_id.values():
            if len(victims) == excess:
                break
            if entry.subject and entry.key_id not in self._pins:
                victims.append(entry)
        for entry in victims:
            self._drop(entry.key_id)
            for name in entry.names:
                if self._by_name.get(name) is entry:
                    del self._by_name[name]
            self._unwrapped_keys.pop(entry.key_id, None)
            entry.material = None

    def forget(self, names: Iterable[str] | None = None) -> None:
        """Drop keys from memory, all of them when ``names`` is ``None`` (after an erasure).

        libmongocrypt's cache of unwrapped keys is dropped with them.
        """
        with self._lock:
            if names is None:
                self._by_name.clear()
                self._by_id.clear()
                self._subjects = 0
                self._unwrapped_keys.clear()
                self.checked = False  # after a rotation, the master key is checked again
            else:
                for name in names:
                    entry = self._by_name.pop(name, None)
                    if entry is not None:
                        if self._by_id.get(entry.key_id) is entry:
                            self._drop(entry.key_id)
                        self._unwrapped_keys.pop(entry.key_id, None)
                        entry.material = None
            self._index_keys.clear()
            # A fresh libmongocrypt instance has an empty key cache. The old one is not closed
            # here (a flow may be running one of its contexts); it is freed with its last user.
            self._crypt, self._unwrapped = self._new_crypt(), 0

    def raw_keys(self, filter: Mapping[str, Any]) -> list[bytes]:
        """The held key documents libmongocrypt's key filter selects (``_id``/alt names).

        Held documents are served whatever their age: the TTL decides when an operation loads
        a key again (``missing``, at its start), never whether a key it has already checked
        may be used. libmongocrypt asks for keys while the operation runs (and again when its
        own cache of unwrapped keys expires), so a TTL ending between the two would fail an
        operation that did everything right. A key is dropped by ``forget`` (an erasure here,
        or a reload that no longer finds it in the key vault).
        """
        if not filter:
            held = {id(e): e for e in self._by_id.values()}
            return [e.raw for e in held.values()]
        ids: set[bytes] = set()
        names: set[str] = set()
        for clause in filter.get("$or", [filter]):
            ids.update(bytes(i) for i in clause.get("_id", {}).get("$in", ()))
            names.update(clause.get("keyAltNames", {}).get("$in", ()))
        found: dict[int, bytes] = {}
        for entry in [self._by_id.get(i) for i in ids] + [self._by_name.get(n) for n in names]:
            if entry is not None:
                found[id(entry)] = entry.raw
        return list(found.values())

    def key_id(self, name: str) -> bytes | None:
        """The ``_id`` of the held data key named ``name``."""
        entry = self._by_name.get(name)
        return None if entry is None else entry.key_id

    # -- keys ------------------------------------------------------------------------------------

    def new_key(
        self,
        name: str,
        provider: str | None = None,
        master_key: Mapping[str, Any] | None = None,
    ) -> Flow[Document]:
        """A new data key document named ``name``, wrapped by the master key (not yet held).

        With a remote master key, the wrapping is one KMS request. ``provider`` and
        ``master_key`` choose another of the ring's providers (a region's own master key,
        ``core.residency``); by default the ring's.

        Raises:
            KeyUnavailable: the master key is missing or unusable.
        """
        chosen = provider or self.provider
        master = (dict(master_key) if master_key else None) if provider else self.master_key
        options = DataKeyOpts(master, [bson.encode({"keyAltName": name})], None)
        try:
            raw = yield from self._run(lambda c: c.data_key_context(chosen, options))
        except (MongoCryptError, ValueError) as exc:
            raise KeyUnavailable(
                f"a data key could not be created with the '{chosen}' master key: "
                f"{_reason(exc)}; check the configured master key"
            ) from None
        document: Document = bson.decode(_produced(raw))
        document["_id"] = Binary(key_uuid(name).bytes, UUID_SUBTYPE)
        return document

    # -- sealing ---------------------------------------------------------------------------------

    def seal(self, name: str, values: Mapping[str, Any]) -> Flow[Binary]:
        """Encrypt ``values`` as one subdocument under the data key ``name``.

        Raises:
            KeyUnavailable: the key is not held or cannot be unwrapped.
        """
        key_id = self.key_id(name)
        if key_id is None:
            raise KeyUnavailable("the data key of the data subject is not loaded")
        out = yield from self._encrypt(bson.encode({"v": dict(values)}), ALGORITHM, key_id)
        sealed: Binary = bson.decode(out)["v"]
        return sealed

    def _encrypt(self, value: bytes, algorithm: str, key_id: bytes) -> Flow[bytes]:
        options = ExplicitEncryptOpts(algorithm, key_id)
        try:
            out = yield from self._run(lambda c: c.explicit_encryption_context(value, options))
        except MongoCryptError as exc:
            raise KeyUnavailable(_reason(exc)) from None
        return _produced(out)

    def open(self, value: Binary) -> Flow[Document]:
        """Decrypt a value written by ``seal`` (or by any CSFLE driver).

        A value under a held key wrapped by a ``local`` master key is opened by ``aead`` with
        the unwrapped key, at a cost that does not grow with the number of keys held;
        anything else (a remote master key, a key not held, a value that is no CSFLE value)
        goes through libmongocrypt, which fails it with its own reason.

        Raises:
            KeyUnavailable: the key is missing or wrong, or the ciphertext was altered.
        """
        material = self._material(value)
        if material is not None:
            return _opened(material, value)
        encoded = bson.encode({"v": value})
        try:
            out = yield from self._run(lambda c: c.explicit_decryption_context(encoded))
        except MongoCryptError as exc:
            raise KeyUnavailable(_reason(exc)) from None
        plain = bson.decode(_produced(out))["v"]
        if not isinstance(plain, dict):
            raise KeyUnavailable("the sealed value is not an identity subdocument")
        return plain

    def _material(self, value: Binary) -> bytes | None:
        """The unwrapped key of ``value``'s data key when ``aead`` can open it, else ``None``."""
        given: object = value  # a row may hold anything under ``_enc``
        if not isinstance(given, Binary) or given.subtype != 6 or len(given) < 18:
            return None
        entry = self._by_id.get(bytes(value[1:17]))
        if entry is None or entry.wrapped is None:
            return None
        master = _local_key(entry.provider, self.kms_providers)
        if master is None:
            return None
        now = self._clock()
        with self._lock:
            self._expire_unwrapped(now)
            if entry.material is None:
                try:
                    entry.material = aead.decrypt(master, entry.wrapped, b"")
                except aead.InvalidCiphertext:
                    return None  # libmongocrypt reports the wrong master key its own way
                entry.unwrapped = now
                self._unwrapped_keys[entry.key_id] = entry
            return entry.material

    def _expire_unwrapped(self, now: float) -> None:
        """Drop the unwrapped keys older than the TTL (the oldest are first)."""
        while self._unwrapped_keys:
            key_id, entry = next(iter(self._unwrapped_keys.items()))
            if now - entry.unwrapped <= self.ttl:
                return
            del self._unwrapped_keys[key_id]
            entry.material = None

    @staticmethod
    def key_name_of(value: Binary) -> bytes:
        """The ``_id`` of the data key a CSFLE ciphertext was made with."""
        return bytes(value[1:17])

    def probe(self, document: Mapping[str, Any]) -> Flow[None]:
        """Hold ``document`` and unwrap it under the master key (``check_master_key``).

        Raises:
            KeyUnavailable: the master key does not unwrap it (or the KMS cannot be reached).
        """
        self.add((document,))
        key_id = key_id_bytes(document["_id"])
        yield from self._encrypt(bson.encode({"v": _CHECK_LABEL}), _DETERMINISTIC, key_id)

    # -- blind index -----------------------------------------------------------------------------

    def index_key(self) -> Flow[bytes]:
        """The secret of the blind index, derived from the ``INDEX_KEY_NAME`` data key.

        It is SHA-256 over the deterministic CSFLE encryption of a fixed label: a value only
        holders of that data key can compute, stored nowhere. It is kept for the TTL.

        Raises:
            KeyUnavailable: the index data key is not loaded.
        """
        key_id = self.key_id(INDEX_KEY_NAME)
        if key_id is None:
            raise KeyUnavailable("the blind index key is not loaded")
        cached = self._index_keys.get(key_id)
        now = self._clock()
        if cached is not None and now - cached[1] <= self.ttl:
            return cached[0]
        # Derived again from the held key document (see ``raw_keys``), even past its TTL.
        out = yield from self._encrypt(bson.encode({"v": _INDEX_LABEL}), _DETERMINISTIC, key_id)
        secret = hashlib.sha256(bytes(bson.decode(out)["v"])).digest()
        self._index_keys[key_id] = (secret, now)
        return secret


def derived_secret(ring: KeyRing, name: str, label: bytes) -> Flow[bytes]:
    """A secret only holders of the data key ``name`` can compute, stored nowhere.

    SHA-256 over the deterministic CSFLE encryption of ``label`` under that key (how the blind
    index key is made, with another label): the secret follows the data key through master-key
    rotations, which re-wrap the key but keep its material.

    Raises:
        KeyUnavailable: the data key is not held, or cannot be unwrapped.
    """
    key_id = ring.key_id(name)
    if key_id is None:
        raise KeyUnavailable(f"the data key '{name}' is not loaded")
    out = yield from ring._encrypt(bson.encode({"v": label}), _DETERMINISTIC, key_id)
    return hashlib.sha256(bytes(bson.decode(out)["v"])).digest()


def rewrap(
    documents: Sequence[Mapping[str, Any]],
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    provider: str = "local",
    master_key: Mapping[str, Any] | None = None,
) -> Flow[list[Document]]:
    """Data key documents re-wrapped from the ``old`` to the ``new`` KMS providers' master key.

    The key material does not change, so documents encrypted with these keys stay readable
    (pymongo's ``rewrap_many_data_key`` semantics). For ``local`` → ``local`` the new key is
    first reached under a temporary provider name, then the keys are moved back to ``local``.
    Keys wrapped by a remote KMS are unwrapped and wrapped by KMS requests.

    Raises:
        KeyUnavailable: a key cannot be unwrapped with the old master key.
    """
    if not documents:
        return []
    # a named provider's own name (``local:eu``) cannot be named further: stage beside it
    staging = f"{provider.partition(':')[0]}:privata_rotation"
    first = yield from _rewrap_pass(documents, {**old, staging: new[provider]}, staging, master_key)
    return (
        yield from _rewrap_pass(first, {provider: new[provider], staging: new[provider]}, provider)
    )


def rewrap_to(
    documents: Sequence[Mapping[str, Any]],
    providers: Mapping[str, Any],
    provider: str,
    master_key: Mapping[str, Any] | None = None,
) -> Flow[list[Document]]:
    """Data key documents re-wrapped by ``provider``'s master key, key material unchanged.

    ``providers`` must reach the keys' current master keys and ``provider``: moving a subject
    between regions re-wraps its key from one region's master key to the other's.

    Raises:
        KeyUnavailable: a key cannot be unwrapped with its master key.
    """
    return (yield from _rewrap_pass(documents, providers, provider, master_key))


def _rewrap_pass(
    documents: Sequence[Mapping[str, Any]],
    providers: Mapping[str, Any],
    provider: str,
    master_key: Mapping[str, Any] | None = None,
) -> Flow[list[Document]]:
    ring = KeyRing(providers, provider=provider, clock=lambda: 0.0)
    ring.add(documents)
    try:
        out = yield from ring._run(
            lambda c: c.rewrap_many_data_key_context({}, provider, dict(master_key or {}))
        )
    except MongoCryptError as exc:
        raise KeyUnavailable(f"data keys could not be re-wrapped: {_reason(exc)}") from None
    rewrapped = bson.decode(out)["v"] if out is not None else []
    by_id = {key_id_bytes(d["_id"]): dict(d) for d in documents}
    for document in rewrapped:
        by_id[key_id_bytes(document["_id"])].update(document)
    return list(by_id.values())


def _opened(material: bytes, value: Binary) -> Document:
    """The identity subdocument ``value`` holds, opened with its unwrapped data key."""
    try:
        kind, plain = aead.open_value(material, bytes(value))
    except aead.InvalidCiphertext as exc:
        raise KeyUnavailable(str(exc)) from None
    if kind != _BSON_DOCUMENT:
        raise KeyUnavailable("the sealed value is not an identity subdocument")
    document: Document = bson.decode(plain)
    return document


def _produced(out: bytes | None) -> bytes:
    """The output of a context that must produce one (libmongocrypt ends it READY)."""
    if out is None:
        raise KeyUnavailable("libmongocrypt finished without a result")
    return out


def _reason(exc: Exception) -> str:
    """The message of libmongocrypt, which names keys by id and never carries a plaintext."""
    return str(exc) or type(exc).__name__
