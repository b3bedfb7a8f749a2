"""Beanie, with every model that holds personal data stored split and joined back.

Replace ``from beanie import ...`` with ``from privata_mongo.beanie import ...``: every name of
``beanie.__all__`` is here and is Beanie's own object, except ``init_beanie``, which takes the
same arguments and hands Beanie a privata proxy database. Documents, queries, operators,
actions and validation are Beanie's own code.

Mark fields with ``Annotated[str, PII()]`` (``PII(False)`` overrides a name default) or
``Field(json_schema_extra={"pii": True})``, list them in ``Settings.privacy`` (the keys of
mongoengine's ``meta["privacy"]``), or rely on the name defaults. ``embedded_database(name)``
gives an in-process database for demos and tests. ``__all__`` is exactly Beanie's, so a star
import brings the same names; ``PII`` and ``embedded_database`` are imported by name.
"""

from __future__ import annotations

from beanie import (
    ActionConflictResolution,
    After,
    BackLink,
    BeanieObjectId,
    Before,
    BsonBinary,
    BulkWriter,
    DecimalAnnotation,
    Delete,
    DeleteRules,
    Document,
    DocumentWithSoftDelete,
    Granularity,
    Indexed,
    Insert,
    Link,
    MergeConflictError,
    MergeStrategy,
    PydanticObjectId,
    Replace,
    Save,
    SaveChanges,
    SortDirection,
    TimeSeriesConfig,
    UnionDoc,
    Update,
    UpdateResponse,
    ValidateOnSave,
    View,
    WriteRules,
    after_event,
    before_event,
    free_fall_migration,
    iterative_migration,
)

from privata_mongo.beanie._init import embedded_database as embedded_database
from privata_mongo.beanie._init import init_beanie
from privata_mongo.beanie._markers import PII as PII

__all__ = [
    "ActionConflictResolution",
    "After",
    "BackLink",
    "BeanieObjectId",
    "Before",
    "BsonBinary",
    "BulkWriter",
    "DecimalAnnotation",
    "Delete",
    "DeleteRules",
    "Document",
    "DocumentWithSoftDelete",
    "Granularity",
    "Indexed",
    "Insert",
    "Link",
    "MergeConflictError",
    "MergeStrategy",
    "PydanticObjectId",
    "Replace",
    "Save",
    "SaveChanges",
    "SortDirection",
    "TimeSeriesConfig",
    "UnionDoc",
    "Update",
    "UpdateResponse",
    "ValidateOnSave",
    "View",
    "WriteRules",
    "after_event",
    "before_event",
    "free_fall_migration",
    "init_beanie",
    "iterative_migration",
]
