"""Where a new data subject lives: the regions as the core sees them, and ``region_of``.

A pure function of the document (and of the regions an operation is restricted to), run by
the insert flow before anything is written, so an unknown region fails with nothing stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from privata_mongo.errors import UnknownRegion

__all__ = ["Residency", "Wrapping", "region_of"]


@dataclass(frozen=True, slots=True)
class Wrapping:
    """The master key new data keys of a region's subjects are wrapped with.

    Attributes:
        provider: libmongocrypt's provider name (``local:eu``, ``aws:eu`` …), one per region,
            so a key of an EU subject is never wrapped by a US master key.
        master_key: the provider's master key document (``None`` for a local key).
    """

    provider: str
    master_key: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Residency:
    """The regions of a deployment, as the core sees them: names, resolver and wrapping.

    Attributes:
        regions: the configured region names.
        default: the region of a subject the resolver does not place.
        field_name: a field of the logical document that decides the region (e.g. ``country``).
        values: the region of each value of ``field_name`` (a value that is itself a region name
            needs no entry).
        resolver: a callable deciding the region of a document (``None``: the default), used
            instead of ``field_name``.
        wrapping: how each region's new data keys are wrapped.
        pinned: the regions the operation is restricted to (``within_regions``): its
            queries see only their subjects' documents and touch only their stores (``()``:
            every region).
        partial: the operation's reads may leave out a region that cannot be reached
            (``partial_results``): its subjects' documents come without identity fields, and
            identity conditions match none of them.
        skipped: told each region left out, so the application knows the result is partial.
        clinical: the regions with a clinical store of their own (their subjects' clinical
            rows live there; the other regions' stay in the application's store).
        model: the model the operation is on (named in the errors of the router).
        identity_collection: that model's identity collection (a ``$lookup`` into it runs
            in each region's clinical store against the region's own).
    """

    regions: tuple[str, ...]
    default: str
    field_name: str | None = None
    values: Mapping[Any, str] = field(default_factory=dict)
    resolver: Callable[[Mapping[str, Any]], str | None] | None = None
    wrapping: Mapping[str, Wrapping] = field(default_factory=dict)
    pinned: tuple[str, ...] = ()
    partial: bool = False
    skipped: Callable[[str], None] | None = None
    clinical: frozenset[str] = frozenset()
    model: str = ""
    identity_collection: str = ""

    @property
    def asked(self) -> tuple[str, ...]:
        """The regions a request that names no subject is asked of."""
        return self.pinned or self.regions


def region_of(residency: Residency, document: Mapping[str, Any]) -> str:
    """The region a new data subject's identity data is stored in.

    Raises:
        UnknownRegion: the resolver named a region that is not configured (the message names
            the configured regions, never the document's value).
    """
    if residency.resolver is not None:
        chosen = residency.resolver(document)
        source = "region_resolver"
    elif residency.field_name is not None:
        value = document.get(residency.field_name)
        chosen = residency.values.get(value) if _hashable(value) else None
        if chosen is None and isinstance(value, str) and value in residency.regions:
            chosen = value
        source = f"region_field '{residency.field_name}'"
    else:
        chosen, source = None, ""
    if chosen is None:
        chosen = residency.pinned[0] if len(residency.pinned) == 1 else residency.default
    if residency.pinned and chosen not in residency.pinned:
        raise UnknownRegion(
            f"{source or 'default_region'} placed a document outside the regions the "
            f"operation is restricted to ({', '.join(residency.pinned)}); create it outside "
            "the within_regions block, or in one of those regions"
        )
    if chosen not in residency.regions:
        raise UnknownRegion(
            f"{source} placed a document in a region that is not configured; configured "
            f"regions: {', '.join(residency.regions)} (map the value with region_values, or "
            "return one of these names)"
        )
    return chosen


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
