"""What each backend can and cannot do, and why: gaps become strict xfails, never skips.

The one table of backend gaps for the whole repository: the compat suite, the integration
tests and the storage port contract all declare what they need with these feature names.

A scenario that needs a capability says so with ``@requires("feature")``. On a backend that
declares a gap for it, the test is marked ``xfail(strict=True)`` with the declared reason, on the
native and the wrapped ODM alike (one test runs both). Strict means the declaration is checked:
a gap that turns out not to be one (the test passes) fails the run, so this table cannot rot.

Every gap below was measured: the scenario that requires the feature fails on that backend with
the error quoted (mongomock 4.3.0; FerretDB v1.24.2 with the SQLite handler, as testkit starts
it). The FerretDB list started from its v1.24 documentation (known differences, supported
commands); the documented sparse-index gap turned out not to be one and was dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

import pytest

__all__ = ["FEATURES", "GAPS", "gaps_for", "mark_gaps", "requires"]

FEATURES: Final[Mapping[str, str]] = {
    "unicode_regex": "regexes with the u option: every compiled Python pattern, so mongoengine's "
    "string operators (iexact, contains, startswith, endswith, regex, wholeword, ...)",
    "dbref_in_documents": "DBRef values ($ref/$id keys) stored inside documents "
    "(GenericReferenceField, ReferenceField(dbref=True))",
    "elem_match_documents": "$elemMatch with field conditions over arrays of embedded documents "
    "(filter(list__match={...}), raw $elemMatch)",
    "no_cursor_timeout": "find with noCursorTimeout (QuerySet.timeout(False))",
    "transactions": "multi-document transactions (client.start_session(), start_transaction())",
    "lookup": "the $lookup aggregation stage (QuerySet.aggregate joining another collection)",
    "group_avg": "the $avg accumulator of $group (QuerySet.average)",
    "uuid_standard": "UUID values in the standard binary representation (UUIDField)",
    "hello_command": "the hello and buildInfo commands",
    "server_process": "a server process the tests start and may kill (outage tests)",
    "uri_from_another_process": "a database another process reaches by URI (the command line "
    "run as its own process, as operators run it)",
    "explain": "a query plan for a find (the explain command)",
    "typed_update_errors": "an impossible update operator fails as a write error with the "
    "server's code (e.g. $inc on a string: TypeMismatch, 14)",
    "find_and_modify_projection": "a projection on find-and-modify (findAndModify's fields)",
    "duplicate_key_on_update": "an update that violates a unique index fails with code 11000",
    "project_field_paths": "computed fields in $project that copy another field's value "
    '({"city": "$address.city"})',
    "text_search": "text indexes and the $text operator (QuerySet.search_text)",
    "javascript": "server-side JavaScript: $where (QuerySet.where), mapReduce, exec_js",
    "profiling": "the profile command and system.profile (context_managers.query_counter)",
    "mod_operator": "the $mod query operator (filter(x__mod=[divisor, remainder]))",
    "positional_update": "the positional $ update operator (update(set__list__S__field=...))",
    "positional_update_on_scalars": "the positional $ update operator on arrays of scalars "
    "(update(set__tags__S=...))",
    "elem_match_projection": "the $elemMatch projection operator (fields(elemMatch__x=...))",
    "slice_projection": "the $slice projection operator (fields(slice__x=n))",
    "collation": "collations on queries (QuerySet.collation)",
    "ttl_index": "TTL indexes (meta indexes with expireAfterSeconds)",
    "partial_index": "partial indexes (meta indexes with partialFilterExpression)",
    "sparse_index": "sparse indexes (meta indexes with sparse=True, unique sparse fields)",
    "nested_arrays": "arrays of arrays (ListField(ListField(...)))",
    "mul_update": "the $mul update operator (Beanie's Mul)",
    "lookup_pipeline": "$lookup with a sub-pipeline (let/pipeline): Beanie's fetch_links over "
    "nested links and back links",
    "dbref_paths": "paths through DBRef values (link.$id): $lookup from a Beanie link "
    "(fetch_links, fetch_link) and queries on a link's id",
    "group_min_max": "the $min and $max accumulators of $group (Beanie's min() and max())",
    "group_arrays_and_order": "the $push, $addToSet, $first and $last accumulators of $group",
    "bulk_delete_options": "delete commands with bypassDocumentValidation, as pymongo sends them "
    "for Beanie's BulkWriter (bypass_document_validation=False)",
    "update_field_order": "MongoDB's key order of an upserted document: the query's equality "
    "fields sorted by path, then the fields the update creates in lexicographic order (5.0: "
    "numeric names numerically), _id first (privata builds an upsert touching identity fields "
    "in the process, with that rule, and reads it back in that order)",
    "duplicate_key_details": "a DuplicateKeyError carrying the server's details (keyPattern, "
    "keyValue): Beanie's save tells a revision conflict by them",
    "motor_server": "a MongoDB wire-protocol server Motor can connect to (Motor has no "
    "in-process backend)",
    "client_side_encryption": "pymongo's own client-side encryption (ClientEncryption, "
    "AutoEncryptionOpts) over a key vault on the backend",
    "atomic_updates": "each update applied atomically to its document under concurrent "
    "writers (8 threads x 50 raw $inc on one document lose none)",
    "distinct_order": "distinct values in the server's order (sorted in BSON comparison order)",
    "document_size_limit": "documents larger than 16 MiB (maxBsonObjectSize) are refused "
    "(pymongo.errors.DocumentTooLarge)",
    "server_document_size_limit": "the server's own check of stored documents: an insert_many "
    "document past 16 MiB fails with BSONObjectTooLarge (10334), an update whose result passes "
    "it with 17419",
    "out_stage": "the $out aggregation stage",
    "merge_stage": "the $merge aggregation stage",
    "database_commands": "collection commands sent with Database.command (count, distinct, "
    "find, aggregate, findAndModify, insert, update, delete)",
    "migration_runner": "Beanie's migration runner, which connects by URI (DBHandler.set_db) "
    "with pymongo's AsyncMongoClient and runs each migration in a client session",
    "forked_processes": "storage shared by a process and the children it forks (pre-fork "
    "servers: gunicorn, uwsgi), so what a worker writes its parent reads",
    "document_sizes": "the server measures documents ($bsonSize in an aggregation, MongoDB "
    "4.4+), so an update of clinical fields is checked against both halves of the document",
    "update_pipelines": "updates given as an aggregation pipeline ([{$set: ...}]) in "
    "update_one/many and find_one_and_update",
    "replace_root_stage": "the $replaceRoot aggregation stage",
    "raw_batches": "find_raw_batches and aggregate_raw_batches (raw BSON batches)",
}

GAPS: Final[Mapping[str, Mapping[str, str]]] = {
    # The reference: a real MongoDB server (replica set for transactions) lacks nothing here.
    "mongodb": {
        "server_process": "the server named by PRIVATA_TEST_MONGODB_URI is not ours to stop; "
        "outage tests run with --backend ferretdb",
    },
    "mongomock": {
        "uuid_standard": "mongomock 4.3 encodes with UuidRepresentation.UNSPECIFIED and rejects "
        "any other (ValueError)",
        "hello_command": "mongomock 4.3 implements neither hello nor buildInfo "
        "(NotImplementedError)",
        "server_process": "mongomock runs in the process: there is no server to stop",
        "uri_from_another_process": "mongomock's data lives in the test's own process; the "
        "commands run in-process on it instead (CliRunner with the backend's client)",
        "migration_runner": "mongomock has no URI to connect to: Beanie's DBHandler opens a "
        "pymongo AsyncMongoClient, and the embedded backend has no client sessions "
        "(NotImplementedError)",
        "document_sizes": "mongomock 4.3 does not implement $bsonSize (OperationFailure: "
        "Unrecognized expression '$bsonSize'), and stores documents of any size",
        "forked_processes": "mongomock keeps its data in the memory of one process: what a "
        "forked child writes stays in the child's copy, its parent never sees it",
        "explain": "mongomock 4.3's Cursor has no explain() (AttributeError; the embedded async "
        "adapter raises NotImplementedError likewise)",
        "typed_update_errors": "mongomock 4.3 raises a Python TypeError for $inc on a string "
        "(pymongo: WriteError code 14); native mongomock apps see the same TypeError",
        "transactions": "mongomock 4.3 has no sessions: MongoClient.start_session raises "
        "NotImplementedError",
        "text_search": "mongomock 4.3 does not implement $text (NotImplementedError)",
        "javascript": "mongomock 4.3 does not implement $where or mapReduce",
        "mod_operator": "mongomock 4.3 does not implement $mod (OperationFailure: unknown "
        "operator)",
        "profiling": "mongomock 4.3 does not implement the profile command "
        "(Database.command raises NotImplementedError)",
        "positional_update_on_scalars": "mongomock 4.3 fails on $ over an array of scalars "
        "(AttributeError: 'int' object has no attribute 'get')",
        "collation": "mongomock 4.3 has no collation support (Cursor.collation raises TypeError)",
        "partial_index": "mongomock 4.3 ignores partialFilterExpression: a partial unique index "
        "is enforced on every document (DuplicateKeyError)",
        "mul_update": "mongomock 4.3 does not implement $mul (ValueError: field names cannot "
        "start with $ [$mul])",
        "lookup_pipeline": "mongomock 4.3 does not implement $lookup sub-pipelines "
        "(NotImplementedError: 'pipeline' is a valid lookup operator ... not implemented)",
        "dbref_paths": "mongomock 4.3 does not follow $id into DBRef values: find({'link.$id': "
        "x}) and $lookup with localField 'link.$id' silently match nothing (links stay unfetched)",
        "update_field_order": "mongomock 4.3 applies $set fields in the order given: an upsert "
        "stores them in the update's order, not MongoDB 5.0's lexicographic order",
        "duplicate_key_details": "mongomock 4.3 raises DuplicateKeyError with details=None: "
        "Beanie's revision check then fails natively with AttributeError ('NoneType' object has "
        "no attribute 'get'), while privata passes pymongo-shaped details",
        "motor_server": "mongomock runs in the process and speaks no wire protocol: Motor needs "
        "a server URI (the backend has none); Motor is tested with --backend ferretdb",
        "document_size_limit": "mongomock 4.3 stores documents of any size (a 17 MiB document "
        "is accepted)",
        "server_document_size_limit": "mongomock 4.3 stores documents of any size",
        "merge_stage": "mongomock 4.3 does not implement $merge (NotImplementedError)",
        "database_commands": "mongomock 4.3's Database.command answers ping only "
        "(NotImplementedError; with a command name and a value: TypeError)",
        "distinct_order": "mongomock 4.3 collects distinct values in a Python set and returns "
        "them in its iteration order (string hashes vary from process to process), not sorted",
        "client_side_encryption": "pymongo's ClientEncryption cannot use a mongomock key vault: "
        "mongomock rejects the RawBSONDocument codec options pymongo reads keys with (privata "
        "drives libmongocrypt with its own key-vault callback instead)",
        "raw_batches": "mongomock 4.3 does not implement find_raw_batches (NotImplementedError: "
        "'find_raw_batches method is not implemented in mongomock yet')",
    },
    # Each entry: what FerretDB's v1.24 documentation says, and what the server answered when
    # the scenario ran (scripts/ferretdb.sh, SQLite handler).
    "ferretdb": {
        "find_and_modify_projection": "FerretDB v1.24 does not implement findAndModify's "
        "fields: 'findAndModify: support for field \"fields\" ... is not implemented yet' (238)",
        "duplicate_key_on_update": "FerretDB v1.24 (SQLite) reports a unique violation on "
        "update as InternalError (code 1: 'UNIQUE constraint failed: index ...'), not 11000",
        "project_field_paths": "FerretDB v1.24 returns the path string itself for a computed "
        '$project field ({"city": "$address.city"} gives the literal "$address.city")',
        "unicode_regex": "FerretDB v1.24 rejects the u regex option: 'invalid flag in regex "
        "options: u' (Location51108)",
        "dbref_in_documents": "FerretDB v1.24 rejects keys starting with $ (known differences, "
        "5): 'invalid key: \"$ref\"'",
        "elem_match_documents": "FerretDB v1.24 $elemMatch over documents: two field conditions "
        "fail ('unknown operator: dose_mg'), one field condition silently matches nothing",
        "no_cursor_timeout": 'FerretDB v1.24: \'find: support for field "noCursorTimeout" with '
        "non-default value true is not implemented yet'",
        "transactions": "FerretDB v1.24 has no session or transaction commands (startSession, "
        "commitTransaction): 'insert: unknown field \"startTransaction\"'",
        "lookup": "FerretDB v1.24 does not implement $lookup (FerretDB#1427): "
        "'`aggregate` stage \"$lookup\" is not implemented yet'",
        "group_avg": "FerretDB v1.24 does not implement the $avg accumulator (FerretDB#2891, v2 "
        "only): '$group accumulator \"$avg\" is not implemented yet'",
        "text_search": "FerretDB v1.24 has no text indexes: 'can't find index with key: "
        '{ notes: "text" }\'',
        "javascript": "FerretDB v1.24 has no $where and no mapReduce; it closes the connection "
        "(OSError: connection closed)",
        "profiling": "FerretDB v1.24 has no profile command: 'no such command: 'profile''",
        "positional_update": "FerretDB v1.24 does not implement the $ update operator "
        "(FerretDB#822): 'Cannot create field '$' in element'",
        "elem_match_projection": "FerretDB v1.24 does not implement $elemMatch projection "
        "(FerretDB#1710): 'projection expression { $elemMatch: ... } is not supported'",
        "slice_projection": "FerretDB v1.24 does not implement $slice projection (FerretDB#1711): "
        "'projection expression { $slice: 2 } is not supported'",
        "collation": "FerretDB v1.24 does not implement collations: 'find: support for field "
        '"collation" ... is not implemented yet\'',
        "ttl_index": "FerretDB v1.24: 'Index option \"expireAfterSeconds\" is not implemented yet'",
        "partial_index": 'FerretDB v1.24: \'Index option "partialFilterExpression" is not '
        "implemented yet'",
        "nested_arrays": "FerretDB v1.24 does not support nested arrays (known differences, 3): "
        "'nested arrays are not supported'",
        "group_min_max": "FerretDB v1.24 does not implement the $max and $min accumulators: "
        "'$group accumulator \"$max\" is not implemented yet' (238)",
        "group_arrays_and_order": "FerretDB v1.24 implements none of them: '$group accumulator "
        '"$push" is not implemented yet\' (238), and likewise $addToSet, $first and $last',
        "server_document_size_limit": "FerretDB v1.24 stores documents past 16 MiB that pymongo "
        "does not refuse itself: an 18 MiB document in insert_many, an update growing a document "
        "to 18 MiB",
        "out_stage": 'FerretDB v1.24 does not implement $out: \'`aggregate` stage "$out" is not '
        "implemented yet' (238)",
        "merge_stage": 'FerretDB v1.24 does not implement $merge: \'`aggregate` stage "$merge" '
        "is not implemented yet' (238)",
        "bulk_delete_options": "FerretDB v1.24 rejects the option on delete: 'delete: unknown "
        'field "bypassDocumentValidation"\' (FailedToParse, 9)',
        "duplicate_key_details": "FerretDB v1.24 reports a duplicate key without keyPattern "
        "or keyValue ({'code': 11000, 'codeName': 'DuplicateKey'} only): Beanie's revision check "
        "then re-raises DuplicateKeyError natively, while privata names the _id and Beanie "
        "raises RevisionIdWasChanged",
        "document_sizes": "FerretDB v1.24 implements neither $bsonSize ('Invalid $project :: "
        "caused by :: The operator $bsonSize is not implemented yet', 238) nor $expr "
        "comparisons ('The operator $lte is not implemented yet', 238), and stores an update's "
        "result past 16 MiB (a 15 MiB document grown by 2 MiB is accepted)",
        "atomic_updates": "FerretDB v1.24 (SQLite) is not atomic per operation under "
        "concurrency: concurrent raw $inc on one document are lost (327 to 349 of 400 from 8 "
        "threads in three runs of the probe), with or without privata",
        "update_pipelines": "FerretDB v1.24 rejects an update pipeline: 'Aggregation pipelines "
        "are not supported yet' (NotImplemented, 238)",
        "replace_root_stage": "FerretDB v1.24 does not implement $replaceRoot: '`aggregate` stage "
        '"$replaceRoot" is not implemented yet\' (238)',
    },
}


def requires(*features: str) -> pytest.MarkDecorator:
    """Mark a test as needing backend ``features`` (names from ``FEATURES``)."""
    _check_known(features)
    if not features:
        raise ValueError("requires() needs at least one feature")
    return pytest.mark.requires(*features)


def gaps_for(backend: str, features: Iterable[str]) -> dict[str, str]:
    """The declared gaps of ``backend`` among ``features``: feature → reason."""
    features = tuple(features)
    _check_known(features)
    if backend not in GAPS:
        raise pytest.UsageError(
            f"backend {backend!r} declares no capabilities in compat_suite/requirements.py; "
            f"add a GAPS entry for it (declared: {sorted(GAPS)})"
        )
    declared = GAPS[backend]
    return {feature: declared[feature] for feature in features if feature in declared}


def mark_gaps(items: Iterable[pytest.Item]) -> None:
    """Turn every ``requires`` mark that meets a declared gap into a strict xfail."""
    for item in items:
        features = [feature for mark in item.iter_markers("requires") for feature in mark.args]
        if not features:
            continue
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend_name") if callspec is not None else None
        if backend is None:
            raise pytest.UsageError(
                f"{item.nodeid}: @requires(...) on a test that runs on no backend "
                "(it must use the backend fixture)"
            )
        gaps = gaps_for(backend, features)
        if gaps:
            reason = "; ".join(f"{backend} lacks {feature}: {why}" for feature, why in gaps.items())
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


def _check_known(features: Iterable[str]) -> None:
    unknown = sorted(set(features) - set(FEATURES))
    if unknown:
        raise pytest.UsageError(
            f"unknown feature(s) {unknown} in requires(); declared features: {sorted(FEATURES)}"
        )
