"""Raw pymongo, and explicit CSFLE with ``ClientEncryption``: the hand-written alternative."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import bson
import mongomock
import pymongo
from bson.binary import STANDARD, Binary
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.encryption import Algorithm, ClientEncryption

from stress.odm.base import Alternative
from stress.odm.data import IDENTITY_FIELDS, SEARCHABLE_FIELD


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
