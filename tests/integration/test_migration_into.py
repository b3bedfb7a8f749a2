"""Migration into new collections, on every backend: inserts only, resumable, swapped, left.

The source is only read; a run killed after any request and run again ends in the state of
one never interrupted; ``swap`` is refused until the copy verifies; ``unmigrate --into`` gives
back the source documents byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bson import ObjectId

from privata_mongo import access_context
from privata_mongo.errors import ConfigurationError
from privata_mongo.migration import migrate, swap_migration, unmigrate, verify_migration
from testkit.backends import Backend

from .test_migration import (
    IDENTITY,
    NAME,
    Killed,
    MigNote,
    MigPatient,
    _kill_after,
    _pseudonym_keys,
    _raw_bytes,
    _reset,
    _sources,
)

INTO = NAME + "__split"
INTO_IDENTITY = INTO + "__identity"
BACKUP = NAME + "__plaintext"
BACK = NAME + "__restored"


@pytest.fixture
def raw(connected: Any) -> Iterator[Any]:
    with access_context(actor="ops", purpose="migration", legal_basis="art6_1c"):
        yield connected


def _reset_into(db: Any) -> None:
    _reset(db)
    for name in (INTO, INTO_IDENTITY, BACKUP, BACK):
        db.drop_collection(name)


def test_the_source_is_only_read_and_the_copy_is_what_the_facade_stores(raw: Any) -> None:
    raw[NAME].insert_many(_sources(5))
    before = _raw_bytes(raw)
    seen: list[tuple[int, int]] = []
    report = migrate(
        raw, MigPatient, batch_size=2, into=INTO, progress=lambda d, t: seen.append((d, t))
    )
    assert (report.migrated, report.batches, report.collection) == (6, 3, INTO)
    assert report.identity_collection == INTO_IDENTITY
    assert seen[-1] == (6, 6)
    assert _raw_bytes(raw) == before  # the source is untouched
    assert raw[INTO].count_documents({"_pseudonym": {"$exists": True}}) == 6
    assert raw[INTO_IDENTITY].count_documents({}) == 6
    assert IDENTITY not in raw.list_collection_names()
    assert "Person 1" not in repr(list(raw[INTO_IDENTITY].find({})))
    assert "Person" not in repr(list(raw[INTO].find({})))
    again = migrate(raw, MigPatient, into=INTO)
    assert (again.migrated, again.already_migrated) == (0, 6)  # idempotent
    checked = verify_migration(raw, MigPatient, into=INTO)
    assert checked.ok, checked
    assert (checked.source, checked.migrated, checked.identity_rows, checked.sampled) == (
        6,
        6,
        6,
        6,
    )


def test_dry_run_into_reads_only(raw: Any) -> None:
    raw[NAME].insert_many(_sources(3))
    report = migrate(raw, MigPatient, dry_run=True, into=INTO)
    assert report.plaintext == 4
    assert report.fields["email"].side == "identity"
    assert report.fields["visits"].documents == 4
    assert INTO not in raw.list_collection_names()


def test_swap_renames_copies_indexes_and_keeps_the_backup(raw: Any, backend: Backend) -> None:
    raw[NAME].insert_many(_sources(4))
    raw[NAME].create_index("email", unique=True, name="email_unique")
    raw[NAME].create_index("visits")
    before = _raw_bytes(raw)
    migrate(raw, MigPatient, into=INTO)
    swapped = swap_migration(raw, MigPatient, into=INTO)
    assert swapped.verified.ok
    assert sorted(swapped.indexes) == ["email_unique", "visits_1"]
    names = raw.list_collection_names()
    assert INTO not in names
    assert INTO_IDENTITY not in names
    assert _raw_bytes(raw, BACKUP) == before
    assert raw[NAME].count_documents({"_pseudonym": {"$exists": True}}) == 5
    assert raw[IDENTITY].count_documents({}) == 5
    assert "visits_1" in raw[NAME].index_information()
    assert "email_unique" not in raw[NAME].index_information()
    identity_indexes = raw[IDENTITY].index_information()
    assert any(
        dict(i["key"]) == {"_idx.email": 1} and i.get("unique") for i in identity_indexes.values()
    ), identity_indexes
    assert MigPatient.objects.get(email="p3@example.org").full_name == "Person 3"
    assert verify_migration(raw, MigPatient).ok  # the in-place check of the swapped collection
    with pytest.raises(ConfigurationError, match="swap is done"):
        swap_migration(raw, MigPatient, into=INTO)
    # leaving: the plaintext documents, byte for byte, in a new collection
    left = unmigrate(raw, MigPatient, into=BACK, batch_size=3)
    assert left.restored == 5
    assert _raw_bytes(raw, BACK) == before
    assert len(_pseudonym_keys(raw, backend)) == 5  # kept until the operator shreds


def test_swap_is_refused_when_the_copy_does_not_verify(raw: Any) -> None:
    raw[NAME].insert_many(_sources(3))
    migrate(raw, MigPatient, into=INTO)
    raw[NAME].insert_one({"_id": ObjectId(), "full_name": "Late Writer"})
    with pytest.raises(ConfigurationError, match="nothing was renamed"):
        swap_migration(raw, MigPatient, into=INTO)
    assert raw[NAME].count_documents({"_pseudonym": {"$exists": True}}) == 0
    assert INTO in raw.list_collection_names()
    changed = raw[NAME].find_one({"_id": "string-id"})
    migrate(raw, MigPatient, into=INTO)
    raw[NAME].update_one({"_id": changed["_id"]}, {"$set": {"visits": 8}})
    checked = verify_migration(raw, MigPatient, into=INTO)
    assert (checked.ok, checked.mismatched_ids) == (False, ("string-id",))


def test_bad_targets_are_refused(raw: Any) -> None:
    raw[NAME].insert_many(_sources(1))
    for name in (NAME, IDENTITY, ""):
        with pytest.raises(ConfigurationError, match="new"):
            migrate(raw, MigPatient, into=name)
    with pytest.raises(ConfigurationError, match="nothing to migrate"):
        migrate(raw, MigNote, into=INTO)
    with pytest.raises(ConfigurationError, match="never migrated"):
        verify_migration(raw, MigPatient, into=INTO)
    migrate(raw, MigPatient)
    with pytest.raises(ConfigurationError, match="split form already"):
        migrate(raw, MigPatient, into=INTO)
    with pytest.raises(ConfigurationError, match="--shred"):
        unmigrate(raw, MigPatient, into=BACK, shred=True)


@pytest.mark.parametrize("sweep_between", [False, True], ids=["resume", "sweep-then-resume"])
def test_a_copy_killed_after_any_request_ends_whole_when_run_again(
    raw: Any, backend: Backend, monkeypatch: pytest.MonkeyPatch, sweep_between: bool
) -> None:
    from privata_mongo.recovery import sweep

    sources = _sources(4)
    raw[NAME].insert_many([dict(d) for d in sources])
    before = _raw_bytes(raw)
    migrate(raw, MigPatient, batch_size=2, into=INTO)
    _reset_into(raw)
    raw[NAME].insert_many([dict(d) for d in sources])
    with monkeypatch.context() as counting:
        made = _kill_after(counting, 10**9)
        migrate(raw, MigPatient, batch_size=2, into=INTO)
        total = made[0]
    assert total > 10
    for calls in range(1, total + 1):
        _reset_into(raw)
        raw[NAME].insert_many([dict(d) for d in sources])
        with monkeypatch.context() as killing:
            _kill_after(killing, calls)
            with pytest.raises(Killed):
                migrate(raw, MigPatient, batch_size=2, into=INTO)
        if sweep_between:
            sweep(raw, older_than=0)
        migrate(raw, MigPatient, batch_size=2, into=INTO)
        checked = verify_migration(raw, MigPatient, sample=100, into=INTO)
        assert checked.ok, (calls, checked)
        assert (checked.identity_rows, checked.migrated) == (5, 5), calls
        keys = _pseudonym_keys(raw, backend)
        assert sorted(keys) == sorted(r["_id"] for r in raw[INTO_IDENTITY].find({})), calls
        swap_migration(raw, MigPatient, into=INTO)
        sweep(raw, older_than=0)  # nothing pending may name the swapped rows' subjects
        assert raw["privata_audit.intents"].count_documents({}) == 0, calls
        assert sorted(_pseudonym_keys(raw, backend)) == sorted(keys), calls
        unmigrate(raw, MigPatient, into=BACK, batch_size=2)
        assert _raw_bytes(raw, BACK) == before, calls


def test_an_unmigration_into_killed_part_way_ends_whole_when_run_again(raw: Any) -> None:
    raw[NAME].insert_many(_sources(6))
    before = _raw_bytes(raw)
    migrate(raw, MigPatient)
    calls = [0]

    def stop(done: int, total: int) -> None:
        calls[0] += 1
        if calls[0] == 3:  # after the second batch
            raise Killed

    with pytest.raises(Killed):
        unmigrate(raw, MigPatient, into=BACK, batch_size=2, progress=stop)
    assert raw[BACK].count_documents({}) == 4
    again = unmigrate(raw, MigPatient, into=BACK, batch_size=2)
    assert again.restored == 3
    assert _raw_bytes(raw, BACK) == before
