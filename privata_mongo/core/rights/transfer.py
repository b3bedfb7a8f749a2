"""Moving a data subject's identity data to another region: an explicit, audited right.

A subject's region is decided once, at creation (``core.residency``); no update moves it. An
operator moves it with ``Rights.transfer_region`` (GDPR Chapter V: a transfer is an act with
a legal basis, recorded), whose flow is this one: find the subject, then ask for the move
(``MoveSubject``), which ``privata_mongo.transfer`` answers in an order that never loses
data: the data key is re-wrapped by the target region's master key and stored in its vault,
the identity rows are copied there, the clinical rows are re-pointed (or copied to the target
region's clinical store and verified, when it has one), and only then are the source
region's rows and key deleted (without tombstone: the subject was moved, not erased).
A crash part-way leaves copies in both regions, and running the transfer again completes it.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from privata_mongo.core.ops import Op
from privata_mongo.core.rights.access import Subject, locate
from privata_mongo.core.rights.datamap import DataMap

__all__ = ["MoveSubject", "Transfer", "transfer"]


@dataclass(frozen=True, slots=True)
class Transfer:
    """What a transfer did.

    Attributes:
        pseudonym: the subject moved.
        sources: the regions its identity data was in (empty: it already was in ``target``).
        target: the region it is in now.
        rows: identity rows moved (one per model holding the subject).
    """

    pseudonym: str
    sources: tuple[str, ...]
    target: str
    rows: int


@dataclass(frozen=True, slots=True)
class MoveSubject(Op[Transfer]):
    """Request: move the identity data of ``pseudonym`` to region ``target``."""

    pseudonym: str
    target: str


def transfer(data_map: DataMap, subject: Subject, target: str) -> Generator[Any, Any, Transfer]:
    """Move ``subject``'s identity data to region ``target``.

    Raises:
        UnknownSubject: the subject cannot be found.
        UnknownRegion: ``target`` is not a configured region.
    """
    pseudonym = yield from locate(data_map, subject)
    return (yield from MoveSubject(pseudonym, target))
