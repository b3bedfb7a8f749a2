"""Migration flows: plaintext documents into the split form (``convert``), and back (``restore``).

A database adopting the library holds its documents whole, identity fields in the clear. A
document is *plaintext* while its row has no ``_pseudonym``; ``convert`` turns a batch of them
into exactly what the facade's insert would have stored, with the insert's own steps:
``split_for_storage`` for the halves and the recorded key order, ``seal`` for the data keys,
blind index terms and the sealed value. Only the pseudonym differs in where it comes from: it is
derived from the migration's secret and the document's ``_id`` (``pseudonym_of``), so a run
killed at any point and run again picks the same pseudonym for the same document without
having written it anywhere, and finds the key and identity row it already made.

Crash points of ``convert`` (no transaction; each step is idempotent, and the next run starts
again from the rows still without ``_pseudonym``):

1. before the data keys are stored: nothing was written; the next run starts the batch again.
2. after the keys, before the identity rows: the next run finds the keys by name (the same
   pseudonyms) and uses them; no key is made twice and none is left without a row.
3. after some or all identity rows: the next run's insert meets its own rows (duplicate
   ``_id`` = pseudonym) and replaces them with the same content; no second row.
4. after some clinical rows were rewritten: those are migrated and not selected again; the rest
   are rewritten by the next run. A row rewritten twice (two runs at once) gets the same
   content twice: its pseudonym is its own.
5. before the audit record: the intent stored before the first write names the batch's subjects
   and the recovery sweeper appends the record (``core.flows.recovery``); were it to find an
   identity row without its clinical half (crash point 3) it removes both row and key, and the
   next run makes them again, since the plaintext row still holds every value.

At every point the plaintext row keeps each value until its rewrite, which is the last step:
nothing is lost.

``restore`` is the reverse, for leaving the library: each migrated row is joined with its
identity row (``join``, which follows the recorded key order) and replaced by the plaintext
document, then the identity rows of the batch are deleted. A crash after the rewrite and before
the delete leaves identity rows no clinical row links to; ``remove_orphans`` deletes them once
no clinical row is migrated any more.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bson

from privata_mongo.core import cache
from privata_mongo.core.crypto.keys import shred_deleted
from privata_mongo.core.crypto.ring import derived_secret
from privata_mongo.core.failures import DUPLICATE_KEY, WriteFailed, WriteFailure
from privata_mongo.core.ops import (
    Count,
    Delete,
    DiscardKeys,
    Document,
    FetchAll,
    FindErased,
    Flow,
    Insert,
    LoadKeys,
    Query,
    Replace,
    ReplaceMany,
    StoreKeys,
)
from privata_mongo.core.pseudonym import format_pseudonym, is_pseudonym
from privata_mongo.core.schema import PSEUDONYM_FIELD, REGION_FIELD, Side
from privata_mongo.core.split import identity_values, join, split_for_storage
from privata_mongo.errors import ConfigurationError, SubjectErased

from .common import fetch_identities, intends, seal, touched, unseal
from .context import Context
from .write import placed

__all__ = [
    "MIGRATION_KEY_PREFIX",
    "Converted",
    "checksum",
    "convert",
    "copy",
    "every_key",
    "forget_migration",
    "load_subject_keys",
    "migration_key_name",
    "migration_secret",
    "next_batch",
    "pseudonym_of",
    "rejoin",
    "remove_orphans",
    "restore",
]

MIGRATION_KEY_PREFIX = "privata:migration"
"""``keyAltName`` prefix of the data keys migration secrets are derived from."""

_LABEL = b"privata migration secret v1"
PLAINTEXT: Mapping[str, Any] = {PSEUDONYM_FIELD: {"$exists": False}}
"""The rows a migration converts: no link to an identity row yet."""
MIGRATED: Mapping[str, Any] = {PSEUDONYM_FIELD: {"$exists": True}}


def migration_key_name(database: str, collection: str) -> str:
    """The ``keyAltName`` of the data key of one collection's migration secret."""
    return f"{MIGRATION_KEY_PREFIX}:{database}.{collection}"


