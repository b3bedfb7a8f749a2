"""Index and collection management over a split collection.

An index on identity fields is created on the identity collection (under the name the
application asked for, so ``index_information`` looks native); an index on clinical fields on
the clinical collection. An index mixing both sides cannot exist in either collection and is
refused with a ``ConfigurationError`` when it is declared. The link index on the clinical
collection is internal and never listed.

When identity rows are encrypted, an index on an identity field is built on its blind index
terms (``_idx.<field>``) and listed under the field's own name. A field without a blind index
(not searchable) cannot be served by an index: a unique index on it is refused, any other is
created (so the ODMs see the indexes they declared) with a warning that it serves no query.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from privata_mongo.core.ops import CreateIndex, Drop, DropIndex, Flow, IndexInformation
from privata_mongo.core.schema import BLIND_FIELD, PSEUDONYM_FIELD, Side
from privata_mongo.errors import ConfigurationError

from .context import Context

__all__ = [
    "LINK_INDEX",
    "create_index",
    "drop",
    "drop_index",
    "drop_indexes",
    "ensure_link_index",
    "index_information",
    "index_name",
]

logger = logging.getLogger(__name__)

LINK_INDEX = f"{PSEUDONYM_FIELD}_1"
_UNSEARCHABLE_KINDS = frozenset({"text", "2d", "2dsphere", "hashed", "geoHaystack"})


def index_name(keys: tuple[tuple[str, Any], ...]) -> str:
    """The name the server would give an index on ``keys``."""
    return "_".join(f"{field}_{direction}" for field, direction in keys)


def ensure_link_index(ctx: Context) -> Flow[None]:
    """The clinical collection's index on the pseudonym link, used by every identity probe."""
    yield CreateIndex(Side.CLINICAL, ((PSEUDONYM_FIELD, 1),), {"name": LINK_INDEX})


def create_index(
    ctx: Context, keys: tuple[tuple[str, Any], ...], options: Mapping[str, Any]
) -> Flow[str]:
    """Create an index on the side that holds its fields.

    Raises:
        ConfigurationError: the index mixes identity and clinical fields, or asks the identity
            collection for an index kind equality lookups cannot serve (text, geo, hashed).
    """
    schema = ctx.schema
    fields = [f for f, _ in keys if f != "_cls"]
    identity = sorted({f for f in fields if schema.side_of(f) is Side.IDENTITY})
    clinical = sorted({f for f in fields if schema.side_of(f) is Side.CLINICAL})
    if not identity:
        name: str = yield from CreateIndex(Side.CLINICAL, keys, options)
        return name
    if clinical:
        raise ConfigurationError(
            f"{schema.model}: an index on {identity} (identity) together with {clinical} "
            "(clinical) cannot exist, the two are stored apart; index them separately, or "
            "mark the fields alike"
        )
    if any(str(direction) in _UNSEARCHABLE_KINDS for _, direction in keys):
        raise ConfigurationError(
            f"{schema.model}: text, geo and hashed indexes cannot be built on identity "
            f"fields {identity}; search them by equality or in the process instead"
        )
    named = {**options, "name": options.get("name") or index_name(keys)}
    identity_keys = tuple((f, d) for f, d in keys if f != "_cls")
    if schema.sealed:
        blind = [f for f in identity if f not in schema.searchable]
        if blind and options.get("unique"):
            raise ConfigurationError(
                f"{schema.model}: a unique index on {blind} needs a blind index, and these "
                "identity fields are not searchable; declare them searchable "
                "(searchable=True on the field, or meta privacy 'searchable')"
            )
        if blind:
            logger.warning(
                "%s: the index on the non-searchable identity field(s) %s is built on blind "
                "index terms they do not have; it serves no query (declare them searchable)",
                schema.model,
                ", ".join(blind),
            )
        identity_keys = tuple((f"{BLIND_FIELD}.{f}", d) for f, d in identity_keys)
    name = yield from CreateIndex(Side.IDENTITY, identity_keys, named)
    return name


def index_information(
    ctx: Context, options: Mapping[str, Any] | None = None
) -> Flow[dict[str, Any]]:
    """Both sides' indexes as one native-looking mapping, internal ones left out.

    ``options`` (``session``, ``comment``) concern the whole listing: both sides get them.
    """
    options = options or {}
    clinical: dict[str, Any] = yield from IndexInformation(Side.CLINICAL, options)
    identity: dict[str, Any] = yield from IndexInformation(Side.IDENTITY, options)
    merged = {k: v for k, v in clinical.items() if k != LINK_INDEX}
    merged.update({k: _logical(v) for k, v in identity.items() if k != "_id_"})
    return merged


def _logical(info: Any) -> Any:
    """Index information with blind index paths shown as the fields they index."""
    if not isinstance(info, Mapping) or "key" not in info:
        return info
    prefix = f"{BLIND_FIELD}."
    key = [(f.removeprefix(prefix) if isinstance(f, str) else f, d) for f, d in info["key"]]
    return {**info, "key": key}


def drop_index(ctx: Context, name: str, options: Mapping[str, Any] | None = None) -> Flow[None]:
    """Drop an index from whichever side holds it (the server reports an unknown name).

    The drop carries the application's options; the lookup the ones about the operation.
    """
    options = options or {}
    identity: dict[str, Any] = yield from IndexInformation(Side.IDENTITY, _shared(options))
    side = Side.IDENTITY if name in identity and name != "_id_" else Side.CLINICAL
    yield DropIndex(side, name, options)


def drop_indexes(ctx: Context, options: Mapping[str, Any] | None = None) -> Flow[None]:
    """Drop every index the application created; the internal link index is rebuilt."""
    options = options or {}
    yield DropIndex(Side.IDENTITY, "*", options)
    yield DropIndex(Side.CLINICAL, "*", options)
    yield from ensure_link_index(ctx)


def drop(ctx: Context, options: Mapping[str, Any] | None = None) -> Flow[None]:
    """Drop both collections, identity first.

    The clinical collection is the application's: it gets every option (``encrypted_fields``
    included); the identity collection the ones about the operation.
    """
    options = options or {}
    yield Drop(Side.IDENTITY, _shared(options))
    yield Drop(Side.CLINICAL, options)


def _shared(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: options[k] for k in ("session", "comment") if k in options}
