"""Pseudonyms: the only link between a clinical document and its identity document.

A pseudonym is ``pseu_`` followed by 32 lowercase hex digits (128 random bits). It carries no
information about the subject; the randomness comes from the caller (``secrets`` in production,
a seeded source in tests), because the core draws none itself.
"""

from __future__ import annotations

import re

__all__ = ["PSEUDONYM_PATTERN", "format_pseudonym", "is_pseudonym"]

PSEUDONYM_PATTERN = re.compile(r"\Apseu_[0-9a-f]{32}\Z")


def format_pseudonym(random_bytes: bytes) -> str:
    """Build a pseudonym from 16 random bytes.

    Raises:
        ValueError: not exactly 16 bytes (fewer would weaken unlinkability).
    """
    if len(random_bytes) != 16:
        raise ValueError("a pseudonym needs exactly 16 random bytes")
    return "pseu_" + random_bytes.hex()


def is_pseudonym(value: object) -> bool:
    """Whether ``value`` has the exact shape of a pseudonym."""
    return isinstance(value, str) and PSEUDONYM_PATTERN.match(value) is not None
