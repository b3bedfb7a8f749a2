"""The five alternatives, each performing the benchmark's operations its own idiomatic way.

- ``mongoengine`` and ``privata.mongoengine``: the same model classes' definitions, connected
  with ``mongoengine.connect`` or ``privata_mongo.mongoengine.connect``.
- ``beanie`` and ``privata.beanie``: the same, with ``init_beanie`` from either module (all
  classes are defined before either ``init_beanie`` runs: Beanie initialises classes of the
  MRO that later definitions inherit from).
- ``pymongo`` and ``pymongo+csfle``: raw pymongo, and what an application would write by
  hand instead of privata: explicit client-side field-level encryption with
  ``pymongo.encryption.ClientEncryption``, one data key, each identity field encrypted
  (the e-mail deterministically, so that it can be searched by equality).

Each operation method performs one iteration's operations (a list of arguments); the runner
times the call.
"""

from __future__ import annotations

import asyncio
import functools
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, ClassVar

import bson
import mongoengine as me
import mongomock
import pymongo
from bson.binary import STANDARD, Binary
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from mongomock.store import ServerStore
from pymongo import monitoring
from pymongo.encryption import Algorithm, ClientEncryption

from stress.odm.data import IDENTITY_FIELDS, SEARCHABLE_FIELD

LOOP = asyncio.new_event_loop()
"""The one event loop every async client of a run lives on."""


class Backend:
    """Where the alternatives store: mongomock (one store each) or a server's URI."""

    def __init__(self, name: str, uri: str | None) -> None:
        self.name = name
        self.uri = uri

    @property
    def embedded(self) -> bool:
        return self.uri is None


class Alternative:
    """What every alternative offers the runner (the operation methods are per family)."""

    name: ClassVar[str]
    family: ClassVar[str]
    wrapped: ClassVar[bool] = False

    def __init__(self, backend: Backend, listener: monitoring.CommandListener) -> None:
        self.backend = backend
        self.listener = listener
        self.store = ServerStore()
        self.db_name = (
            f"bench_{self.name.replace('.', '_').replace('+', '_')}_{uuid.uuid4().hex[:6]}"
        )

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def forget(self) -> None:
        """Empty the key cache (``cold`` tasks); nothing to empty natively."""


# -- mongoengine ---------------------------------------------------------------------------------


def _mongoengine_models(prefix: str, alias: str) -> tuple[Any, Any, Any]:
    fields = {
        "first_name": lambda: me.StringField(),
        "last_name": lambda: me.StringField(),
        "email": lambda: me.StringField(searchable=True),
        "date_of_birth": lambda: me.DateTimeField(),
        "blood_type": lambda: me.StringField(),
        "visits": lambda: me.IntField(),
        "notes": lambda: me.StringField(),
    }

    def model(name: str, collection: str, extra: dict[str, Any]) -> Any:
        attrs = {k: make() for k, make in fields.items()}
        attrs.update(extra)
        attrs["meta"] = {"db_alias": alias, "collection": collection}
        return type(f"{prefix}{name}", (me.Document,), attrs)

    patient = model("Patient", "patient", {})
    large = model("LargePatient", "large_patient", {"readings": me.ListField(me.FloatField())})
    visit = type(
        f"{prefix}Visit",
        (me.Document,),
        {
            "patient": me.ReferenceField(patient),
            "reason": me.StringField(),
            "meta": {"db_alias": alias, "collection": "visit"},
        },
    )
    return patient, large, visit