def migration_secret(
    ctx: Context, *, create: bool, collection: str | None = None
) -> Flow[bytes | None]:
    """The secret of this collection's migration, derived from its own data key.

    The secret keys the pseudonyms a migration derives and the checksums it keeps of the
    source documents. It is computed from a data key of the key vault (wrapped by the master
    key, as every data key), so it is stored nowhere in the clear: a reader of the database
    cannot recompute a checksum to test a guess of a subject's values. ``None`` when the key
    does not exist and ``create`` is false (nothing was migrated). ``collection``: the source
    collection whose secret it is, when the flow runs on the collections it is copied into.

    Raises:
        ConfigurationError: identity rows are not encrypted, so there is no key ring.
        KeyUnavailable: the key cannot be unwrapped (wrong master key).
    """
    ring = ctx.crypto
    if ring is None:
        raise ConfigurationError(
            f"{ctx.schema.model}: migration needs the key ring of encrypted identity rows "
            "(privata_mongo.configure(encryption=True) and a master key)"
        )
    name = migration_key_name(ctx.database, collection or ctx.schema.collection)
    found: list[Document] = yield from LoadKeys((name,))
    if not found:
        if not create:
            return None
        made = yield from ring.new_key(name)
        yield StoreKeys((made,))
        found = yield from LoadKeys((name,))  # another run may have stored its key first
    ring.add(found[:1])
    secret: bytes = yield from derived_secret(ring, name, _LABEL)
    return secret


def _id_bytes(value: Any) -> bytes:
    return bson.encode({"_id": value})


def pseudonym_of(secret: bytes, document_id: Any) -> str:
    """The pseudonym a migration gives the document ``document_id``, the same on every run.

    A keyed hash of the ``_id`` (which the clinical row keeps in the clear next to the
    pseudonym anyway): it carries nothing about the subject, cannot be computed without the
    migration's secret, and differs between collections, so it links no one across them.
    """
    digest = hmac.new(secret, b"pseudonym\x00" + _id_bytes(document_id), hashlib.sha256)
    return format_pseudonym(digest.digest()[:16])


def checksum(secret: bytes, document: Mapping[str, Any]) -> bytes:
    """A keyed SHA-256 of a document's BSON: equal exactly when the bytes are equal.

    Keyed because an unkeyed hash of a plaintext document is a test of any guess: the clinical
    row holds every other field, so whoever reads the checksums could try names until one
    matches. Without the secret no guess can be checked.
    """
    return hmac.new(secret, b"document\x00" + bson.encode(document), hashlib.sha256).digest()


def next_batch(
    ctx: Context, selector: Mapping[str, Any], after: Any, size: int, *, first: bool
) -> Flow[list[Document]]:
    """The next ``size`` rows of ``selector`` in ``_id`` order, after ``after``.

    ``first``: start from the lowest ``_id`` (``after`` is ignored). ``$gt`` compares within one
    BSON type, so a caller that gets an empty batch starts once more from the first row, which
    reaches ``_id`` values of the other types.
    """
    clause = dict(selector) if first else {"$and": [dict(selector), {"_id": {"$gt": after}}]}
    rows: list[Document] = yield from FetchAll(
        Side.CLINICAL, Query(clause, sort=(("_id", 1),), limit=size, batch_size=size)
    )
    return rows


@dataclass(frozen=True, slots=True)
class Converted:
    """What one batch did (counts and pseudonyms, never a value).

    Attributes:
        documents: clinical rows rewritten in the split form.
        identity_rows: identity rows written (a re-run's rows replaced count too).
        pseudonyms: the subjects of the batch, in the batch's order.
        fields: the identity fields the batch held (names).
        keys_found: data keys of the batch's subjects already in the key vault (``copy``
            looked them up: an interrupted run's).
    """

    documents: int
    identity_rows: int
    pseudonyms: tuple[str, ...]
    fields: frozenset[str]
    keys_found: int = 0


