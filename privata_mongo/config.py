"""Process-wide settings, set once at start-up with ``privata_mongo.configure``.

Settings are a frozen value replaced as a whole, so a reader never sees half of an update.
Per-model choices (``meta = {"privacy": {...}}``) take precedence over these.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from privata_mongo.core.classify import DEFAULT_PII_NAMES, Policy
from privata_mongo.errors import ConfigurationError

__all__ = ["Settings", "configure", "current"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``configure`` can change.

    Attributes:
        classification: ``"Model.field"`` or ``"field"`` → ``True`` (identity) / ``False``.
        name_defaults: field names treated as identity data by default.
        identity_suffix: identity collection name = clinical name + this suffix.
        scan_limit: most identity rows one query may read into the process.
        batch_size: clinical documents joined per identity read.
    """

    classification: Mapping[str, bool] = field(default_factory=dict)
    name_defaults: frozenset[str] = DEFAULT_PII_NAMES
    identity_suffix: str = "__identity"
    scan_limit: int = 10_000
    batch_size: int = 1_000

    def policy(self) -> Policy:
        """The classification policy these settings describe."""
        return Policy(
            mapping=dict(self.classification),
            name_defaults=self.name_defaults,
            identity_suffix=self.identity_suffix,
            scan_limit=self.scan_limit,
        )


_lock = threading.Lock()
_current = Settings()


def current() -> Settings:
    """The settings in force."""
    return _current


def configure(**changes: Any) -> Settings:
    """Change settings for the whole process; returns the new settings.

    Configure before models are first used: a collection's schema is compiled once.

    Raises:
        ConfigurationError: an unknown setting or a value of the wrong shape.
    """
    global _current
    known = {f.name for f in fields(Settings)}
    unknown = set(changes) - known
    if unknown:
        raise ConfigurationError(
            f"unknown settings {sorted(unknown)}; known settings: {sorted(known)}"
        )
    for name in ("scan_limit", "batch_size"):
        value = changes.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigurationError(f"{name} must be a positive integer")
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
    suffix = changes.get("identity_suffix", "__identity")
    if not isinstance(suffix, str) or not suffix:
        raise ConfigurationError("identity_suffix must be a non-empty string")
    with _lock:
        _current = replace(_current, **changes)
        return _current
