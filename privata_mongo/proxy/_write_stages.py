"""Internal. ``$out`` and ``$merge``: a pipeline's documents written where native would write them.

On the server, a pipeline over a split collection sees clinical rows: a ``$out`` there would
write half documents (clinical fields and ``_pseudonym``, no identity fields), and a ``$out``
into a split collection from anywhere would write whole documents, identity values in
plaintext, into its clinical half. So a pipeline ending in ``$out``/``$merge`` is decided here:

- the target is a split collection: the pipeline without its last stage runs through the
  wrapper (a read, joined and audited), and its documents are written through the target's
  split collection — ``$out`` replaces the target's documents and inserts them, ``$merge``
  becomes one bulk of upserts, replacements or inserts per batch, by ``whenMatched`` and
  ``whenNotMatched`` (a pipeline for ``whenMatched``, and ``fail`` when not matched, are
  refused: they cannot be done exactly);
- the target is stored natively and the documents hold no identity value: the server runs it
  when its output is clean (no identity field to join, no link), else it is run as above;
- the target is stored natively and the documents hold identity values: refused, because that
  would store decrypted personal data in a collection nothing encrypts.

The result is not atomic as a server's ``$out`` is (it writes a temporary collection and
renames it): a failure part-way leaves the documents written so far.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pymongo import InsertOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from privata_mongo.core.failures import DUPLICATE_KEY
from privata_mongo.core.pushdown.exposure import Exposure
from privata_mongo.core.pushdown.planner import Finish, plan_pipeline
from privata_mongo.core.schema import ModelSchema
from privata_mongo.errors import UnsupportedQuery

if TYPE_CHECKING:
    from privata_mongo.proxy.database import DatabaseBase

__all__ = ["BATCH", "WriteStage", "batches", "ends_in_write", "stage_failure", "write_stage"]

BATCH = 1000
"""Documents per bulk write of the target."""


@dataclass(frozen=True, slots=True)
class WriteStage:
    """How a pipeline's final ``$out``/``$merge`` is run through the wrapper.

    Attributes:
        read: the pipeline without its write stage, run as a read.
        database: the target's database name (``None``: the source's).
        collection: the target collection's name.
        replace: ``$out``: the target's documents are removed first.
        on: ``$merge``'s match fields.
        when_matched: ``$merge``'s ``whenMatched`` (``None`` for ``$out``).
        when_not_matched: ``$merge``'s ``whenNotMatched``.
    """

    read: list[Mapping[str, Any]]
    database: str | None
    collection: str
    replace: bool
    on: tuple[str, ...] = ("_id",)
    when_matched: str | None = None
    when_not_matched: str = "insert"

    def requests(self, documents: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The target's bulk requests that write one batch of the pipeline's documents."""
        if self.when_matched is None:
            return [InsertOne(dict(d)) for d in documents]
        out: list[Any] = []
        for document in documents:
            request = self._merge(document)
            if request is not None:
                out.append(request)
        return out

    def _merge(self, document: Mapping[str, Any]) -> Any:
        missing = [f for f in self.on if f not in document]
        if missing and missing != ["_id"]:
            raise UnsupportedQuery(
                f"$merge into {self.collection!r}: a document lacks the 'on' field "
                f"{missing[0]!r}; the server fails such a $merge too (code 51132)",
                model=self.collection,
            )
        matching = {f: document[f] for f in self.on if f in document}
        upsert = self.when_not_matched == "insert"
        if not matching:  # no _id: nothing can match, the document is new
            return InsertOne(dict(document)) if upsert else None
        if self.when_matched == "replace":
            return ReplaceOne(matching, _without_id(document, self.on), upsert=upsert)
        if self.when_matched == "fail":
            return InsertOne(dict(document))  # a match fails as a duplicate key, as natively
        fields = _without_id(document, self.on)
        if self.when_matched == "keepExisting" or not fields:
            # nothing to change in a match: only a new document is written
            return (
                UpdateOne(matching, {"$setOnInsert": dict(document)}, upsert=True)
                if upsert
                else None
            )
        update: dict[str, Any] = {"$set": fields}
        if "_id" in document and "_id" not in self.on and upsert:
            update["$setOnInsert"] = {"_id": document["_id"]}
        return UpdateOne(matching, update, upsert=upsert)


def stage_failure(error: BulkWriteError) -> OperationFailure:
    """What the server's aggregate reports when a write of its last stage fails."""
    first = (error.details or {}).get("writeErrors") or [{}]
    code = int(first[0].get("code", error.code or 8))
    message = str(first[0].get("errmsg", error))
    details = {"ok": 0.0, "errmsg": message, "code": code}
    if code == DUPLICATE_KEY:
        return DuplicateKeyError(message, code, details)
    return OperationFailure(message, code, details)


def _without_id(document: Mapping[str, Any], on: Sequence[str]) -> dict[str, Any]:
    """A document's fields an update may write: ``_id`` is immutable (and matched on)."""
    return {k: v for k, v in document.items() if k != "_id" and k not in on}