def convert(ctx: Context, documents: Sequence[Mapping[str, Any]], secret: bytes) -> Flow[Converted]:
    """Store plaintext ``documents`` in the split form, as the facade's insert would have.

    See the module docstring for the order of the steps and what a crash at each leaves.
    Documents that already have a ``_pseudonym`` are left alone (another run converted them).

    Raises:
        WriteFailed: an identity row was refused for another reason than being there already
            (a unique index on an identity field: two plaintext documents share a value).
        KeyUnavailable: a data key cannot be made (wrong master key, KMS unreachable).
    """
    plain = [d for d in documents if PSEUDONYM_FIELD not in d]
    if not plain:
        return Converted(0, 0, (), frozenset())
    pairs, pseudonyms, fields = yield from _store_identities(ctx, plain, secret)
    # by ``_id`` alone (a server finds it by index): the pseudonym is the row's own, so a row a
    # concurrent run converted first is rewritten with the same content
    rewrites = tuple(({"_id": clinical["_id"]}, clinical) for _, clinical in pairs)
    done = yield from _rewrite(rewrites)
    yield from touched(ctx, written=done)
    return Converted(done, len(pairs), pseudonyms, fields)


def copy(
    ctx: Context, documents: Sequence[Mapping[str, Any]], secret: bytes, *, look_up: bool = True
) -> Flow[Converted]:
    """Store plaintext ``documents`` in the split form in *other* collections, by inserts only.

    The halves, keys and sealed rows are ``convert``'s; the clinical rows are inserted (the
    context's collections are the new ones, the source is only read), which a server does at
    the cost of a write, where ``convert``'s rewrite makes FerretDB 1.x scan. The crash points
    are ``convert``'s 1 to 3; at point 4 some clinical rows of the batch are there, and the
    next run's insert meets them (duplicate ``_id``, the source's own) and leaves them as they
    are: they hold the same content, since the pseudonym is derived from the ``_id``.

    ``look_up``: the subjects' keys are looked up in the key vault (one request) before any
    is made; ``False`` when the caller knows no run got this far, since on FerretDB 1.x that
    lookup scans the key vault, which grows by a key per document. Erased subjects are looked
    for either way.

    Raises:
        WriteFailed: a row was refused for another reason than being there already.
        KeyUnavailable: a data key cannot be made (wrong master key, KMS unreachable).
        SubjectErased: a subject of the batch was erased (its pseudonym has a tombstone).
    """
    plain = [d for d in documents if PSEUDONYM_FIELD not in d]
    if not plain:
        return Converted(0, 0, (), frozenset())
    ring = ctx.crypto
    names = tuple(pseudonym_of(secret, d["_id"]) for d in plain)
    found: list[Document] = []
    if ring is not None:
        if look_up:
            found = yield from LoadKeys(names)
            ring.add(found)
        absent = ring.missing(names)
        if absent and (yield from FindErased(tuple(absent))):
            raise SubjectErased(
                f"{ctx.schema.model}: data subjects of the batch were erased; their identity "
                "cannot be written again under the same pseudonym: remove those documents from "
                "the source (the erasure covers them) and run again"
            )
    pairs, pseudonyms, fields = yield from _store_identities(ctx, plain, secret, fresh=True)
    rows = tuple(clinical for _, clinical in pairs)
    outcome = yield from Insert(Side.CLINICAL, rows, False)
    _refuse(ctx, [f for f in outcome.failures if f.code != DUPLICATE_KEY], "clinical")
    yield from touched(ctx, written=len(rows))
    return Converted(len(rows), len(pairs), pseudonyms, fields, keys_found=len(found))


def _refuse(ctx: Context, refused: Sequence[WriteFailure], side: str) -> None:
    """A batch's rows refused for another reason than a re-run meeting its own rows."""
    if refused:
        raise WriteFailed(
            f"{ctx.schema.model}: {len(refused)} {side} row(s) of the batch were refused "
            f"(code {refused[0].code}): a unique index on a {side} field may see two "
            "documents with one value; resolve the duplicates in the source and run again",
            refused[0].code,
        )


