"""privata_mongo: GDPR/HIPAA-ready MongoDB for mongoengine and Beanie apps, by changing imports.

Each document of a model that holds personal data is stored split: identity fields in an
identity collection keyed by a pseudonym, everything else in the clinical collection under the
native name and id. Reads join the halves back, so applications see native documents.
"""

from __future__ import annotations

from privata_mongo.config import Settings, configure
from privata_mongo.context import AccessContext, access_context
from privata_mongo.errors import (
    AuditUnavailable,
    ConfigurationError,
    KeyUnavailable,
    MissingAccessContext,
    MissingPurpose,
    PrivataError,
    ProcessingRestricted,
    SubjectErased,
    UnknownSubject,
    UnsupportedQuery,
)
from privata_mongo.explain import Explanation, explain
from privata_mongo.processing import processing_record, processing_record_async
from privata_mongo.rights import AsyncRights, Rights, data_map
from privata_mongo.runtime.cache import cache_stats

__version__ = "0.1.0"

__all__ = [
    "AccessContext",
    "AsyncRights",
    "AuditUnavailable",
    "ConfigurationError",
    "Explanation",
    "KeyUnavailable",
    "MissingAccessContext",
    "MissingPurpose",
    "PrivataError",
    "ProcessingRestricted",
    "Rights",
    "Settings",
    "SubjectErased",
    "UnknownSubject",
    "UnsupportedQuery",
    "__version__",
    "access_context",
    "cache_stats",
    "configure",
    "data_map",
    "explain",
    "processing_record",
    "processing_record_async",
]
