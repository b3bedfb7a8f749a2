"""Internal. The core's audit: what a record holds and how records are chained, and the wrapper.

``records`` holds the record type, its builder and the hash chain: pure data and functions,
imported by every layer that stores or verifies records. ``wrapper`` holds ``audited``, which
runs a flow and turns what the flow declares (``core.ops.Touched`` and the subjects of each
``Emit``) into records; it imports the flows' vocabulary, which imports ``records``, so it is
imported from its own module and not re-exported here.
"""

from privata_mongo.core.audit.records import (
    GENESIS,
    MAX_SUBJECTS,
    AccessContext,
    AuditRecord,
    ChainProblem,
    canonical,
    digest,
    link,
    records_for,
    verify_chain,
)

__all__ = [
    "GENESIS",
    "MAX_SUBJECTS",
    "AccessContext",
    "AuditRecord",
    "ChainProblem",
    "canonical",
    "digest",
    "link",
    "records_for",
    "verify_chain",
]
