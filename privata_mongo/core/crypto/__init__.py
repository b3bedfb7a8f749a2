"""Internal. The core's cryptography: the key ring, the blind index and the key flows.

``ring`` holds data key documents in memory and runs libmongocrypt over them; ``blind`` computes
the blind index terms of searchable fields; ``keys`` holds the flows that load, create, shred
and re-wrap data keys and seal and unseal identity rows. Nothing here performs I/O: what needs
the key vault is yielded as a request (``core.ops``) for a driver to serve.
"""

from __future__ import annotations

from privata_mongo.core.crypto.blind import (
    INDEX_KEY_NAME,
    Blind,
    blind_term,
    blind_terms,
    legacy_blind_term,
    normalise_value,
)
from privata_mongo.core.crypto.ring import ALGORITHM, KEY_CHECK_NAME, KeyRing, key_id_bytes, rewrap

__all__ = [
    "ALGORITHM",
    "INDEX_KEY_NAME",
    "KEY_CHECK_NAME",
    "Blind",
    "KeyRing",
    "blind_term",
    "blind_terms",
    "key_id_bytes",
    "legacy_blind_term",
    "normalise_value",
    "rewrap",
]