class MongoengineAlternative(Alternative):
    name = "mongoengine"
    family = "mongoengine"

    def _connect(self) -> Callable[..., Any]:
        return me.connect

    def open(self) -> None:
        self.alias = f"alias_{self.db_name}"
        if self.backend.embedded:
            inner = functools.partial(mongomock.MongoClient, _store=self.store)
            self._connect()(
                self.db_name,
                alias=self.alias,
                mongo_client_class=inner,
                uuidRepresentation="standard",
            )
        else:
            self._connect()(
                self.db_name,
                alias=self.alias,
                host=self.backend.uri,
                uuidRepresentation="standard",
                event_listeners=[self.listener],
            )
        prefix = "W" if self.wrapped else "N"
        self.Patient, self.Large, self.Visit = _mongoengine_models(prefix, self.alias)

    def close(self) -> None:
        if not self.backend.embedded:
            me.get_connection(self.alias).drop_database(self.db_name)
        me.disconnect(self.alias)

    def forget(self) -> None:
        if self.wrapped:
            from privata_mongo.encryption import forget_keys

            forget_keys()

    def reset(self) -> None:
        for model in (self.Patient, self.Large, self.Visit):
            model.drop_collection()

    def seed(self, documents: Sequence[dict[str, Any]], *, large: bool = False) -> list[Any]:
        model = self.Large if large else self.Patient
        return [d.id for d in model.objects.insert([model(**d) for d in documents])]

    def seed_visits(self, patient_ids: Sequence[Any], count: int) -> None:
        patients = list(self.Patient.objects(id__in=list(patient_ids)))
        self.Visit.objects.insert(
            [self.Visit(patient=patients[i % len(patients)], reason="check") for i in range(count)]
        )

    def create(self, documents: Sequence[dict[str, Any]], *, large: bool = False) -> None:
        model = self.Large if large else self.Patient
        for document in documents:
            model(**document).save()

    def get(self, ids: Sequence[Any]) -> None:
        for i in ids:
            self.Patient.objects.get(id=i)

    def find_email(self, emails: Sequence[str]) -> None:
        for email in emails:
            self.Patient.objects.get(email=email)

    def list(self, count: int, repeat: int) -> None:
        for _ in range(repeat):
            list(self.Patient.objects[:count])

    def clinical(self, ids: Sequence[Any]) -> None:
        for i in ids:
            self.Patient.objects(id=i).only("blood_type", "visits").first()

    def update_clinical(self, ids: Sequence[Any], *, large: bool = False) -> None:
        model = self.Large if large else self.Patient
        for n, i in enumerate(ids):
            model.objects(id=i).update_one(set__visits=n)

    def update_identity(self, ids: Sequence[Any]) -> None:
        for n, i in enumerate(ids):
            self.Patient.objects(id=i).update_one(set__last_name=f"Renamed{n}")

    def related(self, count: int, repeat: int) -> None:
        for _ in range(repeat):
            for visit in self.Visit.objects[:count].select_related():
                assert visit.patient.blood_type

    def create_large(self, documents: Sequence[dict[str, Any]]) -> None:
        self.create(documents, large=True)

    def update_large(self, ids: Sequence[Any]) -> None:
        self.update_clinical(ids, large=True)


class WrappedMongoengineAlternative(MongoengineAlternative):
    name = "privata.mongoengine"
    wrapped = True

    def _connect(self) -> Callable[..., Any]:
        import privata_mongo.mongoengine as pm

        return pm.connect


# -- Beanie --------------------------------------------------------------------------------------


def _beanie_models(odm: Any, prefix: str) -> tuple[Any, Any, Any]:
    from beanie import PydanticObjectId
    from pydantic import Field

    from privata_mongo.beanie import PII

    class Patient(odm.Document):  # type: ignore[misc]
        first_name: str
        last_name: str
        email: Annotated[str, PII(searchable=True)]
        date_of_birth: Any = None
        blood_type: str | None = None
        visits: int = 0
        notes: str | None = None

        class Settings:
            name = "patient"

    class LargePatient(Patient):
        readings: list[float] = Field(default_factory=list)

        class Settings:
            name = "large_patient"

    # Not ``Link[Patient]``: FerretDB v1.24 stores no DBRef ("invalid key: $ref") and has no
    # $lookup, and mongomock 4.3 does not follow DBRef paths (compat_suite/requirements.py),
    # so on both backends a Beanie application keeps the id and joins with a second query.
    class Visit(odm.Document):  # type: ignore[misc]
        patient_id: PydanticObjectId
        reason: str | None = None

        class Settings:
            name = "visit"

    for cls in (Patient, LargePatient, Visit):
        cls.__name__ = cls.__qualname__ = f"{prefix}{cls.__name__}"
    return Patient, LargePatient, Visit


