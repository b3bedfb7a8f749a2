"""Internal. The core's audit: what a record holds, how records are chained, and the wrapper.

``records`` holds the record type and its builder, ``chain`` the keyed chain (links,
checkpoints, the ledger, verification): pure data and functions, imported by every layer that
stores or verifies records. ``wrapper`` holds ``audited``, which runs a flow and turns what the
flow declares (``core.ops.Touched`` and the subjects of each ``Emit``) into records; it imports
the flows' vocabulary, which imports ``records``, so it is imported from its own module and not
re-exported here.
"""

from privata_mongo.core.audit.chain import (
    CHECKPOINT_KIND,
    GENESIS,
    LEDGER_ID,
    LEDGER_KIND,
    ChainProblem,
    canonical,
    checkpoint,
    checkpoint_id,
    digest,
    ledger,
    ledger_streams,
    link,
    verify_chain,
)
from privata_mongo.core.audit.records import (
    MAX_SUBJECTS,
    SEVERITY_BREAK_GLASS,
    AccessContext,
    AuditRecord,
    records_for,
)

__all__ = [
    "CHECKPOINT_KIND",
    "GENESIS",
    "LEDGER_ID",
    "LEDGER_KIND",
    "MAX_SUBJECTS",
    "SEVERITY_BREAK_GLASS",
    "AccessContext",
    "AuditRecord",
    "ChainProblem",
    "canonical",
    "checkpoint",
    "checkpoint_id",
    "digest",
    "ledger",
    "ledger_streams",
    "link",
    "records_for",
    "verify_chain",
]
