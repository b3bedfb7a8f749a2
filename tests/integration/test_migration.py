"""``migrate``, ``verify_migration`` and ``unmigrate`` on every backend.

A migrated document must be what the facade stores, a migration killed after any request must
end, once run again, in the same state as one that was never interrupted, and ``unmigrate``
must give back the source documents byte for byte.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import bson
import pytest
from bson import Int64, ObjectId
from bson.raw_bson import RawBSONDocument

import privata_mongo.mongoengine as pm
from privata_mongo import access_context
from privata_mongo.config import current
from privata_mongo.core.flows.migrate import migration_key_name
from privata_mongo.core.pseudonym import is_pseudonym
from privata_mongo.drivers import sync
from privata_mongo.encryption import forget_keys, unseal_row
from privata_mongo.errors import ConfigurationError
from privata_mongo.migration import LEDGER_SUFFIX, migrate, unmigrate, verify_migration
from testkit.backends import Backend


class MigPatient(pm.Document):
    full_name = pm.StringField()
    email = pm.EmailField(searchable=True)
    blood_type = pm.StringField()
    visits = pm.IntField()
    meta = {"collection": "mig_patient"}


class MigNote(pm.Document):
    text = pm.StringField()
    meta = {"collection": "mig_note"}


NAME = "mig_patient"
IDENTITY = NAME + "__identity"


def _sources(n: int) -> list[dict[str, Any]]:
    """Plaintext documents as an application wrote them, with assorted BSON types."""
    docs: list[dict[str, Any]] = []
    for i in range(n):
        docs.append(
            {
                "_id": ObjectId(),
                "full_name": f"Person {i}",
                "email": f"p{i}@example.org",
                "blood_type": ["A+", "B-", "O+"][i % 3],
                "visits": i,
            }
        )
    # an odd one: another field order, a missing identity field, types the ODM may not write
    docs.append(
        {
            "_id": "string-id",
            "visits": Int64(7),
            "email": "odd@example.org",
            "blood_type": None,
            "extra": {
                "nested": [1, 2.5, b"\x00\x01"],
                "when": datetime.datetime(2020, 1, 2),
            },
        }
    )
    return docs


@pytest.fixture
def raw(connected: Any) -> Iterator[Any]:
    with access_context(actor="ops", purpose="migration", legal_basis="art6_1c"):
        yield connected


def _raw_bytes(db: Any, name: str = NAME) -> dict[str, bytes]:
    """Every stored document's exact BSON, by ``_id`` (as the server sends it).

    mongomock has no raw documents: there the documents it stores are encoded as read.
    """
    try:
        options = db.codec_options.with_options(document_class=RawBSONDocument)
    except NotImplementedError:
        return {repr(d["_id"]): bson.encode(d) for d in db[name].find({})}
    collection = db.get_collection(name).with_options(codec_options=options)
    return {repr(d["_id"]): bytes(d.raw) for d in collection.find({})}


def _pseudonym_keys(db: Any, backend: Backend) -> list[str]:
    vault_db, _, vault = current().key_vault_namespace.partition(".")
    client = db.client
    names = [n for d in client[vault_db][vault].find({}) for n in d.get("keyAltNames", ())]
    return [n for n in names if is_pseudonym(n)]


def _keys(document: dict[str, Any]) -> list[str]:
    return [k for k in document if k != "_id"]


def test_a_migrated_document_is_stored_as_the_facade_stores_it(raw: Any) -> None:
    saved = MigPatient(
        full_name="Ann Smith", email="ann@example.org", blood_type="A+", visits=2
    ).save()
    stored_by_facade = raw[NAME].find_one({"_id": saved.id})
    source = {
        "_id": ObjectId(),
        "full_name": "Ann Smith",
        "email": "ann@example.org",
        "blood_type": "A+",
        "visits": 2,
    }
    raw[NAME].insert_one(dict(source))
    report = migrate(raw, MigPatient)
    assert (report.plaintext, report.already_migrated, report.migrated) == (1, 1, 1)
    migrated = raw[NAME].find_one({"_id": source["_id"]})
    # the same keys in the same order (mongomock stores an inserted ``_id`` last, a server first)
    assert _keys(migrated) == _keys(stored_by_facade)
    assert migrated["blood_type"] == "A+"
    assert is_pseudonym(migrated["_pseudonym"])
    ours = raw[IDENTITY].find_one({"_id": migrated["_pseudonym"]})
    theirs = raw[IDENTITY].find_one({"_id": stored_by_facade["_pseudonym"]})
    assert _keys(ours) == _keys(theirs)
    assert ours["_idx"] == theirs["_idx"]  # the same blind index terms for the same value
    assert unseal_row(raw, ours) == unseal_row(raw, theirs)
    found = MigPatient.objects.get(id=source["_id"])
    assert (found.full_name, found.email, found.visits) == ("Ann Smith", "ann@example.org", 2)
    assert MigPatient.objects(email="ann@example.org").count() == 2  # found by blind index


def test_dry_run_classifies_and_writes_nothing(raw: Any) -> None:
    raw[NAME].insert_many(_sources(4))
    before = _raw_bytes(raw)
    report = migrate(raw, MigPatient, dry_run=True, batch_size=2)
    assert report.dry_run
    assert report.plaintext == 5
    assert report.migrated == 0
    assert report.fields["full_name"].side == "identity"
    assert report.fields["full_name"].documents == 4
    assert report.fields["email"].documents == 5
    assert report.fields["blood_type"].side == "clinical"
    assert "extra" in report.fields
    assert _raw_bytes(raw) == before
    assert IDENTITY not in raw.list_collection_names()
    assert NAME + LEDGER_SUFFIX not in raw.list_collection_names()


def test_migrate_verify_unmigrate_round_trip_is_byte_identical(raw: Any, backend: Backend) -> None:
    raw[NAME].insert_many(_sources(7))
    before = _raw_bytes(raw)
    seen: list[tuple[int, int]] = []
    report = migrate(raw, MigPatient, batch_size=3, progress=lambda d, t: seen.append((d, t)))
    assert report.migrated == 8
    assert report.batches == 3
    assert seen[-1] == (8, 8)
    assert raw[NAME].count_documents({"_pseudonym": {"$exists": False}}) == 0
    assert raw[IDENTITY].count_documents({}) == 8
    assert "Person 1" not in repr(list(raw[IDENTITY].find({})))
    assert migrate(raw, MigPatient).migrated == 0  # idempotent
    checked = verify_migration(raw, MigPatient, sample=100)
    assert checked.ok, checked
    assert (checked.source, checked.migrated, checked.identity_rows) == (8, 8, 8)
    assert checked.sampled == 8
    assert MigPatient.objects.get(email="p3@example.org").full_name == "Person 3"
    records = list(raw["privata_audit"].find({"operation": "migrate"}))
    assert sum(r["count"] for r in records) == 8
    assert {r["actor"] for r in records} == {"ops"}
    assert "Person" not in repr(records)
    assert set().union(*(r["fields"] for r in records)) == {"full_name", "email"}
    back = unmigrate(raw, MigPatient, batch_size=3)
    assert back.restored == 8
    assert _raw_bytes(raw) == before
    assert raw[IDENTITY].count_documents({}) == 0
    assert NAME + LEDGER_SUFFIX not in raw.list_collection_names()
    assert raw["privata_audit"].count_documents({"operation": "unmigrate"}) >= 1
    assert len(_pseudonym_keys(raw, backend)) == 8  # kept: backups of the sealed rows


def test_unmigrate_with_shred_destroys_the_keys(raw: Any, backend: Backend) -> None:
    raw[NAME].insert_many(_sources(3))
    before = _raw_bytes(raw)
    migrate(raw, MigPatient)
    assert len(_pseudonym_keys(raw, backend)) == 4
    done = unmigrate(raw, MigPatient, shred=True)
    assert done.shredded == 4
    assert _raw_bytes(raw) == before
    assert _pseudonym_keys(raw, backend) == []
    name = migration_key_name(raw.name, NAME)
    vault_db, _, vault = current().key_vault_namespace.partition(".")
    assert raw.client[vault_db][vault].count_documents({"keyAltNames": name}) == 0


def test_verify_finds_a_changed_document_and_a_leftover(raw: Any) -> None:
    raw[NAME].insert_many(_sources(3))
    migrate(raw, MigPatient)
    changed = raw[NAME].find_one({"_id": "string-id"})
    raw[NAME].update_one({"_id": changed["_id"]}, {"$set": {"visits": 8}})
    raw[NAME].insert_one({"_id": ObjectId(), "full_name": "Late Writer"})
    checked = verify_migration(raw, MigPatient, sample=10)
    assert not checked.ok
    assert checked.mismatched == 1
    assert checked.mismatched_ids == ("string-id",)
    assert checked.plaintext == 1


def test_verify_before_any_migration_is_refused(raw: Any) -> None:
    with pytest.raises(ConfigurationError, match="never migrated"):
        verify_migration(raw, MigPatient)


def test_a_model_without_identity_fields_is_refused(raw: Any) -> None:
    with pytest.raises(ConfigurationError, match="nothing to migrate"):
        migrate(raw, MigNote)


class Killed(BaseException):
    """The process stops: nothing after this request runs (not an error a flow handles)."""


def _kill_after(monkeypatch: pytest.MonkeyPatch, calls: int) -> list[int]:
    """Stop the process right after the ``calls``-th port call of the sync driver."""
    made = [0]
    real = sync.call_of

    def counting(op: Any, binding: Any) -> Any:
        call = real(op, binding)
        function = call.function

        def run(*args: Any) -> Any:
            result = function(*args)
            made[0] += 1
            if made[0] == calls:
                raise Killed
            return result

        return type(call)(run, call.args, call.awaited, call.opens)

    monkeypatch.setattr(sync, "call_of", counting)
    return made


def _reset(raw: Any) -> None:
    for name in (NAME, IDENTITY, NAME + LEDGER_SUFFIX, "privata_audit", "privata_audit.intents"):
        raw.drop_collection(name)
    vault_db, _, vault = current().key_vault_namespace.partition(".")
    raw.client[vault_db][vault].delete_many(
        {"keyAltNames": {"$regex": "^(pseu_|privata:migration)"}}
    )
    forget_keys()


@pytest.mark.parametrize("sweep_between", [False, True], ids=["resume", "sweep-then-resume"])
def test_a_migration_killed_after_any_request_ends_whole_when_run_again(
    raw: Any, backend: Backend, monkeypatch: pytest.MonkeyPatch, sweep_between: bool
) -> None:
    from privata_mongo.recovery import sweep

    sources = _sources(4)
    raw[NAME].insert_many([dict(d) for d in sources])
    before = _raw_bytes(raw)
    migrate(raw, MigPatient, batch_size=2)  # the library's own keys and indexes exist after
    _reset(raw)
    raw[NAME].insert_many([dict(d) for d in sources])
    with monkeypatch.context() as counting:
        made = _kill_after(counting, 10**9)
        migrate(raw, MigPatient, batch_size=2)
        total = made[0]
    assert total > 10
    for calls in range(1, total + 1):
        _reset(raw)
        raw[NAME].insert_many([dict(d) for d in sources])
        with monkeypatch.context() as killing:
            _kill_after(killing, calls)
            with pytest.raises(Killed):
                migrate(raw, MigPatient, batch_size=2)
        if sweep_between:
            sweep(raw, older_than=0)
        migrate(raw, MigPatient, batch_size=2)
        checked = verify_migration(raw, MigPatient, sample=100)
        assert checked.ok, (calls, checked)
        assert checked.identity_rows == 5, calls
        keys = _pseudonym_keys(raw, backend)
        assert sorted(keys) == sorted(r["_id"] for r in raw[IDENTITY].find({})), calls
        unmigrate(raw, MigPatient)
        assert _raw_bytes(raw) == before, calls


def test_an_unmigration_killed_after_any_request_ends_whole_when_run_again(
    raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = _sources(4)
    raw[NAME].insert_many([dict(d) for d in sources])
    before = _raw_bytes(raw)
    migrate(raw, MigPatient)
    unmigrate(raw, MigPatient, batch_size=2)
    _reset(raw)
    raw[NAME].insert_many([dict(d) for d in sources])
    migrate(raw, MigPatient)
    with monkeypatch.context() as counting:
        made = _kill_after(counting, 10**9)
        unmigrate(raw, MigPatient, batch_size=2)
        total = made[0]
    for calls in range(1, total + 1):
        _reset(raw)
        raw[NAME].insert_many([dict(d) for d in sources])
        migrate(raw, MigPatient)
        with monkeypatch.context() as killing:
            _kill_after(killing, calls)
            with pytest.raises(Killed):
                unmigrate(raw, MigPatient, batch_size=2)
        unmigrate(raw, MigPatient, batch_size=2)
        assert _raw_bytes(raw) == before, calls
        assert raw[IDENTITY].count_documents({}) == 0, calls


def test_a_row_whose_link_is_no_pseudonym_stops_unmigrate_instead_of_looping(raw: Any) -> None:
    raw[NAME].insert_many(_sources(2))
    migrate(raw, MigPatient)
    raw[NAME].insert_one({"_id": "broken", "_pseudonym": None, "blood_type": "A+"})
    with pytest.raises(ConfigurationError, match="not a pseudonym"):
        unmigrate(raw, MigPatient)
