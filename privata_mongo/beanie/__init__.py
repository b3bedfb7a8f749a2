"""Beanie, with every model that holds personal data stored split and joined back.

Replace ``beanie`` with ``privata_mongo.beanie`` in every import: every name of
``beanie.__all__`` is here and is Beanie's own object, except ``init_beanie``, which takes the
same arguments and hands Beanie a privata proxy database. Documents, queries, operators,
actions and validation are Beanie's own code.

Every other attribute (``__version__``) and every submodule is Beanie's too:
``privata_mongo.beanie.odm.documents`` *is* ``beanie.odm.documents``
(``privata_mongo.facade_modules``). The modules that bind ``init_beanie``
(``beanie.odm.utils.init``, ``beanie.migrations.runner``) and the packages above them are
modules of their own that read everything from Beanie's but have the facade's ``init_beanie``;
Beanie's modules themselves are left unchanged. Beanie's migration runner calls its own
``init_beanie``, so ``MigrationNode`` is replaced as well (``beanie.migrations.runner``,
``beanie.executors.migrate``): the facade's node initialises each migration's models split.
Beanie's ``beanie migrate`` command itself imports Beanie's node: run
``python -m privata_mongo.beanie.migrate`` with the same options (``privata_mongo.beanie.migrate``),
or ``privata_mongo.beanie.migrations.runner.MigrationNode`` in code (``build(path)``, then
``run(...)``).

Mark fields with ``Annotated[str, PII()]`` (``PII(False)`` overrides a name default) or
``Field(json_schema_extra={"pii": True})``, list them in ``Settings.privacy`` (the keys of
mongoengine's ``meta["privacy"]``), or rely on the name defaults. ``embedded_database(name)``
gives an in-process database for demos and tests. ``__all__`` is exactly Beanie's, so a star
import brings the same names; ``PII`` and ``embedded_database`` are imported by name.
"""

from __future__ import annotations

from collections.abc import Iterable as _Iterable
from typing import Any as _Any

import beanie as _native
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
from privata_mongo.beanie._migrations import MigrationNode as _MigrationNode
from privata_mongo.facade_modules import facade_attribute as _facade_attribute
from privata_mongo.facade_modules import install as _install

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

_install(
    __name__,
    "beanie",
    {"init_beanie": init_beanie, "MigrationNode": _MigrationNode},
    binders=["beanie.odm.utils.init", "beanie.migrations.runner", "beanie.executors.migrate"],
)


def __getattr__(name: str) -> _Any:
    """Every other attribute of ``beanie``; a submodule is the facade's counterpart."""
    return _facade_attribute(__name__, _native, name)


def __dir__() -> _Iterable[str]:
    return sorted(set(globals()) | set(dir(_native)))
