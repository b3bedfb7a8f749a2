"""Data residency: the region of each subject's identity data, and the router sending there.

See ``docs/residency.md``. A region has its own identity store and key vault (and its own master
key), so EU subjects' identity rows and data keys never leave EU infrastructure; optionally
its own clinical store too (``Residency.clinical``), holding its subjects' clinical rows
(``clinical``), else they stay in the application's store. Each clinical row records its
subject's region next to the pseudonym (``REGION_FIELD``), written at creation from the
region the configured resolver decided (``region_of``, a pure function of the document), and
never changed by an update.

The flows do not know about regions beyond that: ``regional`` wraps a flow and routes its
requests. It learns where subjects live from what the flow states (``Located``, at an insert)
and from the clinical rows the flow reads (their ``REGION_FIELD``, added to projections that
read the pseudonym, and stripped before the flow sees the rows), so a join reads each batch's
identity rows with one request per region holding some of them. A request it cannot attribute to
known subjects (an identity probe on a searchable field, a count of identity rows) is asked of
every region and the answers merged: round trips grow with the number of regions, never with the
number of documents, and the clinical side keeps doing ordering, skip, limit, counts and
``distinct`` natively (with clinical stores in several regions, ``clinical`` asks each store
and merges the answers as one store would have given them). Keys that belong to no subject
(the blind index key, the audit chain keys) stay in the base key vault. ``placement`` holds
the regions and ``region_of``; ``router`` the router; ``requests`` what the router knows of
each request and how the answers of several regions merge; ``clinical`` the clinical stores.
"""

from __future__ import annotations

from privata_mongo.core.residency.placement import Residency, Wrapping, region_of
from privata_mongo.core.residency.router import regional

__all__ = ["Residency", "Wrapping", "region_of", "regional"]