class ClinicalView:
    """Beanie's projection model of the clinical fields (built once per run)."""

    model: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls.model is None:
            from pydantic import BaseModel

            class Clinical(BaseModel):
                blood_type: str | None = None
                visits: int = 0

            cls.model = Clinical
        return cls.model


class BeanieAlternative(Alternative):
    name = "beanie"
    family = "beanie"

    def _odm(self) -> Any:
        import beanie

        return beanie

    def define(self) -> None:
        """Define the classes (every alternative's, before any ``init_beanie``)."""
        self.Patient, self.Large, self.Visit = _beanie_models(
            self._odm(), "W" if self.wrapped else "N"
        )

    def _run(self, coroutine: Any) -> Any:
        return LOOP.run_until_complete(coroutine)

    def open(self) -> None:
        if self.backend.embedded:
            from privata_mongo.embedded import AsyncMockClient

            self.client: Any = AsyncMockClient(self.store)
        else:
            self.client = pymongo.AsyncMongoClient(
                self.backend.uri, uuidRepresentation="standard", event_listeners=[self.listener]
            )
        self.database = self.client[self.db_name]
        self._run(
            self._odm().init_beanie(
                database=self.database, document_models=[self.Patient, self.Large, self.Visit]
            )
        )

    def close(self) -> None:
        async def close() -> None:
            if not self.backend.embedded:
                await self.client.drop_database(self.db_name)
            await self.client.close()

        self._run(close())

    def forget(self) -> None:
        if self.wrapped:
            from privata_mongo.encryption import forget_keys

            forget_keys()

    def reset(self) -> None:
        async def reset() -> None:
            for model in (self.Patient, self.Large, self.Visit):
                await model.delete_all()

        self._run(reset())

    def seed(self, documents: Sequence[dict[str, Any]], *, large: bool = False) -> list[Any]:
        model = self.Large if large else self.Patient

        async def seed() -> list[Any]:
            models = [model(**d) for d in documents]
            await model.insert_many(models)
            return [m.id for m in await model.find_all().to_list()]

        return list(self._run(seed()))

    def seed_visits(self, patient_ids: Sequence[Any], count: int) -> None:
        async def seed() -> None:
            ids = list(patient_ids)
            await self.Visit.insert_many(
                [self.Visit(patient_id=ids[i % len(ids)], reason="check") for i in range(count)]
            )

        self._run(seed())

    def create(self, documents: Sequence[dict[str, Any]], *, large: bool = False) -> None:
        model = self.Large if large else self.Patient

        async def create() -> None:
            for document in documents:
                await model(**document).insert()

        self._run(create())

    def get(self, ids: Sequence[Any]) -> None:
        async def get() -> None:
            for i in ids:
                assert await self.Patient.get(i) is not None

        self._run(get())

    def find_email(self, emails: Sequence[str]) -> None:
        async def find() -> None:
            for email in emails:
                assert await self.Patient.find_one(self.Patient.email == email) is not None

        self._run(find())

    def list(self, count: int, repeat: int) -> None:
        async def listing() -> None:
            for _ in range(repeat):
                await self.Patient.find_all(limit=count).to_list()

        self._run(listing())

    def clinical(self, ids: Sequence[Any]) -> None:
        view = ClinicalView.get()

        async def clinical() -> None:
            for i in ids:
                await self.Patient.find_one(self.Patient.id == i, projection_model=view)

        self._run(clinical())

    def update_clinical(self, ids: Sequence[Any], *, large: bool = False) -> None:
        from beanie.operators import Set

        model = self.Large if large else self.Patient

        async def update() -> None:
            for n, i in enumerate(ids):
                await model.find_one(model.id == i).update(Set({model.visits: n}))

        self._run(update())

    def update_identity(self, ids: Sequence[Any]) -> None:
        from beanie.operators import Set

        async def update() -> None:
            for n, i in enumerate(ids):
                await self.Patient.find_one(self.Patient.id == i).update(
                    Set({self.Patient.last_name: f"Renamed{n}"})
                )

        self._run(update())

    def related(self, count: int, repeat: int) -> None:
        from beanie.operators import In

        async def joined() -> None:  # see ``_beanie_models``: no Link on these backends
            for _ in range(repeat):
                visits = await self.Visit.find_all(limit=count).to_list()
                ids = list({visit.patient_id for visit in visits})
                patients = await self.Patient.find(In(self.Patient.id, ids)).to_list()
                by_id = {patient.id: patient for patient in patients}
                assert all(by_id[visit.patient_id].blood_type for visit in visits)

        self._run(joined())

    def create_large(self, documents: Sequence[dict[str, Any]]) -> None:
        self.create(documents, large=True)

    def update_large(self, ids: Sequence[Any]) -> None:
        self.update_clinical(ids, large=True)


