"""Raw-storage scans: no classified value may be stored in plaintext, anywhere.

The classified values are learned from the storage itself: every identity row is decrypted
with the configured master key (``privata_mongo.encryption.unseal_row``). Then every document
of every collection of the database (and the key vault) is walked, and each string or date
equal to one of those values is reported, by collection and path. A structural check comes
with it: an identity row holds nothing but its pseudonym, revision, blind index terms and one
sealed value.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Any

from privata_mongo.config import current
from privata_mongo.core.crypto import INDEX_KEY_NAME
from privata_mongo.core.schema import LEASE_FIELD, VERSION_FIELD
from privata_mongo.encryption import unseal_row

__all__ = ["IDENTITY_ROW_KEYS", "classified_values", "mentions", "plaintext_leaks"]

IDENTITY_ROW_KEYS = frozenset({"_id", "_rev", "_idx", "_enc", LEASE_FIELD, VERSION_FIELD})
MIN_LENGTH = 4
"""Shorter strings ("A", "B+") occur in clinical data by coincidence; they are not scanned."""


def mentions(text: str, value: str) -> bool:
    """Whether ``text`` shows ``value`` (case-insensitive) as a word, not inside a longer one.

    A short name ("Ada") is also a run of hex digits: a random pseudonym, revision or version
    stamp spells it now and then ("…c3fada…"), which is no leak. A value shown is delimited
    (quotes, spaces, punctuation), as in ``{"first_name": "Ada"}`` or an error message.
    """
    pattern = rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _leaves(child, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for index, child in enumerate(value):
            yield from _leaves(child, f"{path}.{index}")
    else:
        yield path, value


def _scanned(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) >= MIN_LENGTH
    return isinstance(value, datetime.datetime)


def classified_values(client: Any, database: Any) -> tuple[set[Any], list[str], list[str]]:
    """The scannable values in the identity rows of ``database``, malformed rows, pseudonyms."""
    values: set[Any] = set()
    malformed: list[str] = []
    pseudonyms: list[str] = []
    suffix = current().identity_suffix
    for name in database.list_collection_names():
        if not name.endswith(suffix):
            continue
        for row in database[name].find():
            extra = set(row) - IDENTITY_ROW_KEYS
            if extra:
                malformed.append(f"{name}: identity row with clear fields {sorted(extra)}")
                continue
            pseudonyms.append(row["_id"])
            plain = unseal_row(database, row)
            values.update(v for _, v in _leaves(plain) if _scanned(v))
    return values, malformed, pseudonyms


def plaintext_leaks(client: Any, database: Any) -> list[str]:
    """Where a classified value is stored in plaintext (``collection: path``); empty is good.

    ``client`` is the raw client of ``database`` (it holds the key vault).
    """
    values, leaks, pseudonyms = classified_values(client, database)
    if not values:
        return leaks
    vault_db, _, vault_name = current().key_vault_namespace.partition(".")
    places: list[tuple[str, Any, dict[str, Any]]] = [
        (name, database[name], {}) for name in database.list_collection_names()
    ]
    # the key vault is shared by every database of the server: this database's keys only
    places.append(
        (
            current().key_vault_namespace,
            client[vault_db][vault_name],
            {"keyAltNames": {"$in": [*pseudonyms, INDEX_KEY_NAME]}},
        )
    )
    for label, collection, selector in places:
        for document in collection.find(selector):
            for path, value in _leaves(document):
                if _scanned(value) and value in values:
                    leaks.append(f"{label}: {path}")
    return leaks
