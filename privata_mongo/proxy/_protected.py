"""Internal. The collections only privata writes, and the refusal of the app's writes to them.

The audit trail (``privata_audit``, its ``.checkpoints`` and its journal of intents
``.pending``, or the collection of a configured ``CollectionAuditSink``), the key vault and its
``.tombstones``, the erasure log (``privata_erasures``, ``Rights.erase``) and the consent
history (``privata_consents``, ``Rights.consent``) are written by the library through its
adapters, which hold the real collections. Through the proxy — the
handles the application has: ``get_db()``, Beanie's database, the proxy client — they can be
read (auditors read the trail) but not written: every insert, update, delete, bulk write,
drop, index change and rename, as a method, a database command (``db.command("drop", ...)``)
or a ``$out``/``$merge`` into one of them, raises ``ProtectedCollection`` naming the operator
handle to use instead. A forged record would not verify anyway (the chain is keyed); refusing
the write keeps the application from even deleting or truncating the trail, or removing keys
and tombstones behind the erasure bookkeeping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from privata_mongo.adapters.audit_collection import CHECKPOINTS_SUFFIX
from privata_mongo.core.audit.intents import JOURNAL_SUFFIX
from privata_mongo.errors import ProtectedCollection

if TYPE_CHECKING:
    from privata_mongo.proxy.database import DatabaseBase

__all__ = [
    "COLLECTION_WRITES",
    "WRITE_COMMANDS",
    "is_erasure_log",
    "protected_kind",
    "refuse",
    "refuse_command",
    "refuse_database",
    "refuse_pipeline",
]

COLLECTION_WRITES = frozenset(
    {
        "insert_one",
        "insert_many",
        "insert",
        "save",
        "update_one",
        "update_many",
        "update",
        "replace_one",
        "delete_one",
        "delete_many",
        "remove",
        "find_one_and_update",
        "find_one_and_replace",
        "find_one_and_delete",
        "find_and_modify",
        "bulk_write",
        "drop",
        "rename",
        "create_index",
        "create_indexes",
        "create_search_index",
        "create_search_indexes",
        "drop_index",
        "drop_indexes",
        "drop_search_index",
        "update_search_index",
        "ensure_index",
    }
)
"""Collection methods that change a collection, its indexes or its name."""

WRITE_COMMANDS = frozenset(
    {
        "insert",
        "update",
        "delete",
        "findandmodify",
        "drop",
        "dropindexes",
        "deleteindexes",
        "createindexes",
        "collmod",
        "compact",
        "converttocapped",
        "renamecollection",
        "create",
        "clonecollectionascapped",
        "createsearchindexes",
        "dropsearchindex",
        "updatesearchindex",
    }
)
"""Database commands (lower-cased) that change the collection they name."""

TOMBSTONES_SUFFIX = ".tombstones"
"""The erasure log of a key vault ``v`` is ``v.tombstones`` (``adapters.key_vault``)."""

_ERASURE_HANDLE = "privata_mongo.Rights / AsyncRights (erase, replay_erasures)"
_AUDIT_HANDLE = "privata_mongo.audit.audit_collection(db) (the real collection, for operators)"
_VAULT_HANDLE = (
    "privata_mongo.encryption (shred, rotate_master_key) or a client of the operator's own "
    "on the key vault namespace"
)


_CONSENT_HANDLE = (
    "privata_mongo.Rights.consent / withdraw_consent (or privata_mongo.consent.give / withdraw)"
)


def _settings(database: DatabaseBase) -> Any:
    return database.client.runtime.settings()


def protected_kind(database: DatabaseBase, name: str) -> tuple[str, str] | None:
    """``(what, operator handle)`` when ``name`` in ``database`` only privata writes."""
    settings = _settings(database)
    namespace = f"{database.name}.{name}"
    base = settings.audit_collection
    audit = {base, base + CHECKPOINTS_SUFFIX, base + JOURNAL_SUFFIX}
    if name in audit:
        return "audit trail", _AUDIT_HANDLE
    sink_collection = getattr(settings.audit_sink, "collection", None)
    full_name = getattr(sink_collection, "full_name", None)
    if isinstance(full_name, str) and namespace in (full_name, full_name + CHECKPOINTS_SUFFIX):
        return "audit trail", _AUDIT_HANDLE
    if name == settings.consent_collection:
        return "consent history", _CONSENT_HANDLE
    vault = settings.key_vault_namespace
    if namespace == vault:
        return "key vault", _VAULT_HANDLE
    if namespace == vault + TOMBSTONES_SUFFIX:
        return "erasure log (key vault tombstones)", _VAULT_HANDLE
    if is_erasure_log(settings, database.name, name):
        return "erasure log", _ERASURE_HANDLE
    return None


def is_erasure_log(settings: Any, database: str, name: str) -> bool:
    """Whether ``database.name`` is the erasure log the settings name (``Rights.erase``).

    Without ``erasure_database`` the log lives in the database of the data, so the name is
    the log's in every database.
    """
    wanted = settings.erasure_database
    return bool(name == settings.erasure_collection and wanted in (None, database))


def refuse(database: DatabaseBase, name: str, operation: str) -> None:
    """Raise ``ProtectedCollection`` if ``operation`` would write ``name`` of ``database``."""
    kind = protected_kind(database, name)
    if kind is None:
        return
    what, handle = kind
    namespace = f"{database.name}.{name}"
    raise ProtectedCollection(
        f"{operation} on {namespace} is refused: the {what} is written by privata_mongo only, "
        f"and the application's handles may only read it; operator tooling uses {handle}",
        namespace=namespace,
        operator_handle=handle,
    )


def refuse_database(database: DatabaseBase, operation: str) -> None:
    """Refuse dropping the database holding the key vault (keys and erasure log with it)."""
    vault = _settings(database).key_vault_namespace
    name, _, collection = vault.partition(".")
    if database.name == name:
        refuse(database, collection, operation)


def refuse_pipeline(database: DatabaseBase, pipeline: Any, operation: str) -> None:
    """Refuse a pipeline whose ``$out``/``$merge`` writes a protected collection."""
    if not isinstance(pipeline, Sequence) or not pipeline:
        return
    last = pipeline[-1]
    if not isinstance(last, Mapping):
        return
    for stage in ("$out", "$merge"):
        target = last.get(stage)
        if target is None:
            continue
        db_name, collection = database.name, target
        if isinstance(target, Mapping):
            spec = target.get("into", target) if stage == "$merge" else target
            if isinstance(spec, Mapping):
                db_name = str(spec.get("db", database.name))
                collection = spec.get("coll")
            else:
                collection = spec
        if isinstance(collection, str):
            other = database if db_name == database.name else database.client[db_name]
            refuse(other, collection, f"{operation} ({stage})")


def refuse_command(database: DatabaseBase, spec: Mapping[str, Any]) -> None:
    """Refuse a database command that writes, drops, re-indexes or renames a protected one."""
    if not spec:
        return
    name = next(iter(spec))
    lowered = str(name).lower()
    target = spec[name]
    if lowered == "dropdatabase":
        refuse_database(database, "dropDatabase")
    elif lowered == "renamecollection":
        for field in (target, spec.get("to")):
            if isinstance(field, str) and "." in field:
                db_name, _, collection = field.partition(".")
                refuse(database.client[db_name], collection, name)
    elif lowered in WRITE_COMMANDS and isinstance(target, str):
        refuse(database, target, name)
    elif lowered == "aggregate":
        refuse_pipeline(database, spec.get("pipeline"), name)
