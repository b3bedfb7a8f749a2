"""Which rights may answer with part of the data, and what their records say of it.

Access and export (Arts. 15 and 20) only read: inside an application's ``partial_results``
block they answer with what the reachable regions hold, rather than nothing, and say so (the
``Access`` and the block name the regions left out, and so does each ``access`` or ``export``
record). Every other right changes data (erasure, rectification, restriction, transfer …) and
stays all or nothing: its reads never leave a region out (``whole_results``), so an
unreachable region raises ``RegionUnavailable`` and nothing is half done.

A right answering partially gets a ``partial_results`` block of its own, so its records name
the regions its own reads left out, not those of the application's earlier reads; the regions
are added to the application's block when it ends. A right that calls another (``export``
finding the subject first) shares the outer right's block.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from privata_mongo.context import (
    PartialResults,
    partial_allowed,
    partial_results,
    whole_results,
)
from privata_mongo.core.rights.access import ACCESS, EXPORT, Access, Record

__all__ = [
    "PARTIAL_RIGHTS",
    "Answering",
    "answering",
    "closing_records",
    "left_out_now",
    "partially",
]


@dataclass(slots=True)
class Answering:
    """The regions a right's reads left out, and those its records already named."""

    left_out: PartialResults
    recorded: set[str] = field(default_factory=set)

    @property
    def regions(self) -> tuple[str, ...]:
        """Every region left out so far, sorted."""
        return tuple(sorted(self.left_out.regions))

    @property
    def unrecorded(self) -> tuple[str, ...]:
        """Regions left out after the right's last record."""
        return tuple(sorted(self.left_out.regions - self.recorded))


_answering: ContextVar[Answering | None] = ContextVar("privata_answering", default=None)


@contextmanager
def answering(*, partial: bool) -> Iterator[Answering | None]:
    """The block of one right: partial results if the right and the caller allow them.

    Yields the right's ``Answering`` (``None``: no partial results, an unreachable region
    raises).
    """
    current = _answering.get()
    if current is not None and partial:  # inside a right answering partially already
        yield current
        return
    outer = partial_allowed()
    if outer is None:
        yield None
        return
    if not partial:
        token = _answering.set(None)
        try:
            with whole_results():
                yield None
        finally:
            _answering.reset(token)
        return
    with partial_results() as inner:
        made = Answering(inner)
        token = _answering.set(made)
        try:
            yield made
        finally:
            _answering.reset(token)
            outer.regions.update(inner.regions)


def left_out_now() -> tuple[str, ...]:
    """The regions the right being answered has left out, for the record appended now."""
    current = _answering.get()
    if current is None:
        return ()
    current.recorded.update(current.left_out.regions)
    return current.regions


PARTIAL_RIGHTS = frozenset({"locate", "map", ACCESS, EXPORT})
"""The rights that only read, and so may answer partially (the others are all or nothing)."""


def partially(held: Access, scope: Answering | None) -> Access:
    """``held`` naming the regions its answer left out, if any."""
    if scope is None or not scope.regions:
        return held
    return replace(held, missing_regions=scope.regions)


def closing_records(
    operation: str, pseudonym: str, counts: Mapping[str, int]
) -> Generator[Any, Any, None]:
    """One more record per model, naming the regions a right left out after its records.

    An export is recorded before its first document is written, and a region may be found
    unreachable only when its documents are read: this record says the export was partial
    (no fields, no documents: the first record counted them).
    """
    for model in counts:
        yield Record(operation, model, pseudonym, frozenset(), 0)
