"""A list running while a document is deleted sees it whole or not at all, through both facades.

The reader's find reads the clinical rows of a page, then their identity rows (and, for a
subject whose key this process does not hold, the key). A hook between the reader's requests
deletes one of the page's documents, by every way an application deletes, at the two points
where the delete can cut the reader's join: before the identity read (the identity row is gone
by then) and before the key is loaded (the row was read, its key is shredded by then). Natively
the reader returns the other documents, each whole; so must the wrapped read, and Beanie must
not fail validation on a document without its required identity fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import mongoengine as me
import pymongo
import pytest
from mongomock.store import ServerStore
from pymongo import DeleteOne

import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from privata_mongo.config import current
from privata_mongo.embedded import AsyncMockClient
from privata_mongo.encryption import forget_keys
from privata_mongo.testing.serialised import delayed_embedded, serialised_mongomock
from testkit.backends import Backend

COLLECTION = "interleaved_patient"
IDENTITY = f"{COLLECTION}__identity"
MEMBERS = "interleaved_members"


def _vault_name() -> str:
    return current().key_vault_namespace.partition(".")[2]


@dataclass
class Hook:
    """Runs ``action`` once, before the first ``find`` on the collection named ``before``."""

    before: str = ""
    action: Callable[[], Any] | None = None
    fired: bool = False

    def due(self, collection: str) -> bool:
        if self.fired or self.action is None or collection != self.before:
            return False
        self.fired = True
        return True


class _Cursor:
    """An async cursor whose first read waits for the hook's (async) action."""

    def __init__(self, inner: Any, action: Callable[[], Awaitable[Any]]) -> None:
        self._inner = inner
        self._action: Callable[[], Awaitable[Any]] | None = action

    async def _run(self) -> None:
        if self._action is not None:
            action, self._action = self._action, None
            await action()

    async def to_list(self, *args: Any, **kwargs: Any) -> Any:
        await self._run()
        return await self._inner.to_list(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Collection:
    def __init__(self, inner: Any, hook: Hook) -> None:
        self._inner = inner
        self._hook = hook

    def find(self, *args: Any, **kwargs: Any) -> Any:
        if not self._hook.due(self._inner.name):
            return self._inner.find(*args, **kwargs)
        assert self._hook.action is not None
        if inspect.iscoroutinefunction(self._hook.action):
            return _Cursor(self._inner.find(*args, **kwargs), self._hook.action)
        self._hook.action()  # the sync cursor reads when iterated: after the action
        return self._inner.find(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name == "with_options":
            return lambda **kw: _Collection(attribute(**kw), self._hook)
        if name == "database":
            return _Database(attribute, self._hook)
        return attribute


class _Database:
    def __init__(self, inner: Any, hook: Hook) -> None:
        self._inner = inner
        self._hook = hook

    @property
    def client(self) -> _Client:
        return _Client(self._inner.client, self._hook)

    def get_collection(self, name: str, **options: Any) -> _Collection:
        return _Collection(self._inner.get_collection(name, **options), self._hook)

    def __getitem__(self, name: str) -> _Collection:
        return self.get_collection(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Client:
    def __init__(self, inner: Any, hook: Hook) -> None:
        self._inner = inner
        self._hook = hook

    def get_database(self, name: str | None = None, **options: Any) -> _Database:
        return _Database(self._inner.get_database(name, **options), self._hook)

    def __getitem__(self, name: str) -> _Database:
        return self.get_database(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _hooked_client_class(inner_class: Callable[..., Any], hook: Hook) -> Callable[..., Any]:
    class HookedClient(_Client):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(inner_class(*args, **kwargs), hook)

    return HookedClient


# -- mongoengine -----------------------------------------------------------------------------


def _model() -> Any:
    class InterleavedPatient(pm.Document):
        first_name = pm.StringField(required=True)
        email = pm.StringField(required=True)
        diagnosis = pm.StringField()
        meta = {"collection": COLLECTION}

    return InterleavedPatient


@pytest.fixture
def hooked(backend: Backend) -> Any:
    """The facade connected through a hooked client; yields the hook."""
    hook = Hook()
    settings = backend.mongoengine_settings()
    inner = settings.pop("mongo_client_class", pymongo.MongoClient)
    pm.connect(db=backend.db_name, mongo_client_class=_hooked_client_class(inner, hook), **settings)
    try:
        yield hook
    finally:
        me.disconnect()


DELETES: dict[str, Callable[[Any, Any], Any]] = {
    "doc.delete": lambda Patient, doc: doc.delete(),
    "QuerySet.delete": lambda Patient, doc: Patient.objects(email=doc.email).delete(),
    "delete_one": lambda Patient, doc: Patient._get_collection().delete_one({"_id": doc.id}),
    "delete_many": lambda Patient, doc: Patient._get_collection().delete_many({"email": doc.email}),
    "find_one_and_delete": lambda Patient, doc: Patient._get_collection().find_one_and_delete(
        {"_id": doc.id}
    ),
    "bulk_write": lambda Patient, doc: Patient._get_collection().bulk_write(
        [DeleteOne({"_id": doc.id})]
    ),
}


@pytest.mark.parametrize("where", ["identity read", "key load"])
@pytest.mark.parametrize("how", sorted(DELETES))
def test_a_mongoengine_list_never_sees_half_of_a_deleted_document(
    hooked: Hook, backend: Backend, how: str, where: str
) -> None:
    Patient = _model()
    ada = Patient(first_name="Ada", email="ada@example.org", diagnosis="J45").save()
    Patient(first_name="Grace", email="grace@example.org", diagnosis="E11").save()
    hooked.before = IDENTITY if where == "identity read" else _vault_name()
    hooked.action = lambda: DELETES[how](Patient, ada)
    forget_keys()  # the reader loads the keys: the key vault is read after the identity rows

    listed = [(p.first_name, p.email, p.diagnosis) for p in Patient.objects.order_by("id")]

    assert hooked.fired
    assert listed == [("Grace", "grace@example.org", "E11")]
    raw = backend.client()
    try:
        stored = raw[backend.db_name]
        assert stored[COLLECTION].count_documents({}) == 1
        assert stored[IDENTITY].count_documents({}) == 1
    finally:
        raw.close()


def test_a_mongoengine_read_of_an_erased_subject_still_returns_the_kept_document(
    connected: Any,
) -> None:
    # erasure with the pseudonymise policy keeps the clinical row and removes the identity
    # row: the documented read is the document without identity values, not an absence
    class ErasedPatient(pm.Document):
        first_name = pm.StringField()
        diagnosis = pm.StringField()
        meta = {"collection": "erased_patient"}

    ErasedPatient(first_name="Ada", diagnosis="J45").save()
    ErasedPatient(first_name="Grace", diagnosis="E11").save()
    ada = connected["erased_patient"].find_one({"diagnosis": "J45"})
    connected["erased_patient__identity"].delete_one({"_id": ada["_pseudonym"]})

    listed = [(p.first_name, p.diagnosis) for p in ErasedPatient.objects.order_by("id")]

    assert listed == [(None, "J45"), ("Grace", "E11")]


# -- Beanie ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _beanie_database(backend: Backend, hook: Hook) -> AsyncIterator[Any]:
    client: Any = (
        AsyncMockClient(ServerStore())
        if backend.uri is None
        else pymongo.AsyncMongoClient(backend.uri, uuidRepresentation="standard")
    )
    try:
        yield _Database(client[backend.db_name], hook)
    finally:
        if backend.uri is not None:
            await client.drop_database(backend.db_name)
        await client.close()


def _member() -> Any:
    class InterleavedMember(pb.Document):
        first_name: str  # required: a document without it fails Beanie's validation
        email: str
        ward: str

        class Settings:
            name = MEMBERS

    return InterleavedMember


BEANIE_DELETES: dict[str, Callable[[Any, Any], Awaitable[Any]]] = {
    "doc.delete": lambda Member, doc: doc.delete(),
    "find.delete": lambda Member, doc: Member.find(Member.ward == doc.ward).delete(),
    "delete_many": lambda Member, doc: Member.get_pymongo_collection().delete_many(
        {"ward": doc.ward}
    ),
    "find_one_and_delete": lambda Member, doc: Member.get_pymongo_collection().find_one_and_delete(
        {"_id": doc.id}
    ),
}


@pytest.mark.parametrize("where", ["identity read", "key load"])
@pytest.mark.parametrize("how", sorted(BEANIE_DELETES))
async def test_a_beanie_list_never_sees_half_of_a_deleted_document(
    backend: Backend, how: str, where: str
) -> None:
    hook = Hook()
    async with _beanie_database(backend, hook) as database:
        Member = _member()
        await pb.init_beanie(database=database, document_models=[Member])
        ada = await Member(first_name="Ada", email="ada@example.org", ward="A").insert()
        await Member(first_name="Grace", email="grace@example.org", ward="B").insert()

        async def delete() -> None:
            await BEANIE_DELETES[how](Member, ada)

        hook.before = f"{MEMBERS}__identity" if where == "identity read" else _vault_name()
        hook.action = delete
        forget_keys()

        listed = [(m.first_name, m.ward) for m in await Member.find_all().sort("+_id").to_list()]

        assert hook.fired
        assert listed == [("Grace", "B")]
        assert await database[MEMBERS].count_documents({}) == 1
        assert await database[f"{MEMBERS}__identity"].count_documents({}) == 1


# -- under load: readers and a deleter in threads and tasks ----------------------------------

LATENCY = 0.0002
"""Seconds of simulated round trip per mongomock operation, so threads interleave as on a
server (``privata_mongo.testing.serialised``)."""


def test_mongoengine_lists_beside_a_deleter_in_threads_see_only_whole_documents(
    connected: Any, backend: Backend
) -> None:
    Patient = _model()
    documents = [
        Patient(first_name=f"N{i}", email=f"n{i}@example.org", diagnosis="J45").save()
        for i in range(40)
    ]
    done = threading.Event()
    half: list[tuple[Any, ...]] = []
    listings = 0

    def deleter() -> None:
        try:
            for document in documents:
                document.delete()
        finally:
            done.set()

    def reader() -> None:
        nonlocal listings
        while not done.is_set():
            for p in Patient.objects:
                if p.first_name is None or p.email is None:
                    half.append((p.first_name, p.email, p.diagnosis))
            listings += 1

    atomic = (
        serialised_mongomock(LATENCY) if backend.name == "mongomock" else contextlib.nullcontext()
    )
    with atomic, ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(deleter), pool.submit(reader), pool.submit(reader)]
        for future in futures:
            future.result()
    assert listings > 2
    assert half == []
    assert Patient.objects.count() == 0


async def test_beanie_lists_beside_a_deleter_in_tasks_see_only_whole_documents(
    backend: Backend,
) -> None:
    async with _beanie_database(backend, Hook()) as database:
        Member = _member()
        await pb.init_beanie(database=database, document_models=[Member])
        members = [
            await Member(first_name=f"N{i}", email=f"n{i}@example.org", ward="A").insert()
            for i in range(40)
        ]
        done = asyncio.Event()
        listings = 0

        async def deleter() -> None:
            try:
                for member in members:
                    await member.delete()
            finally:
                done.set()

        async def reader() -> None:
            nonlocal listings
            while not done.is_set():
                # a document without its identity fields fails validation here
                await Member.find_all().to_list()
                listings += 1

        delayed = delayed_embedded(LATENCY) if backend.uri is None else contextlib.nullcontext()
        with delayed:
            await asyncio.gather(deleter(), reader(), reader())
        assert listings > 2
        assert await Member.count() == 0
