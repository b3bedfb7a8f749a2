"""The crash matrix: a fault at every call of every write, then the app's retry, then the sweep.

For each operation an application makes (a create, an update of an identity and a clinical
field with ``$inc`` on a clinical counter, an update of an identity field only, a delete, a
read) the fault-free run is measured first: the calls it makes, in order, to the key vault, the
identity and clinical collections, the audit trail and the journal of intents. Then, for every
one of those calls and both moments (``before``: the call never reaches the server; ``after``:
it applied and the reply was lost), a fresh backend runs the operation with pymongo's own error
injected there (``privata_mongo.testing.faults``), the application retries once if it saw an
error, and ``privata_mongo.recovery.sweep`` runs. Every cell must end with

* the documents the application sees equal to the fault-free run's, or to native mongoengine's
  in the same cell where native itself ends differently (a lost reply to its one ``$inc`` makes
  its retry apply it twice): native's outcome is computed here, by running the same operation
  against plain mongoengine with the same fault at the same clinical call;
* no orphan (every identity row has its clinical row and the other way round), no data key
  without an identity row, no intent left in the journal;
* every subject whose rows changed at any point named by an audit record of the cell, and the
  audit chain intact.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import mongoengine as me
import mongomock
import pymongo
import pytest
from mongomock.store import ServerStore

import privata_mongo.mongoengine as pm
from privata_mongo.adapters.key_vault import tombstones_of
from privata_mongo.audit import verify
from privata_mongo.config import current
from privata_mongo.core.crypto import INDEX_KEY_NAME, KEY_CHECK_NAME
from privata_mongo.core.crypto.chain_key import is_chain_key_name
from privata_mongo.recovery import sweep
from privata_mongo.testing.faults import FaultPlan, faulty_client_class
from testkit.backends import Backend

DB = "crash"
COLLECTION = "crash_patient"
IDENTITY = f"{COLLECTION}__identity"
#: pymongo's errors a call may fail with, each injected at every cell; a duplicate key is only
#: injected before the call (no server reports one for a write it applied)
ERRORS = (
    "AutoReconnect",
    "NetworkTimeout",
    "ServerSelectionTimeoutError",
    "NotPrimaryError",
    "WriteConcernError",
    "DuplicateKeyError",
)
READS = frozenset({"find", "find_one", "count_documents", "aggregate", "distinct"})

Operation = Callable[[Any, Any], Any]

OPERATIONS: dict[str, Operation] = {
    "create": lambda model, _: model(
        first_name="Ada", email="ada@example.org", diagnosis="flu", visits=0
    ).save(),
    "update": lambda model, seed: model.objects(id=seed).update_one(
        set__first_name="Bea", inc__visits=1
    ),
    "identity_update": lambda model, seed: model.objects(id=seed).update_one(
        set__email="bea@example.org"
    ),
    "delete": lambda model, seed: model.objects(id=seed).delete(),
    "read": lambda model, seed: [p.first_name for p in model.objects(id=seed)],
}


def _model(alias: str) -> Any:
    class CrashPatient(me.Document):
        first_name = me.StringField()
        email = me.StringField()
        diagnosis = me.StringField()
        visits = me.IntField(default=0)
        meta = {"collection": COLLECTION, "db_alias": alias}

    return CrashPatient


@dataclass(frozen=True)
class Outcome:
    """What a cell ended with, and what it may not have."""

    documents: list[tuple[Any, ...]]
    calls: list[tuple[str, str]]
    problems: list[str]


def _raw_rows(raw: Any) -> dict[str, Any]:
    """Every stored row of the model by the subject it belongs to (leases left out)."""
    rows: dict[str, Any] = {}
    for row in raw[IDENTITY].find():
        rows[f"i:{row['_id']}"] = {k: v for k, v in row.items() if k != "_lease"}
    for row in raw[COLLECTION].find():
        rows[f"c:{row.get('_pseudonym', row['_id'])}"] = row
    return rows


def _changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    keys = before.keys() | after.keys()
    return {k.split(":", 1)[1] for k in keys if before.get(k) != after.get(k)}


def _vault(raw: Any) -> Any:
    database, _, collection = current().key_vault_namespace.partition(".")
    return raw.client[database][collection]


def _key_names(raw: Any) -> set[str]:
    return {n for k in _vault(raw).find() for n in k.get("keyAltNames", ())}


@contextlib.contextmanager
def _backend(uri: str | None) -> Iterator[tuple[Callable[..., Any], dict[str, Any], Any]]:
    """A client class, ``connect`` keywords and a raw database: fresh storage for one cell."""
    db = f"crash_{uuid.uuid4().hex[:10]}"
    if uri is None:
        store = ServerStore()
        yield (
            functools.partial(mongomock.MongoClient, _store=store),
            {"db": db},
            (mongomock.MongoClient(_store=store)[db]),
        )
        return
    raw = pymongo.MongoClient(uri)
    try:
        yield pymongo.MongoClient, {"db": db, "host": uri}, raw[db]
    finally:
        raw.drop_database(db)
        raw.close()


def run_cell(
    wrapped: bool,
    operation: str,
    at: int = 0,
    moment: str = "before",
    error: str = "AutoReconnect",
    uri: str | None = None,
) -> Outcome:
    """One cell on storage of its own; ``at=0`` is the fault-free run."""
    plan = FaultPlan()
    alias = f"crash_{uuid.uuid4().hex[:8]}"
    connect = pm.connect if wrapped else me.connect
    with _backend(uri) as (inner, where, raw):
        client_class = faulty_client_class(inner, plan)
        connect(
            alias=alias, mongo_client_class=client_class, uuidRepresentation="standard", **where
        )
        problems: list[str] = []
        try:
            model = _model(alias)
            seed = model(first_name="Cy", email="cy@example.org", diagnosis="cold", visits=5)
            seed = seed.save().id
            rows = [_raw_rows(raw)]
            seen = raw["privata_audit"].count_documents({})
            keys = _key_names(raw)
            plan.arm(at, moment, error)  # type: ignore[arg-type]
            result: Any = None
            try:
                result = OPERATIONS[operation](model, seed)
            except Exception:
                rows.append(_raw_rows(raw))
                try:
                    result = OPERATIONS[operation](model, seed)  # the application retries once
                except Exception as exc:
                    problems.append(f"the retry failed: {type(exc).__name__}")
            plan.disarm()
            rows.append(_raw_rows(raw))
            if wrapped:
                sweep(pm.get_db(alias), older_than=0)
                rows.append(_raw_rows(raw))
            documents = sorted(
                (p.first_name, p.email, p.diagnosis, p.visits) for p in model.objects.order_by("id")
            )
            if wrapped:
                problems += _wrapped_problems(raw, rows, seen, operation, result, keys)
            return Outcome(documents, [(c.collection, c.method) for c in plan.calls], problems)
        finally:
            me.disconnect(alias)


def _wrapped_problems(
    raw: Any,
    rows: list[dict[str, Any]],
    seen: int,
    operation: str,
    result: Any,
    keys_before: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[str]:
    problems: list[str] = []
    identities = {r["_id"] for r in raw[IDENTITY].find()}
    links = {r.get("_pseudonym") for r in raw[COLLECTION].find()}
    if identities != links:
        problems.append(f"orphans: identity {identities - links}, clinical {links - identities}")
    keys = _key_names(raw)
    # the subjects of the cell: every row it ever held, and every key it made (a server's
    # key vault is shared by the cells, so other cells' keys are not this cell's concern)
    subjects = {k.split(":", 1)[1] for snapshot in rows for k in snapshot}
    subjects |= keys - keys_before
    stray = (keys & subjects) - identities - {INDEX_KEY_NAME, KEY_CHECK_NAME}
    stray = {name for name in stray if not is_chain_key_name(name)}  # the audit's own key
    if stray:
        problems.append(f"{len(stray)} data key(s) without an identity row")
    # a subject whose key went was deleted: shredded, with a tombstone, not discarded
    unmarked = {
        name
        for name in (keys_before - keys) & subjects
        if not tombstones_of(_vault(raw)).count_documents({"_id": name})
    }
    if unmarked:
        problems.append(f"{len(unmarked)} deleted subject(s) without a tombstone")
    if raw["privata_audit.pending"].count_documents({}):
        problems.append("intents left in the journal")
    records = list(raw["privata_audit"].find())
    chain = verify(raw["privata_audit"]).problems  # records, checkpoints and ledger
    if chain:
        problems.append(f"audit chain: {chain}")
    cell = records[seen:]  # the records of the cell, after the seed's
    named = {s for r in cell for s in r["subjects"]}
    changed = set().union(*(_changed(a, b) for a, b in itertools.pairwise(rows)))
    if changed - named:
        problems.append(f"{len(changed - named)} changed subject(s) without a record")
    if operation == "read" and result and not any(r["operation"] == "read" for r in cell):
        problems.append("a read that returned data has no record")
    return problems


@functools.cache
def fault_free(wrapped: bool, operation: str, uri: str | None = None) -> Outcome:
    return run_cell(wrapped, operation, uri=uri)


def _writes_on_clinical(calls: list[tuple[str, str]]) -> list[int]:
    return [i + 1 for i, (c, m) in enumerate(calls) if c == COLLECTION and m not in READS]


def _native_twin(
    operation: str, calls: list[tuple[str, str]], at: int, uri: str | None = None
) -> int:
    """Native's call matching the wrapped call ``at``: the same write to the clinical collection.

    0 when the wrapped call has no native counterpart (key vault, identity, audit, journal, the
    reads that select targets): native makes no such call, so the fault-free run is the target.
    """
    wrapped = _writes_on_clinical(calls)
    if at not in wrapped:
        return 0
    native = _writes_on_clinical(fault_free(False, operation, uri).calls)
    nth = wrapped.index(at)
    return native[nth] if nth < len(native) else 0


def _cells(error: str, uri: str | None = None) -> Iterator[tuple[str, int, str]]:
    moments = ("before",) if error == "DuplicateKeyError" else ("before", "after")
    for operation in OPERATIONS:
        for at in range(1, len(fault_free(True, operation, uri).calls) + 1):
            for moment in moments:
                yield operation, at, moment


#: collection calls of each audited operation, fault-free (docs/reliability.md, "Costs"): the
#: intent and its removal are the two calls the protocol adds to every write; the stream's
#: checkpoint after the audit record is one more in each operation (docs/audit.md)
CALLS = {"create": 7, "update": 9, "identity_update": 9, "delete": 9, "read": 4}
JOURNAL = "privata_audit.pending"


def test_the_fault_free_runs_agree_with_native() -> None:
    for operation in OPERATIONS:
        assert fault_free(True, operation).documents == fault_free(False, operation).documents
        assert fault_free(True, operation).problems == []
        calls = fault_free(True, operation).calls
        assert len(calls) == CALLS[operation], (operation, calls)
        if operation != "read":
            assert calls[-1] == (JOURNAL, "delete_many")
            first_write = next(i for i, (c, m) in enumerate(calls) if m not in READS)
            assert calls[first_write] == (JOURNAL, "insert_one")  # the intent comes first


def _matrix(error: str, uri: str | None) -> str:
    """Run every cell for ``error``; the summary line (the failures fail the test)."""
    cells = list(_cells(error, uri))
    failed: list[str] = []
    per_operation: dict[str, int] = {}
    native_wrong = native_cells = 0
    for operation, at, moment in cells:
        per_operation[operation] = per_operation.get(operation, 0) + 1
        expected = fault_free(True, operation, uri)
        got = run_cell(True, operation, at, moment, error, uri)
        allowed = [expected.documents]
        twin = _native_twin(operation, expected.calls, at, uri)
        if twin:
            native = run_cell(False, operation, twin, moment, error, uri).documents
            native_cells += 1
            native_wrong += native != fault_free(False, operation, uri).documents
            allowed.append(native)
        where = f"{operation} {moment} call {at} {expected.calls[at - 1]}"
        if got.documents not in allowed:
            failed.append(f"{where}: documents {got.documents} not in {allowed}")
        if got.problems:
            failed.append(f"{where}: {got.problems}")
    assert not failed, "\n".join(failed)
    assert per_operation.keys() == OPERATIONS.keys()
    return (
        f"crash matrix, {error}: {len(cells)} cells {per_operation}, {len(failed)} wrong; "
        f"native in the same cells: {native_wrong} of {native_cells} end unlike its fault-free run"
    )


@pytest.mark.parametrize("error", ERRORS)
def test_every_cell_of_the_crash_matrix_ends_right(error: str) -> None:
    print(_matrix(error, None))  # noqa: T201


def test_the_crash_matrix_on_each_backend(backend: Backend) -> None:
    """The network-error matrix against the backend under test (a server: FerretDB, MongoDB)."""
    assert fault_free(True, "update", backend.uri).documents == fault_free(True, "update").documents
    print(_matrix("AutoReconnect", backend.uri))  # noqa: T201


def test_the_matrix_checks_catch_an_orphan_and_an_unrecorded_change() -> None:
    store = ServerStore()
    raw = mongomock.MongoClient(_store=store)[DB]
    before = _raw_rows(raw)
    raw[IDENTITY].insert_one({"_id": "pseu_" + "0" * 32})
    _vault(raw).insert_one({"_id": 1, "keyAltNames": ["pseu_" + "1" * 32]})
    raw["privata_audit.pending"].insert_one({"_id": "i1"})
    problems = _wrapped_problems(raw, [before, _raw_rows(raw)], 0, "create", None)
    assert any(p.startswith("orphans") for p in problems)
    assert any("without a record" in p for p in problems)
    assert any("data key(s) without an identity row" in p for p in problems)
    assert "intents left in the journal" in problems
    # a deleted subject whose key is still there, and one whose key went without a tombstone
    _vault(raw).insert_one({"_id": 2, "keyAltNames": ["pseu_" + "2" * 32]})
    known = {"pseu_" + "2" * 32, "pseu_" + "3" * 32}  # keys the cell began with
    seeded = {f"c:{name}": {} for name in known}  # the rows of the cell's subjects, before
    kept = _wrapped_problems(raw, [seeded, _raw_rows(raw)], 0, "delete", None, known)
    assert any("2 data key(s) without an identity row" in p for p in kept)
    assert any("1 deleted subject(s) without a tombstone" in p for p in kept)
    # another cell's key (a server's key vault is shared) is not this cell's concern
    _vault(raw).insert_one({"_id": 3, "keyAltNames": ["pseu_" + "4" * 32]})
    other = _wrapped_problems(
        raw, [seeded, _raw_rows(raw)], 0, "delete", None, {*known, "pseu_" + "4" * 32}
    )
    assert any("2 data key(s) without an identity row" in p for p in other)