def _store_identities(
    ctx: Context, plain: Sequence[Mapping[str, Any]], secret: bytes, *, fresh: bool = False
) -> Flow[tuple[list[tuple[Document, Document]], tuple[str, ...], frozenset[str]]]:
    """Split ``plain``, store the subjects' keys and sealed identity rows; the halves.

    An identity row an interrupted run wrote already is written afresh (the same subject).
    ``fresh``: the caller looked the keys up (or knows there are none): ``seal`` makes the
    missing ones without a lookup of its own.
    """
    pairs = [
        split_for_storage(d, ctx.schema, pseudonym_of(secret, d["_id"]), ctx.new_revision())
        for d in plain
    ]
    pseudonyms = tuple(identity["_id"] for identity, _ in pairs)
    fields = frozenset(name for identity, _ in pairs for name in identity_values(identity))
    # each subject in the region the resolver gives its document, as an insert places it:
    # its identity row and key go to that region's stores (a re-run decides the same)
    ctx = yield from placed(ctx, plain, pairs)
    yield from intends(ctx, pseudonyms, fields, "create")
    # not ``fresh`` unless looked up: a killed run may have stored these keys already
    sealed = yield from seal(ctx, [identity for identity, _ in pairs], fresh=fresh)
    outcome = yield from Insert(Side.IDENTITY, tuple(sealed), False)
    again = [f for f in outcome.failures if f.code == DUPLICATE_KEY]
    _refuse(ctx, [f for f in outcome.failures if f.code != DUPLICATE_KEY], "identity")
    for failure in again:
        # the row of an earlier, interrupted run: the same subject, written afresh
        row = sealed[failure.index]
        yield Replace(Side.IDENTITY, {"_id": row["_id"]}, row, True)
        yield from cache.forget_rows(ctx, (row["_id"],))
    yield from touched(ctx, pseudonyms, fields)
    return pairs, pseudonyms, fields


REWRITE_CHUNK = 50
"""Most rows one bulk rewrite carries: FerretDB 1.24's time per statement grows with the
statements of an update command (measured on this project's CI machine: 50 in 0.6 s, 64 in
1.4 s, 80 in 2.6 s, 100 not answered within 90 s); 50 keeps it linear."""


