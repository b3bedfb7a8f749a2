"""The cache of identity rows and wrapped data keys (``configure(cache=...)``, docs/cache.md).

A get by id is served from the cache once a row was read; every write that changes an identity
row (update, replace, find-and-modify, bulk, rectification, delete, erasure, shredding)
invalidates it, so the next read sees the change; the cache holds only ciphertext and wrapped
keys, never an identity value or an unwrapped key; an unreachable cache is a miss, except for
an erasure, which refuses to start. The memory cache and Redis (``redis_uri``) run the same
tests, on every backend.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from pymongo import DeleteOne, ReplaceOne, UpdateOne

import privata_mongo
import privata_mongo.beanie as pb
import privata_mongo.config
import privata_mongo.mongoengine as pm
from compat_suite.requirements import requires
from privata_mongo import AsyncRights, Rights, access_context
from privata_mongo.audit import subject_of
from privata_mongo.config import current
from privata_mongo.core.cache import key_entry, row_entry
from privata_mongo.core.crypto import aead
from privata_mongo.encryption import shred
from privata_mongo.errors import CacheUnavailable
from privata_mongo.restriction import restrict
from privata_mongo.rights import Subject
from privata_mongo.runtime.cache import async_cache, close_async_caches, close_caches, sync_cache
from privata_mongo.runtime.keys import kms_providers
from testkit.backends import Backend, beanie_database

CONTEXT = {"actor": "dr.lee", "purpose": "care", "legal_basis": "GDPR Art. 9(2)(h)"}


@pytest.fixture(autouse=True)
def _settings_restored() -> Iterator[None]:
    """The cache settings of a test end with it, and so do its Redis connections."""
    saved = current()
    try:
        yield
    finally:
        privata_mongo.config._current = saved
        close_caches()


@pytest.fixture(params=["memory", "redis"])
def cache_uri(request: pytest.FixtureRequest) -> str:
    """The cache of the test: this process's memory, or the session's redis-server."""
    if request.param == "memory":
        return "memory://"
    uri: str = request.getfixturevalue("redis_uri")
    return uri


@pytest.fixture
def cached(connected: Any, cache_uri: str) -> Any:
    """The facade connected with the cache on; the raw database."""
    privata_mongo.configure(cache=cache_uri)
    privata_mongo.cache_stats(reset=True)
    return connected


def _model() -> Any:
    class CachedPatient(pm.Document):
        first_name = pm.StringField()
        email = pm.StringField()
        diagnosis = pm.StringField()
        meta = {"collection": "cached_patient"}

    return CachedPatient


def _cache() -> Any:
    return sync_cache(current())


def _row_entry(db: Any, doc: Any) -> str:
    pseudonym = subject_of(db, "cached_patient", doc.id)
    return row_entry(db.name, "cached_patient__identity", pseudonym)


def _name(Patient: Any, id: Any) -> Any:
    return Patient.objects.get(id=id).first_name


def test_a_second_get_by_id_is_served_from_the_cache(cached: Any) -> None:
    Patient = _model()
    ada = Patient(first_name="Ada", email="ada@example.org", diagnosis="J45").save()
    assert _name(Patient, ada.id) == "Ada"
    first = privata_mongo.cache_stats()
    assert _name(Patient, ada.id) == "Ada"
    second = privata_mongo.cache_stats()
    # the row (and its key) missed once, then hit
    assert first.misses >= 1
    assert second.hits - first.hits >= 1
    assert second.misses == first.misses
    assert 0.0 < second.hit_rate < 1.0


def _cached_values(uri: str) -> list[bytes]:
    if uri == "memory://":
        cache = sync_cache(current())
        assert cache is not None
        return cache.values()  # type: ignore[union-attr]
    client = redis.Redis.from_url(uri)
    try:
        keys = client.keys("privata:*")
        return [v for v in client.mget(keys) if v is not None] if keys else []
    finally:
        client.close()


def test_the_cache_holds_ciphertext_and_wrapped_keys_only(cached: Any, cache_uri: str) -> None:
    Patient = _model()
    ada = Patient(first_name="Adaline", email="adaline@example.org", diagnosis="J45").save()
    assert _name(Patient, ada.id) == "Adaline"
    assert _name(Patient, ada.id) == "Adaline"
    pseudonym = subject_of(cached, "cached_patient", ada.id)
    database, _, collection = current().key_vault_namespace.partition(".")
    document = cached.client[database][collection].find_one({"keyAltNames": pseudonym})
    master = kms_providers(current(), embedded=True)["local"]["key"]
    unwrapped = aead.decrypt(master, bytes(document["keyMaterial"]), b"")
    values = _cached_values(cache_uri)
    assert any(bytes(document["keyMaterial"]) in v for v in values)  # the wrapped key is cached
    assert len(values) >= 2  # and the row
    for value in values:
        for secret in (b"Adaline", b"adaline@example.org", unwrapped, unwrapped[:32]):
            assert secret not in value


def _save(Patient: Any, ada: Any) -> None:
    ada.first_name = "Augusta"
    ada.save()


def _queryset_update(Patient: Any, ada: Any) -> None:
    Patient.objects(id=ada.id).update(set__first_name="Augusta")


def _update_one(Patient: Any, ada: Any) -> None:
    Patient._get_collection().update_one({"_id": ada.id}, {"$set": {"first_name": "Augusta"}})


def _replace_one(Patient: Any, ada: Any) -> None:
    Patient._get_collection().replace_one(
        {"_id": ada.id}, {"first_name": "Augusta", "email": "ada@example.org"}
    )


def _find_one_and_update(Patient: Any, ada: Any) -> None:
    Patient._get_collection().find_one_and_update(
        {"_id": ada.id}, {"$set": {"first_name": "Augusta"}}
    )


def _bulk_update(Patient: Any, ada: Any) -> None:
    Patient._get_collection().bulk_write(
        [UpdateOne({"_id": ada.id}, {"$set": {"first_name": "Augusta"}})]
    )


def _bulk_replace(Patient: Any, ada: Any) -> None:
    Patient._get_collection().bulk_write(
        [ReplaceOne({"_id": ada.id}, {"first_name": "Augusta", "email": "ada@example.org"})]
    )


def _rectify(Patient: Any, ada: Any) -> None:
    pseudonym = subject_of(Patient._get_db(), "cached_patient", ada.id)
    with access_context(**CONTEXT):
        Rights([Patient]).rectify(pseudonym, Patient, {"first_name": "Augusta"})


WRITES: dict[str, Callable[[Any, Any], None]] = {
    "save": _save,
    "QuerySet.update": _queryset_update,
    "update_one": _update_one,
    "replace_one": _replace_one,
    "find_one_and_update": _find_one_and_update,
    "bulk_write UpdateOne": _bulk_update,
    "bulk_write ReplaceOne": _bulk_replace,
    "Rights.rectify": _rectify,
}


@pytest.mark.parametrize("how", sorted(WRITES))
def test_every_write_invalidates_the_cached_row(cached: Any, how: str) -> None:
    Patient = _model()
    ada = Patient(first_name="Ada", email="ada@example.org").save()
    assert _name(Patient, ada.id) == "Ada"
    entry = _row_entry(cached, ada)
    assert set(_cache().get([entry])) == {entry}  # served from the cache now
    WRITES[how](Patient, ada)
    assert _cache().get([entry]) == {}  # held: the old row cannot be put back
    assert _name(Patient, ada.id) == "Augusta"
    assert _cache().get([entry]) == {}  # nor the new one, until the hold ends
    assert _name(Patient, ada.id) == "Augusta"


DELETES: dict[str, Callable[[Any, Any], None]] = {
    "QuerySet.delete": lambda Patient, ada: Patient.objects(id=ada.id).delete(),
    "doc.delete": lambda Patient, ada: ada.delete(),
    "delete_many": lambda Patient, ada: Patient._get_collection().delete_many({"_id": ada.id}),
    "find_one_and_delete": lambda Patient, ada: Patient._get_collection().find_one_and_delete(
        {"_id": ada.id}
    ),
    "bulk_write DeleteOne": lambda Patient, ada: Patient._get_collection().bulk_write(
        [DeleteOne({"_id": ada.id})]
    ),
}


@pytest.mark.parametrize("how", sorted(DELETES))
def test_a_delete_invalidates_the_cached_row(cached: Any, how: str) -> None:
    Patient = _model()
    ada = Patient(first_name="Ada", email="ada@example.org").save()
    assert _name(Patient, ada.id) == "Ada"
    pseudonym = subject_of(cached, "cached_patient", ada.id)
    entry = _row_entry(cached, ada)
    assert set(_cache().get([entry])) == {entry}
    DELETES[how](Patient, ada)
    assert _cache().get([entry]) == {}
    # a clinical row restored from a backup finds no identity row, not the cached one
    cached["cached_patient"].insert_one({"_id": ada.id, "_pseudonym": pseudonym})
    assert _name(Patient, ada.id) is None


def test_a_restriction_mark_invalidates_the_cached_row(cached: Any) -> None:
    Patient = _model()
    ada = Patient(first_name="Ada", email="ada@example.org").save()
    assert _name(Patient, ada.id) == "Ada"
    entry = _row_entry(cached, ada)
    assert set(_cache().get([entry])) == {entry}
    restrict(pm.get_db(), subject_of(cached, "cached_patient", ada.id), allowed_purposes=["care"])
    assert _cache().get([entry]) == {}


def test_an_erasure_invalidates_the_cached_row_and_key(cached: Any) -> None:
    Patient = _model()
    ada = Patient(first_name="Ada", email="ada@example.org", diagnosis="J45").save()
    assert _name(Patient, ada.id) == "Ada"
    names = [_row_entry(cached, ada), key_entry(subject_of(cached, "cached_patient", ada.id))]
    assert set(_cache().get(names)) == set(names)
    with access_context(**CONTEXT):
        Rights([Patient]).erase(Subject(model="CachedPatient", id=ada.id))
    assert _cache().get(names) == {}
    after = Patient.objects.get(id=ada.id)
    assert (after.first_name, after.email, after.diagnosis) == (None, None, "J45")


def test_a_shredded_subject_reads_as_erased_though_its_row_is_cached(cached: Any) -> None:
    Patient = _model()
    ada = Patient(first_name="Ada", email="ada@example.org", diagnosis="J45").save()
    assert _name(Patient, ada.id) == "Ada"
    shred(cached.client, [subject_of(cached, "cached_patient", ada.id)])
    after = Patient.objects.get(id=ada.id)
    assert (after.first_name, after.email, after.diagnosis) == (None, None, "J45")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_an_unreachable_cache_is_a_miss_but_stops_an_erasure(connected: Any) -> None:
    Patient = _model()
    ada = Patient(first_name="Ada", email="ada@example.org").save()
    privata_mongo.configure(cache=f"redis://127.0.0.1:{_closed_port()}/0")
    assert _name(Patient, ada.id) == "Ada"
    Patient.objects(id=ada.id).update(set__first_name="Augusta")
    assert _name(Patient, ada.id) == "Augusta"
    with access_context(**CONTEXT), pytest.raises(CacheUnavailable, match="did not start"):
        shred(connected.client, [subject_of(connected, "cached_patient", ada.id)])
    assert _name(Patient, ada.id) == "Augusta"  # nothing was shredded


def test_the_cache_is_off_by_default(connected: Any) -> None:
    assert current().cache is None
    Patient = _model()
    ada = Patient(first_name="Ada").save()
    before = privata_mongo.cache_stats()
    assert _name(Patient, ada.id) == "Ada"
    assert privata_mongo.cache_stats() == before


@pytest.mark.parametrize(
    "uri", ["memcached://127.0.0.1:11211", "redis://127.0.0.1:6379/x", "redis://h:port/0", 42]
)
def test_a_bad_cache_uri_is_refused(uri: Any) -> None:
    with pytest.raises(privata_mongo.ConfigurationError, match="cache"):
        privata_mongo.configure(cache=uri)


@pytest.mark.parametrize(
    ("name", "value"), [("cache_ttl", 0), ("cache_ttl", "60"), ("key_recheck_ms", 0)]
)
def test_a_bad_cache_duration_is_refused(name: str, value: Any) -> None:
    with pytest.raises(privata_mongo.ConfigurationError, match=name):
        privata_mongo.configure(**{name: value})


READER = textwrap.dedent(
    """
    import json, sys, time
    import privata_mongo
    import privata_mongo.mongoengine as pm

    uri, db, vault, cache, recheck_ms, id_hex = sys.argv[1:7]
    privata_mongo.configure(key_vault_namespace=vault, cache=cache,
                            key_recheck_ms=int(recheck_ms))
    pm.connect(db=db, host=uri, uuidRepresentation="standard")

    class CachedPatient(pm.Document):
        first_name = pm.StringField()
        email = pm.StringField()
        diagnosis = pm.StringField()
        meta = {"collection": "cached_patient"}

    from bson import ObjectId
    oid = ObjectId(id_hex)
    print(json.dumps({"read": CachedPatient.objects.get(id=oid).first_name}), flush=True)
    sys.stdin.readline()  # the other process has shredded the subject
    erased_at = time.monotonic()
    seen = []
    while time.monotonic() - erased_at < 5:
        name = CachedPatient.objects.get(id=oid).first_name
        seen.append(name)
        if name is None:
            break
        time.sleep(0.01)
    waited_ms = (time.monotonic() - erased_at) * 1000
    time.sleep(int(recheck_ms) / 1000)
    after = CachedPatient.objects.get(id=oid)
    print(json.dumps({"waited_ms": waited_ms, "decrypted_reads": len(seen) - 1,
                      "after": [after.first_name, after.email, after.diagnosis]}), flush=True)
    """
)


def _shred(db: Any, Patient: Any, ada: Any) -> None:
    shred(db.client, [subject_of(db, "cached_patient", ada.id)])


def _erase(db: Any, Patient: Any, ada: Any) -> None:
    with access_context(**CONTEXT):
        Rights([Patient]).erase(Subject(model="CachedPatient", id=ada.id))


@requires("forked_processes")
@pytest.mark.parametrize("erase", [_shred, _erase], ids=["shred", "Rights.erase"])
def test_a_shredding_in_one_process_stops_another_within_the_key_recheck_interval(
    backend: Backend, connected: Any, redis_uri: str, erase: Callable[[Any, Any, Any], None]
) -> None:
    """Process B reads S, process A erases S, B's reads after ``key_recheck_ms`` are erased.

    A shredding keeps the identity row: B stops decrypting it once its recheck finds the
    key's hold. An erasure also deletes the row and holds its cache entry: B finds neither.
    """
    assert backend.uri is not None, "needs a server shared by two processes"
    recheck_ms = 500
    privata_mongo.configure(cache=redis_uri, key_recheck_ms=recheck_ms)
    Patient = _model()
    ada = Patient(first_name="Ada", email="ada@example.org", diagnosis="J45").save()
    with subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [
            sys.executable,
            "-c",
            READER,
            backend.uri,
            backend.db_name,
            current().key_vault_namespace,
            redis_uri,
            str(recheck_ms),
            str(ada.id),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    ) as reader:
        assert reader.stdout is not None
        assert reader.stdin is not None
        line = reader.stdout.readline()
        assert line, reader.stderr.read() if reader.stderr else ""
        assert json.loads(line) == {"read": "Ada"}
        started = time.monotonic()
        erase(connected, Patient, ada)
        reader.stdin.write("shredded\n")
        reader.stdin.flush()
        report = json.loads(reader.stdout.readline())
        shredding_ms = (time.monotonic() - started) * 1000
        reader.stdin.close()
        reader.wait(30)
    # the key B held in memory was rechecked against the shared cache within the bound
    assert report["waited_ms"] <= recheck_ms + 250 + shredding_ms, report
    assert report["after"] == [None, None, "J45"], report


def _beanie_model() -> Any:
    class CachedVisitor(pb.Document):
        first_name: str | None = None
        email: str | None = None
        ward: str = "A"

        class Settings:
            name = "cached_visitor"

    return CachedVisitor


async def test_the_async_facade_caches_and_invalidates(backend: Backend, cache_uri: str) -> None:
    privata_mongo.configure(cache=cache_uri)
    async with beanie_database(backend) as raw:
        Visitor = _beanie_model()
        await pb.init_beanie(database=raw, document_models=[Visitor])
        ada = await Visitor(first_name="Ada", email="ada@example.org").insert()
        assert (await Visitor.get(ada.id)).first_name == "Ada"
        pseudonym = (await raw["cached_visitor"].find_one({"_id": ada.id}))["_pseudonym"]
        entry = row_entry(raw.name, "cached_visitor__identity", pseudonym)
        cache = async_cache(current())
        assert cache is not None
        before = privata_mongo.cache_stats()
        assert (await Visitor.get(ada.id)).first_name == "Ada"
        assert privata_mongo.cache_stats().hits > before.hits
        assert set(await cache.get([entry])) == {entry}
        ada.first_name = "Augusta"
        await ada.save()
        assert await cache.get([entry]) == {}
        assert (await Visitor.get(ada.id)).first_name == "Augusta"
        with access_context(**CONTEXT):
            await AsyncRights([Visitor]).erase(Subject(model="CachedVisitor", id=ada.id))
        names = [entry, key_entry(pseudonym)]
        assert await cache.get(names) == {}
        after = await Visitor.get(ada.id)
        assert (after.first_name, after.email, after.ward) == (None, None, "A")
        await close_async_caches()
