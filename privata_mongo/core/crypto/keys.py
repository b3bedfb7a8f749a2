"""Key flows: loading data keys, sealing and unsealing identity rows, shredding, rotation.

An encrypted identity row keeps in clear only what the storage needs to link, swap and search::

    {_id: "pseu_…", _rev: "…", _idx: {email: <blind term>, …}, _enc: <CSFLE subtype 6>}

``_enc`` is one ``AEAD_AES_256_CBC_HMAC_SHA_512-Random`` value holding every identity value as
a subdocument, encrypted under the data subject's own data key (``keyAltName`` = pseudonym), so
MongoDB's ``ClientEncryption.decrypt`` reads it back without privata. ``_idx`` holds an
HMAC-SHA-256 term per searchable field. A row with no identity values has no ``_enc``.

Keys are fetched before the first use (``LoadKeys``), created for new subjects
(``StoreKeys``) and kept in the context's ``KeyRing`` for its TTL. A subject whose key was
shredded reads as a row without identity values; a key missing without a tombstone, a wrong
master key and a tampered ciphertext raise ``KeyUnavailable``; a ciphertext made under another
key than the one the key vault names for the row's pseudonym (moved from another row) raises
``IntegrityError`` before anything is decrypted. With a remote master key, the
ring's operations yield the KMS requests libmongocrypt needs (``ConnectKms`` …) in between.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import bson
from bson.binary import Binary

from privata_mongo.core import cache
from privata_mongo.core.crypto.blind import (
    INDEX_KEY_NAME,
    Blind,
    blind_term,
    blind_terms,
    legacy_blind_term,
)
from privata_mongo.core.crypto.chain_key import is_chain_key_name
from privata_mongo.core.crypto.check import check_master_key
from privata_mongo.core.crypto.ring import KEY_CHECK_NAME, KeyRing, key_document, rewrap
from privata_mongo.core.flows.context import Context
from privata_mongo.core.mql.find_projection import compile_find_projection
from privata_mongo.core.mql.values import UnsupportedOperator
from privata_mongo.core.ops import (
    DiscardKeys,
    Document,
    FetchAll,
    FindErased,
    Flow,
    LoadKeys,
    Locate,
    Query,
    ReplaceKeys,
    ShredKeys,
    StoreKeys,
    Update,
)
from privata_mongo.core.pseudonym import is_pseudonym
from privata_mongo.core.schema import (
    BLIND_FIELD,
    ORDER_FIELD,
    REVISION_FIELD,
    SEALED_FIELD,
    VERSION_FIELD,
    Side,
)
from privata_mongo.core.split import identity_values
from privata_mongo.errors import (
    ConfigurationError,
    IntegrityError,
    KeyUnavailable,
    SubjectErased,
    UnsupportedQuery,
)

__all__ = [
    "blind_filter",
    "discard_keys",
    "load_keys",
    "project_rows",
    "reindex",
    "rotate",
    "seal_rows",
    "shred",
    "shred_deleted",
    "stored_projection",
    "unseal_row",
    "unseal_rows",
]

logger = logging.getLogger(__name__)


def _ring(ctx: Context) -> KeyRing | None:
    if not ctx.schema.sealed:
        return None
    if ctx.crypto is None:
        raise ConfigurationError(
            f"{ctx.schema.model}: identity rows are encrypted but no key ring is configured"
        )
    return ctx.crypto


def _fields(ctx: Context) -> tuple[str, ...]:
    return tuple(sorted(ctx.schema.identity_fields))


def _unavailable(
    ctx: Context, what: str, reason: str, pseudonyms: tuple[str, ...] = ()
) -> KeyUnavailable:
    fields = _fields(ctx)
    return KeyUnavailable(
        f"{ctx.schema.model}: identity fields {', '.join(fields) or '(dynamic)'} could not be "
        f"{what}: {reason}; check the master key (PRIVATA_MASTER_KEY) and the key vault",
        model=ctx.schema.model,
        fields=fields,
        pseudonyms=pseudonyms,
    )


_NAMED = 10
"""Most pseudonyms a message names (the error's ``pseudonyms`` holds them all)."""


def _named(pseudonyms: Sequence[str]) -> str:
    shown = ", ".join(pseudonyms[:_NAMED])
    return shown + (f" and {len(pseudonyms) - _NAMED} more" if len(pseudonyms) > _NAMED else "")


def _wrapping(ctx: Context, name: str) -> tuple[str | None, Mapping[str, Any] | None]:
    """The master key a new data key ``name`` is wrapped with: its subject's region's.

    Keys of no subject (the blind index key) and every key without regions configured are
    wrapped with the ring's own master key.
    """
    residency = ctx.residency
    if residency is None or name not in ctx.placement:
        return None, None
    wrapping = residency.wrapping.get(ctx.placement[name])
    return (None, None) if wrapping is None else (wrapping.provider, wrapping.master_key)


def load_keys(
    ctx: Context, ring: KeyRing, names: Sequence[str], *, create: bool, fresh: bool = False
) -> Flow[list[str]]:
    """Make the data keys ``names`` available in ``ring``; returns the names not found.

    With ``create``, keys not in the vault are created and stored, unless they were shredded
    (``SubjectErased``: an erased subject is not given a new identity under its old pseudonym).
    ``fresh`` names are new pseudonyms, known to have no key: they are not looked up.
    """
    if create:
        yield from check_master_key(ctx, ring)
    wanted = ring.missing(names, ctx.key_recheck if ctx.cache else None)
    if wanted and ctx.cache and not fresh:
        wanted = yield from _from_cache(ring, wanted)
    if not wanted:
        return []
    found: list[Document] = []
    lookup = [n for n in wanted if not fresh or n == INDEX_KEY_NAME]
    if lookup:
        found = yield from LoadKeys(tuple(lookup))
        ring.add(found)
        if ctx.cache:
            loaded = {n for d in found for n in d.get("keyAltNames", ())}
            yield from cache.keep_keys(
                {n: raw for n in lookup if n in loaded and (raw := ring.stored(n)) is not None}
            )
    have = {n for d in found for n in d.get("keyAltNames", ())}
    absent = [n for n in wanted if n not in have]
    vanished = [n for n in absent if ring.key_id(n) is not None]
    if vanished:
        # Held from an earlier load, gone from the vault now (shredded by another process):
        # the held copy, and libmongocrypt's, must not be used again.
        ring.forget(vanished)
    if not absent or not create:
        return absent
    if not fresh:
        erased: list[str] = yield from FindErased(tuple(absent))
        if erased:
            raise SubjectErased(
                f"{ctx.schema.model}: {len(erased)} data subject(s) were erased; their "
                "identity cannot be written again under the same pseudonym"
            )
    if INDEX_KEY_NAME in absent:
        yield from _refuse_if_indexed(ctx)
    created: list[Document] = []
    unplaced = tuple(n for n in absent if n not in ctx.placement and is_pseudonym(n))
    if ctx.residency is not None and unplaced:
        found_regions = yield from Locate(unplaced)
        ctx = replace(ctx, placement={**ctx.placement, **found_regions})
    try:
        for name in absent:
            wrapping = _wrapping(ctx, name)
            created.append((yield from ring.new_key(name, *wrapping)))
    except KeyUnavailable as exc:
        raise _unavailable(ctx, "encrypted", str(exc)) from None
    yield StoreKeys(tuple(created))
    if INDEX_KEY_NAME in absent:
        # Another process may have created the index key first: use whichever was stored.
        ring.add((yield from LoadKeys((INDEX_KEY_NAME,))))
    ring.add(d for d in created if INDEX_KEY_NAME not in d.get("keyAltNames", ()))
    if ctx.cache:
        # as the key vault now stores them: the next process to need them finds them here
        yield from cache.keep_keys({n: raw for n in absent if (raw := ring.stored(n)) is not None})
    return []


def _from_cache(ring: KeyRing, wanted: Sequence[str]) -> Flow[list[str]]:
    """Serve ``wanted`` keys from the shared cache; the names it does not hold as wanted.

    A held key the cache holds unchanged is confirmed; one it holds otherwise (re-wrapped by
    a rotation elsewhere) is replaced. A name the cache lacks (evicted, or held because the
    subject was erased or its key re-wrapped) is left for the key vault, which decides.
    """
    found = yield from cache.cached_keys(wanted)
    same = [n for n in wanted if n in found and found[n] == ring.stored(n)]
    ring.confirm(same)
    ring.add(key_document(found[n]) for n in wanted if n in found and n not in same)
    return [n for n in wanted if n not in found]


def discard_keys(ctx: Context, pseudonyms: Sequence[str]) -> Flow[None]:
    """Delete the data keys made for fresh pseudonyms whose rows were not stored.

    Their pseudonyms are new and were never stored, so no row anywhere can use these keys;
    deleting them keeps a failed create from leaving a key behind. No tombstone is written
    (nobody was erased). If the key vault cannot be reached either, the keys stay: unused,
    random and named by a random pseudonym, they reveal nothing, and the failure is logged.
    The names come from the intent journal when the sweeper calls this, so the library's own
    keys (blind index, key check, audit chain), which no pseudonym can name, are never
    discarded, whatever a journal entry says.
    """
    names = tuple(p for p in dict.fromkeys(pseudonyms) if not _reserved(p))
    if not names or not ctx.schema.sealed:
        return
    try:
        yield DiscardKeys(names)
    except Exception as exc:
        logger.warning(
            "%s: %d unused data key(s) of a failed insert could not be deleted (%s)",
            ctx.schema.model,
            len(pseudonyms),
            type(exc).__name__,
        )


def seal_rows(ctx: Context, rows: list[Document], *, fresh: bool = False) -> Flow[list[Document]]:
    """Identity rows as stored: ``_id``, ``_rev``, blind index terms and one sealed value.

    Raises:
        KeyUnavailable: a key cannot be created, loaded or used; nothing has been written.
    """
    ring = _ring(ctx)
    if ring is None or not rows:
        return rows
    schema = ctx.schema
    searchable = sorted(schema.searchable)
    names = [row["_id"] for row in rows if identity_values(row)]  # empty rows need no key
    if any(f in row for row in rows for f in searchable):
        names.append(INDEX_KEY_NAME)
    yield from load_keys(ctx, ring, names, create=True, fresh=fresh)
    out: list[Document] = []
    index_key = b""
    try:
        for row in rows:
            values = identity_values(row)
            stored: Document = {"_id": row["_id"]}
            for bookkeeping in (REVISION_FIELD, VERSION_FIELD):
                if bookkeeping in row:
                    stored[bookkeeping] = row[bookkeeping]
            if any(f in values for f in searchable) and not index_key:
                index_key = yield from ring.index_key()
            if terms := _terms(ctx, index_key, values):
                stored[BLIND_FIELD] = terms
            if values:
                # The recorded key order names identity fields: it is sealed with them.
                order = {ORDER_FIELD: row[ORDER_FIELD]} if ORDER_FIELD in row else {}
                stored[SEALED_FIELD] = yield from ring.seal(row["_id"], {**values, **order})
            out.append(stored)
    except KeyUnavailable as exc:
        raise _unavailable(ctx, "encrypted", str(exc)) from None
    return out


def _terms(ctx: Context, index_key: bytes, values: Mapping[str, Any]) -> dict[str, Any]:
    """The blind index terms a row of ``values`` stores, per searchable field present."""
    scope = ctx.schema.identity_collection
    return {
        f: blind_terms(index_key, ctx.database, scope, f, values[f])
        for f in sorted(ctx.schema.searchable)
        if f in values
    }


def unseal_rows(ctx: Context, rows: list[Document]) -> Flow[list[Document]]:
    """Stored identity rows as plain identity documents.

    A row whose data key was shredded comes back with ``_id`` (and ``_rev``) only: the
    document reads as one without identity values.

    Raises:
        KeyUnavailable: a data key is missing without having been shredded, the master key
            is wrong, or a sealed value was altered.
        IntegrityError: a row's ciphertext was made under another subject's data key.
    """
    ring = _ring(ctx)
    sealed = [row for row in rows if SEALED_FIELD in row]
    if ring is None or not sealed:
        return [_without_index(row) for row in rows] if ring is not None else rows
    names = [row["_id"] for row in sealed]
    erased = yield from _erased_among(ctx, ring, names)
    for _ in range(_RELOADS):
        # A delete or erasure in this process (another thread or task) shreds a key and makes
        # every ring forget it: one loaded above may be gone already. Look again, so it reads
        # as the erased subject it now is rather than as a row under a foreign key.
        forgotten = [n for n in names if n not in erased and ring.key_id(n) is None]
        if not forgotten:
            break
        erased |= yield from _erased_among(ctx, ring, forgotten)
    _refuse_misplaced(ring, [row for row in sealed if row["_id"] not in erased], ctx.schema.model)
    out: list[Document] = []
    try:
        for row in rows:
            plain = _without_index(row)
            value = plain.pop(SEALED_FIELD, None)
            if value is not None and row["_id"] not in erased:
                plain.update((yield from _opened_unless_erased(ring, row["_id"], value)))
            out.append(plain)
    except KeyUnavailable as exc:
        raise _unavailable(ctx, "decrypted", str(exc)) from None
    return out


_RELOADS = 3
"""Times ``unseal_rows`` looks again for keys forgotten while it ran, before it gives up."""


def _erased_among(ctx: Context, ring: KeyRing, names: Sequence[str]) -> Flow[set[str]]:
    """Load the keys ``names`` into ``ring``; the names that were erased (shredded).

    Raises:
        KeyUnavailable: a key is missing and was not erased.
    """
    absent = yield from load_keys(ctx, ring, names, create=False)
    if not absent:
        return set()
    erased = set((yield from FindErased(tuple(absent))))
    lost = [n for n in absent if n not in erased]
    if lost:
        # Fail closed for the whole operation (docs/encryption.md, "A data key missing in
        # a listing"): the other subjects of the batch are not served without these.
        logger.warning(
            "%s: the data key of %d data subject(s) is missing from the key vault and "
            "they were not erased; the read fails (see KeyUnavailable.pseudonyms)",
            ctx.schema.model,
            len(lost),
        )
        raise _unavailable(
            ctx,
            "decrypted",
            f"the data key of {len(lost)} data subject(s) is missing from the key vault "
            f"({_named(lost)}) and they were not erased",
            tuple(lost),
        )
    logger.info("%s: %d erased data subject(s) read", ctx.schema.model, len(erased))
    return erased


def _opened_unless_erased(ring: KeyRing, name: str, value: Binary) -> Flow[Document]:
    """``ring.open(value)``; no values if the key was shredded meanwhile (``unseal_rows``).

    Raises:
        KeyUnavailable: the key is missing and was not shredded, or the value is altered.
    """
    try:
        return (yield from ring.open(value))
    except KeyUnavailable:
        if ring.key_id(name) is not None or not (yield from FindErased((name,))):
            raise
        return {}


def _refuse_misplaced(ring: KeyRing, rows: Sequence[Mapping[str, Any]], model: str | None) -> None:
    """Fail unless each row's ciphertext names the data key held for the row's pseudonym.

    The AEAD tag authenticates a ciphertext, not the row it sits in: a ciphertext copied from
    another subject's row decrypts under that subject's key (the one it names) and would be
    served as this row's identity. The key vault ties a key to a pseudonym (``keyAltNames``),
    so a ciphertext naming any other key is refused, for the whole operation as a missing key
    is. A value that is not a binary is left to ``KeyRing.open`` (it fails authentication).

    Raises:
        IntegrityError: names the pseudonyms whose rows hold another key's ciphertext.
    """
    misplaced = [
        row["_id"]
        for row in rows
        if isinstance(row.get(SEALED_FIELD), bytes)
        and KeyRing.key_name_of(row[SEALED_FIELD]) != ring.key_id(row["_id"])
    ]
    if not misplaced:
        return
    logger.warning(
        "%s: %d identity row(s) hold a ciphertext made under another data key than their "
        "subject's; the read fails (see IntegrityError.pseudonyms)",
        model or "identity rows",
        len(misplaced),
    )
    raise IntegrityError(
        f"{model or 'identity row'}: the sealed identity values of {len(misplaced)} row(s) "
        f"({_named(misplaced)}) were made under another data key than the one the key vault "
        "holds for their pseudonym: the ciphertext was moved from another row or the key "
        "vault's keyAltNames were changed; restore the rows (or the key vault) from a backup",
        model=model,
        pseudonyms=tuple(misplaced),
    )


def _without_index(row: Mapping[str, Any]) -> Document:
    return {k: v for k, v in row.items() if k != BLIND_FIELD}


def blind_filter(ctx: Context, filter: Mapping[str, Any]) -> Flow[dict[str, Any]]:
    """``filter`` with every ``Blind`` placeholder replaced by its blind index term.

    A read never creates a key: a blind index key created while the key vault is unavailable
    (dropped, or being restored) would index nothing the collection holds, and once the old
    vault is back every lookup would miss. Without the key, a collection with no indexed rows
    cannot match any term (each placeholder becomes a value no term equals); one with indexed
    rows has lost its key, which is ``KeyUnavailable``.

    Raises:
        KeyUnavailable: the blind index key is missing while identity rows carry terms.
    """
    ring = _ring(ctx) if _has_blind(filter) else None
    if ring is None:
        return dict(filter)
    if (yield from load_keys(ctx, ring, [INDEX_KEY_NAME], create=False)):
        yield from _refuse_if_indexed(ctx)
        unmatched: dict[str, Any] = _with_terms(filter, lambda b: [_no_term(b)])
        return unmatched
    try:
        key = yield from ring.index_key()
    except KeyUnavailable as exc:
        raise _unavailable(ctx, "searched", str(exc)) from None
    replaced: dict[str, Any] = _with_terms(filter, _terms_of(ctx, key))
    return replaced


def _terms_of(ctx: Context, key: bytes) -> Callable[[Blind], list[Any]]:
    """The stored terms a ``Blind`` value may have.

    This format's, and the first format's while ``legacy_terms`` is on (rows not re-indexed
    since terms named their database).
    """
    database, scope = ctx.database, ctx.schema.identity_collection

    def terms(blind: Blind) -> list[Any]:
        current = blind_term(key, database, scope, blind.field, blind.value)
        if not ctx.legacy_terms or current is None:
            return [current]
        return [current, legacy_blind_term(key, scope, blind.field, blind.value)]

    return terms


def _with_terms(value: Any, terms: Callable[[Blind], list[Any]]) -> Any:
    """``value`` with each ``Blind`` replaced by its terms.

    One term stands as itself, several as ``$in`` (the same equality), and in the ``$in``
    list that held the placeholder they are spliced in.
    """
    if isinstance(value, Blind):
        found = terms(value)
        return found[0] if len(found) == 1 else {"$in": found}
    if isinstance(value, Mapping):
        return {k: _with_terms(v, terms) for k, v in value.items()}
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            if isinstance(item, Blind):
                out.extend(terms(item))
            else:
                out.append(_with_terms(item, terms))
        return out
    return value


def _refuse_if_indexed(ctx: Context) -> Flow[None]:
    """Fail when the blind index key is gone but identity rows were indexed under it.

    Raises:
        KeyUnavailable: a row of the identity collection carries blind index terms.
    """
    query = Query({BLIND_FIELD: {"$exists": True}}, projection={"_id": 1}, limit=1)
    if (yield from FetchAll(Side.IDENTITY, query)):
        raise _unavailable(
            ctx,
            "searched",
            f"the blind index key ('{INDEX_KEY_NAME}') is missing from the key vault while "
            f"{ctx.schema.identity_collection} holds rows indexed under it; restore the key "
            "vault from its backup (a new key would not find these rows)",
        )


def _no_term(blind: Blind) -> Any:
    """What stands for a blind term when no index key exists: no stored term equals it."""
    return None if blind.value is None else Binary(b"")


def _has_blind(value: Any) -> bool:
    if isinstance(value, Blind):
        return True
    if isinstance(value, Mapping):
        return any(_has_blind(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_blind(v) for v in value)
    return False


def stored_projection(
    ctx: Context, projection: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """The projection to send for identity rows: whole rows when their values are sealed."""
    return None if ctx.schema.sealed else projection


def project_rows(
    ctx: Context, rows: list[Document], projection: Mapping[str, Any] | None
) -> list[Document]:
    """Apply an identity projection in the process, after unsealing (``_id`` always kept)."""
    if not ctx.schema.sealed or not projection:
        return rows
    spec = {k: v for k, v in projection.items() if k != "_id"}
    if not spec:
        return [{"_id": row["_id"]} for row in rows]
    try:
        transform = compile_find_projection(spec, ctx.now())
    except UnsupportedOperator as exc:
        raise UnsupportedQuery(
            f"{ctx.schema.model}: the projection operator {exc.operator} cannot be applied to "
            "identity fields; project the whole field instead",
            model=ctx.schema.model,
        ) from None
    return [{**transform(row), "_id": row["_id"]} for row in rows]


# -- rights and operations ---------------------------------------------------------------------


def _reserved(name: str) -> bool:
    """Whether ``name`` is one of the library's own keys, which name no data subject."""
    return name in (INDEX_KEY_NAME, KEY_CHECK_NAME) or is_chain_key_name(name)


def shred(ring: KeyRing | None, pseudonyms: Sequence[str], *, cached: bool = False) -> Flow[int]:
    """Destroy the data keys of ``pseudonyms`` (crypto-shredding); returns the keys deleted.

    Every copy of these subjects' identity rows (replicas, backups, exports) becomes
    unreadable; the keys are dropped from memory too. With ``cached`` (a cache is
    configured), their cache entries are held first (``core.cache.hold_erased``), so every
    other process stops using them within its key recheck interval.

    Raises:
        CacheUnavailable: with ``cached``, the cache cannot be reached; nothing was shredded.
    """
    names = tuple(dict.fromkeys(p for p in pseudonyms if not _reserved(p)))
    if not names:
        return 0
    if cached:
        yield from cache.hold_erased(names)
    deleted: int = yield from ShredKeys(names)
    if ring is not None:
        ring.forget(names)
    return deleted


def shred_deleted(ctx: Context, pseudonyms: Sequence[str]) -> Flow[None]:
    """Shred the data keys of subjects whose identity rows a delete removed.

    The same shredding as erasure (``shred``: a tombstone per subject, then the key), so a
    backup of a deleted row reads as an erased subject, not as a lost key. Plaintext schemas
    (no key ring) have no keys to shred.
    """
    ring = _ring(ctx)
    if ring is None or not pseudonyms:
        return
    yield from shred(ring, pseudonyms, cached=ctx.cache)


def reindex(ctx: Context) -> Flow[int]:
    """Rewrite every identity row's blind index terms in the current format; the rows changed.

    Rows are read in ``_id`` order, a batch at a time, decrypted in the process and given the
    terms of their values bound to ``ctx.database``; a row whose terms are already those is
    left alone, so a second run changes nothing. A row of an erased subject (its key
    shredded) loses its terms: they were the last trace by which a guessed value could find
    it. The write is conditional on the row's revision: a row a writer replaced meanwhile was
    written with current terms already. The sealed values and the revision do not change.

    Raises:
        KeyUnavailable: a data key is missing without a tombstone, or the index key is gone.
        WriteFailed: the new terms collide in a unique index (two rows held the same value,
            one under each format); the rows before it are re-indexed.
    """
    ring = _ring(ctx)
    if ring is None or not ctx.schema.searchable:
        return 0
    changed = 0
    after: dict[str, Any] = {}
    while True:
        query = Query(
            {BLIND_FIELD: {"$exists": True}, **after}, sort=(("_id", 1),), limit=ctx.batch_size
        )
        rows: list[Document] = yield from FetchAll(Side.IDENTITY, query)
        if not rows:
            return changed
        if (yield from load_keys(ctx, ring, [INDEX_KEY_NAME], create=False)):
            yield from _refuse_if_indexed(ctx)
        try:
            index_key = yield from ring.index_key()
        except KeyUnavailable as exc:
            raise _unavailable(ctx, "re-indexed", str(exc)) from None
        plain = yield from unseal_rows(ctx, rows)
        for row, values in zip(rows, plain, strict=True):
            terms = _terms(ctx, index_key, identity_values(values))
            if _as_read(terms) == _as_read(row.get(BLIND_FIELD)):
                continue
            change = {"$set": {BLIND_FIELD: terms}} if terms else {"$unset": {BLIND_FIELD: ""}}
            selector = {"_id": row["_id"], REVISION_FIELD: row.get(REVISION_FIELD)}
            outcome = yield from Update(Side.IDENTITY, selector, change, False)
            changed += outcome.matched
            yield from cache.forget_rows(ctx, (row["_id"],))
        if len(rows) < ctx.batch_size:
            return changed
        after = {"_id": {"$gt": rows[-1]["_id"]}}


def _provider_of(document: Mapping[str, Any]) -> Any:
    master = document.get("masterKey")
    return master.get("provider") if isinstance(master, Mapping) else None


def _as_read(terms: Any) -> Any:
    """Terms as a driver reads them back (a server returns subtype-0 binaries as ``bytes``)."""
    return bson.decode(bson.encode({"t": terms}))["t"]


def rotate(
    ring: KeyRing,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    master_key: Mapping[str, Any] | None = None,
    cached: bool = False,
    provider: str | None = None,
    others: frozenset[str] = frozenset(),
) -> Flow[int]:
    """Re-wrap every data key from the ``old`` to the ``new`` master key; returns the count.

    Documents are not touched: the data keys keep their material, only its wrapping changes
    (pymongo's ``rewrap_many_data_key`` semantics). With ``cached``, the cached copies of the
    keys (wrapped by the old master key) are invalidated. ``provider`` is the master key's
    provider name (default: the ring's; a region's is ``local:<name>``); keys wrapped by a
    provider in ``others`` (other regions' master keys, in a vault they share) are left as
    they are: a key is only ever re-wrapped by its own master key's successor.
    """
    documents: list[Document] = yield from LoadKeys(None)
    documents = [d for d in documents if _provider_of(d) not in others]
    rewrapped = yield from rewrap(
        documents, old, new, provider=provider or ring.provider, master_key=master_key
    )
    if rewrapped:
        yield ReplaceKeys(tuple(rewrapped))
        if cached:
            yield from cache.forget_keys(n for d in rewrapped for n in d.get("keyAltNames", ()))
    ring.forget()
    return len(rewrapped)


def unseal_row(ring: KeyRing, row: Mapping[str, Any]) -> Flow[Document]:
    """The identity values of one raw identity row, decrypted (for operators and tests).

    The subject's data key is read from the key vault first, so a shredded subject fails
    even while this process still holds its key.

    Raises:
        KeyUnavailable: the subject's data key is missing (shredded) or unusable.
        IntegrityError: the row's ciphertext was made under another subject's data key.
    """
    value = row.get(SEALED_FIELD)
    if value is None:
        return {}
    ring.add((yield from LoadKeys((row["_id"],))))
    if ring.key_id(row["_id"]) is not None:
        _refuse_misplaced(ring, [row], None)
    plain: Document = yield from ring.open(value)
    plain.pop(ORDER_FIELD, None)  # the recorded key order is bookkeeping, not a value
    return plain