class WrappedBeanieAlternative(BeanieAlternative):
    name = "privata.beanie"
    wrapped = True

    def _odm(self) -> Any:
        import privata_mongo.beanie as pb

        return pb


# -- raw pymongo, with and without hand-written CSFLE ---------------------------------------------


class _RawKeyVault:
    """A mongomock collection as ``ClientEncryption`` reads a key vault (raw BSON in and out).

    mongomock has no ``RawBSONDocument`` document class; this translates, so the hand-written
    alternative runs on the embedded backend too. On a server the real key vault is used.
    """

    def __init__(self, collection: Any) -> None:
        self.collection = collection

    def with_options(self, **options: Any) -> _RawKeyVault:
        return self

    def find(self, filter: Any, *args: Any, **kwargs: Any) -> Iterator[RawBSONDocument]:
        query = bson.decode(filter.raw)
        found = [RawBSONDocument(bson.encode(d)) for d in self.collection.find(query)]
        return _Closing(found)

    def insert_one(self, document: RawBSONDocument, *args: Any, **kwargs: Any) -> Any:
        return self.collection.insert_one(bson.decode(document.raw))


class _Closing(list[RawBSONDocument]):
    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class MongoClient:  # named so: ClientEncryption checks the class name of its key vault client
    """The key vault client ``ClientEncryption`` is given on the embedded backend."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection

    def __getitem__(self, name: str) -> Any:
        return {"__keyVault": _RawKeyVault(self._collection)}

    def close(self) -> None:
        return None


class PymongoAlternative(Alternative):
    name = "pymongo"
    family = "pymongo"
    encrypted = False

    def open(self) -> None:
        if self.backend.embedded:
            self.client: Any = mongomock.MongoClient(_store=self.store)
        else:
            self.client = pymongo.MongoClient(
                self.backend.uri, uuidRepresentation="standard", event_listeners=[self.listener]
            )
        self.db = self.client[self.db_name]
        self.patients = self.db["patient"]
        self.large = self.db["large_patient"]
        self.visits = self.db["visit"]
        if self.encrypted:
            self._open_encryption()

    def _open_encryption(self) -> None:
        self.master = {"local": {"key": os.urandom(96)}}
        self.namespace = f"{self.db_name}.__keyVault"
        if self.backend.embedded:
            vault_client: Any = MongoClient(self.db["__keyVault"])
        else:
            vault_client = self.client
        self.vault_client = vault_client
        self.encryption = ClientEncryption(
            self.master, self.namespace, vault_client, CodecOptions(uuid_representation=STANDARD)
        )
        self.key_id = self.encryption.create_data_key("local")

    def close(self) -> None:
        if self.encrypted:
            self.encryption.close()
        if not self.backend.embedded:
            self.client.drop_database(self.db_name)
        self.client.close()

    def forget(self) -> None:
        if self.encrypted:  # a new ClientEncryption has an empty key cache
            self.encryption.close()
            self.encryption = ClientEncryption(
                self.master,
                self.namespace,
                self.vault_client,
                CodecOptions(uuid_representation=STANDARD),
            )

    def reset(self) -> None:
        for collection in (self.patients, self.large, self.visits):
            collection.drop()

    def _seal(self, document: dict[str, Any]) -> dict[str, Any]:
        if not self.encrypted:
            return dict(document)
        out = dict(document)
        for field in IDENTITY_FIELDS:
            if out.get(field) is not None:
                algorithm = (
                    Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Deterministic
                    if field == SEARCHABLE_FIELD
                    else Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Random
                )
                out[field] = self.encryption.encrypt(out[field], algorithm, key_id=self.key_id)
        return out

    def _open(self, document: dict[str, Any] | None) -> dict[str, Any] | None:
        if not self.encrypted or document is None:
            return document
        for field in IDENTITY_FIELDS:
            value = document.get(field)
            if isinstance(value, Binary) and value.subtype == 6:
                document[field] = self.encryption.decrypt(value)
        return document

    def _email(self, email: str) -> Any:
        if not self.encrypted:
            return email
        return self.encryption.encrypt(
            email, Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Deterministic, key_id=self.key_id
        )

    def seed(self, documents: Sequence[dict[str, Any]], *, large: bool = False) -> list[Any]:
        collection = self.large if large else self.patients
        return list(collection.insert_many([self._seal(d) for d in documents]).inserted_ids)

    def seed_visits(self, patient_ids: Sequence[Any], count: int) -> None:
        ids = list(patient_ids)
        self.visits.insert_many(
            [{"patient": ids[i % len(ids)], "reason": "check"} for i in range(count)]
        )

    def create(self, documents: Sequence[dict[str, Any]], *, large: bool = False) -> None:
        collection = self.large if large else self.patients
        for document in documents:
            collection.insert_one(self._seal(document))

    def get(self, ids: Sequence[Any]) -> None:
        for i in ids:
            assert self._open(self.patients.find_one({"_id": i})) is not None

    def find_email(self, emails: Sequence[str]) -> None:
        for email in emails:
            assert self._open(self.patients.find_one({"email": self._email(email)})) is not None

    def list(self, count: int, repeat: int) -> None:
        for _ in range(repeat):
            for document in self.patients.find().limit(count):
                self._open(document)

    def clinical(self, ids: Sequence[Any]) -> None:
        for i in ids:
            self.patients.find_one({"_id": i}, {"blood_type": 1, "visits": 1})

    def update_clinical(self, ids: Sequence[Any], *, large: bool = False) -> None:
        collection = self.large if large else self.patients
        for n, i in enumerate(ids):
            collection.update_one({"_id": i}, {"$set": {"visits": n}})

    def update_identity(self, ids: Sequence[Any]) -> None:
        for n, i in enumerate(ids):
            value = self._seal({"last_name": f"Renamed{n}"})["last_name"]
            self.patients.update_one({"_id": i}, {"$set": {"last_name": value}})

    def related(self, count: int, repeat: int) -> None:
        for _ in range(repeat):  # two queries, as mongoengine's select_related
            visits = list(self.visits.find().limit(count))
            ids = list({visit["patient"] for visit in visits})
            by_id = {p["_id"]: self._open(p) for p in self.patients.find({"_id": {"$in": ids}})}
            assert all(by_id[visit["patient"]] for visit in visits)

    def create_large(self, documents: Sequence[dict[str, Any]]) -> None:
        self.create(documents, large=True)

    def update_large(self, ids: Sequence[Any]) -> None:
        self.update_clinical(ids, large=True)


class CsflePymongoAlternative(PymongoAlternative):
    name = "pymongo+csfle"
    encrypted = True


ALTERNATIVES: tuple[type[Alternative], ...] = (
    MongoengineAlternative,
    WrappedMongoengineAlternative,
    BeanieAlternative,
    WrappedBeanieAlternative,
    PymongoAlternative,
    CsflePymongoAlternative,
)

PAIRS = (
    ("mongoengine", "privata.mongoengine"),
    ("beanie", "privata.beanie"),
    ("pymongo", "pymongo+csfle"),
)
"""Each ratio's (baseline, measured): the headline is wrapped / native per ODM."""