def batches(documents: Iterable[Mapping[str, Any]]) -> Iterator[list[Mapping[str, Any]]]:
    """The pipeline's documents in batches of at most 1,000, one bulk write each."""
    batch: list[Mapping[str, Any]] = []
    for document in documents:
        batch.append(document)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def ends_in_write(pipeline: Any) -> bool:
    """Whether ``pipeline`` ends in ``$out``/``$merge``: pymongo runs such a pipeline at once."""
    if not isinstance(pipeline, Sequence) or not pipeline:
        return False
    last = pipeline[-1]
    return isinstance(last, Mapping) and len(last) == 1 and next(iter(last)) in _WRITES


_WRITES = frozenset({"$out", "$merge"})


def write_stage(
    database: DatabaseBase, schema: ModelSchema | None, pipeline: Any
) -> WriteStage | None:
    """How to run ``pipeline``'s final write stage, or ``None`` when the server may run it.

    ``schema``: the source collection's (``None`` for a collection stored natively).

    Raises:
        UnsupportedQuery: the stage would write decrypted identity values into a collection
            stored natively, or asks for ``$merge`` semantics that cannot be done exactly.
    """
    if not ends_in_write(pipeline):
        return None
    ((name, spec),) = pipeline[-1].items()
    db_name, collection = _target(spec, name)
    if collection is None:
        return None  # malformed: the server reports it in its own words
    target_schema = _schema_of(database, db_name, collection)
    read = list(pipeline[:-1])
    if target_schema is None:
        if schema is None:
            return None
        plan = plan_pipeline(schema, read, database.split_targets(read))
        exposure = plan.boundary.exposure if isinstance(plan.boundary, Finish) else None
        if exposure is not None and exposure.empty and not plan.tail:
            return None  # the server's documents hold neither identity values nor the link
        if exposure is None or _exposes_identity(schema, exposure):
            raise UnsupportedQuery(
                f"{schema.model}: {name} into {collection!r} would write identity fields, "
                "decrypted, into a collection stored without encryption; write into a "
                "collection of a model with the same identity fields, or remove the identity "
                f"fields ($unset/$project) before {name}",
                model=schema.model,
            )
    if name == "$out":
        return WriteStage(read, db_name, collection, replace=True)
    return _merge_stage(read, db_name, collection, spec)


def _merge_stage(
    read: list[Mapping[str, Any]], db_name: str | None, collection: str, spec: Any
) -> WriteStage:
    options = spec if isinstance(spec, Mapping) else {}
    on = options.get("on", "_id")
    on_fields = (on,) if isinstance(on, str) else tuple(on)
    when_matched = options.get("whenMatched", "merge")
    when_not_matched = options.get("whenNotMatched", "insert")
    if not isinstance(when_matched, str) or when_matched not in (
        "merge",
        "replace",
        "keepExisting",
        "fail",
    ):
        raise UnsupportedQuery(
            f"$merge into {collection!r}: whenMatched as a pipeline (or {when_matched!r}) "
            "cannot be applied exactly to a split collection; read the documents with the "
            "pipeline and write them with update_one/bulk_write",
            model=collection,
        )
    if when_not_matched not in ("insert", "discard") or (
        when_matched == "fail" and when_not_matched == "discard"
    ):
        raise UnsupportedQuery(
            f"$merge into {collection!r}: whenNotMatched {when_not_matched!r} with whenMatched "
            f"{when_matched!r} cannot be applied exactly to a split collection; read the "
            "documents with the pipeline and write them with bulk_write",
            model=collection,
        )
    if "let" in options:
        raise UnsupportedQuery(
            f"$merge into {collection!r}: let is only meaningful with a whenMatched pipeline, "
            "which cannot be applied to a split collection",
            model=collection,
        )
    return WriteStage(
        read,
        db_name,
        collection,
        replace=False,
        on=on_fields,
        when_matched=when_matched,
        when_not_matched=when_not_matched,
    )


def _target(spec: Any, name: str) -> tuple[str | None, str | None]:
    """``(database, collection)`` a write stage names (``database`` ``None``: the source's)."""
    if isinstance(spec, str):
        return None, spec
    if not isinstance(spec, Mapping):
        return None, None
    into = spec.get("into") if name == "$merge" else spec
    if isinstance(into, str):
        return None, into
    if isinstance(into, Mapping):
        db, coll = into.get("db"), into.get("coll")
        return (db if isinstance(db, str) else None), (coll if isinstance(coll, str) else None)
    return None, None


def _schema_of(database: DatabaseBase, db_name: str | None, collection: str) -> ModelSchema | None:
    if db_name is None or db_name == database.name:
        return database.schema_of(collection)
    schema = database.client.resolver(db_name, collection)
    return schema if schema is not None and schema.enabled else None


def _exposes_identity(schema: ModelSchema, exposure: Exposure) -> bool:
    """Whether documents at ``exposure`` would carry any identity value."""
    if exposure.renames:
        return True
    if exposure.fields is None:
        undeclared = schema.dynamic and bool(schema.undeclared_identity)
        return undeclared or not schema.identity_fields <= exposure.removed
    return bool(exposure.fields - exposure.removed)