def _rewrite(pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> Flow[int]:
    """Replace clinical rows, ``REWRITE_CHUNK`` per request; the rows matched."""
    done = 0
    for start in range(0, len(pairs), REWRITE_CHUNK):
        chunk = tuple(pairs[start : start + REWRITE_CHUNK])
        done += yield from ReplaceMany(Side.CLINICAL, chunk)
    return done


def restore(
    ctx: Context, rows: Sequence[Mapping[str, Any]], *, shred: bool = False
) -> Flow[Converted]:
    """Put migrated ``rows`` back in plaintext form: joined, then their identity rows deleted.

    The plaintext document is ``join``'s, so field order and BSON types are the stored
    document's own (the order the migration recorded included). A row whose subject was erased
    (its key shredded) is restored without identity fields, as the application reads it.
    ``shred``: the subjects' data keys are destroyed (with tombstones) after the rewrite and
    before their identity rows go, so a key is never left without its row.

    Raises:
        KeyUnavailable: a data key is missing without a tombstone, or the master key is wrong.
    """
    linked = [r for r in rows if isinstance(r.get(PSEUDONYM_FIELD), str)]
    if not linked:
        return Converted(0, 0, (), frozenset())
    pseudonyms = tuple(r[PSEUDONYM_FIELD] for r in linked)
    identities = yield from fetch_identities(ctx, pseudonyms)
    fields = frozenset(n for i in identities.values() for n in identity_values(i))
    yield from intends(ctx, pseudonyms, fields, "update")
    plain = [join(r, identities.get(r[PSEUDONYM_FIELD]), ctx.schema) for r in linked]
    yield from touched(ctx, pseudonyms, fields)
    rewrites = tuple(({"_id": r["_id"]}, d) for r, d in zip(linked, plain, strict=True))
    done = yield from _rewrite(rewrites)
    yield from touched(ctx, written=done)
    if shred:
        yield from shred_deleted(ctx, pseudonyms)
    deleted: int = yield from Delete(Side.IDENTITY, {"_id": {"$in": list(pseudonyms)}}, multi=True)
    yield from cache.forget_rows(ctx, pseudonyms)
    return Converted(done, deleted, pseudonyms, fields)


def rejoin(
    ctx: Context,
    rows: Sequence[Mapping[str, Any]],
    stored: Mapping[str, Document] | None = None,
    keys: Sequence[Document] = (),
) -> Flow[list[Document]]:
    """The plaintext documents of migrated ``rows``, for a caller that writes them elsewhere.

    ``restore``'s join, without its rewrite: the split collections are only read, so a leave
    into a new collection is made of inserts. A row whose subject was erased comes back
    without identity fields, as the application reads it.

    ``stored``: the identity rows as stored, by pseudonym, read by the caller in one pass
    (on FerretDB 1.x a lookup by ``_id`` list scans the collection); ``keys``: their data key
    documents, read likewise, put in the key ring before the rows are unsealed. Either way
    the values are decrypted here, inside the audited flow.

    Raises:
        KeyUnavailable: a data key is missing without a tombstone, or the master key is wrong.
    """
    linked = [r for r in rows if isinstance(r.get(PSEUDONYM_FIELD), str)]
    if not linked:
        return []
    pseudonyms = tuple(r[PSEUDONYM_FIELD] for r in linked)
    if stored is None:
        identities = yield from fetch_identities(ctx, pseudonyms)
    else:
        if keys and ctx.crypto is not None:
            ctx.crypto.add(keys)
        held = [stored[p] for p in dict.fromkeys(pseudonyms) if p in stored]
        identities = {row["_id"]: row for row in (yield from unseal(ctx, held))}
    fields = frozenset(n for i in identities.values() for n in identity_values(i))
    if ctx.residency is not None:  # rows read as stored: the region is privata's, not the app's
        linked = [{k: v for k, v in r.items() if k != REGION_FIELD} for r in linked]
    plain = [join(r, identities.get(r[PSEUDONYM_FIELD]), ctx.schema) for r in linked]
    yield from touched(ctx, pseudonyms, fields, effect="read")
    return plain


def every_key(ctx: Context) -> Flow[list[Document]]:
    """Every data key document of the key vault, in one read (wrapped, as stored)."""
    found: list[Document] = yield from LoadKeys(None)
    return found


def load_subject_keys(ctx: Context, pseudonyms: Sequence[str]) -> Flow[int]:
    """Read the data keys of ``pseudonyms`` into the key ring in one request; the keys found.

    For a caller about to join many batches: on FerretDB 1.x each key lookup scans the key
    vault, so one lookup for several batches costs a scan instead of one per batch. The keys
    stay wrapped until used, as every loaded key.
    """
    ring = ctx.crypto
    wanted = ring.missing(pseudonyms) if ring is not None else []
    if ring is None or not wanted:
        return 0
    found: list[Document] = yield from LoadKeys(tuple(wanted))
    ring.add(found)
    return len(found)


def remove_orphans(ctx: Context, *, shred: bool = False) -> Flow[int]:
    """Delete the identity rows left once no clinical row is migrated; returns their count.

    A restore killed between a batch's rewrite and its delete leaves identity rows that no
    clinical row links to; when every clinical row is plaintext again, every identity row left
    is such a row. While a row is still migrated nothing is deleted (its run is not finished).
    ``shred``: their data keys are destroyed first, as ``restore`` does.
    """
    if (yield from Count(Side.CLINICAL, MIGRATED)):
        return 0
    deleted = 0
    while True:
        rows: list[Document] = yield from FetchAll(
            Side.IDENTITY, Query({}, projection={"_id": 1}, limit=ctx.batch_size)
        )
        if not rows:
            return deleted
        names = [r["_id"] for r in rows]
        if shred:
            yield from shred_deleted(ctx, [n for n in names if is_pseudonym(n)])
        deleted += yield from Delete(Side.IDENTITY, {"_id": {"$in": names}}, multi=True)
        yield from cache.forget_rows(ctx, names)


def forget_migration(ctx: Context) -> Flow[None]:
    """Delete the data key of the migration's secret (its pseudonyms can no longer be derived)."""
    yield DiscardKeys((migration_key_name(ctx.database, ctx.schema.collection),))
