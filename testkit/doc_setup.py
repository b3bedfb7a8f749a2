"""What the documentation's examples assume, set up by their pages' invisible blocks.

The examples name a ``Patient`` model, a connected database ``db``, a patient's id ``pid`` and
pseudonym ``pseudonym``, a request id ``rid``, a server ``uri`` …; a page brings them into its
namespace with ``globals().update(clinic())`` (or ``server_clinic(...)``) in a hidden block, so
what a reader sees stays the few lines that matter and still runs.
"""

from __future__ import annotations

import base64
import datetime
import os
from typing import Any

__all__ = ["beanie_clinic", "clinic", "master_key", "server_clinic"]


def master_key() -> bytes:
    """The local master key of this process (the test plugin sets ``PRIVATA_MASTER_KEY``)."""
    return base64.b64decode(os.environ["PRIVATA_MASTER_KEY"])


def _models() -> dict[str, Any]:
    import privata_mongo.mongoengine as pm

    class Patient(pm.Document):
        first_name = pm.StringField()
        last_name = pm.StringField()
        email = pm.EmailField(searchable=True)
        date_of_birth = pm.DateField()
        blood_type = pm.StringField()
        meta = {"collection": "patient"}

    class Visit(pm.Document):
        patient = pm.ReferenceField(Patient)
        reason = pm.StringField()
        meta = {"collection": "visit"}

    return {"Patient": Patient, "Visit": Visit}


def _fill(models: dict[str, Any]) -> dict[str, Any]:
    import privata_mongo
    import privata_mongo.mongoengine as pm
    from privata_mongo.audit import subject_of

    patient, visit = models["Patient"], models["Visit"]
    with privata_mongo.access_context(actor="setup", purpose="treatment", legal_basis="art9_2h"):
        ada = patient(
            first_name="Ada",
            last_name="Lovelace",
            email="ada@example.org",
            date_of_birth=datetime.date(1990, 12, 10),
            blood_type="O+",
        ).save()
        bob = patient(first_name="Bob", email="bob@example.org", blood_type="A-").save()
        visit(patient=ada, reason="check-up").save()
    db = pm.get_db()
    return {
        **models,
        "db": db,
        "pid": ada.id,
        "rid": "req-0001",
        "pseudonym": subject_of(db, "patient", ada.id),
        "other": subject_of(db, "patient", bob.id),
    }


def clinic(name: str = "clinic") -> dict[str, Any]:
    """The embedded backend connected as ``default``, a ``Patient`` and a ``Visit`` model, data."""
    import mongomock

    import privata_mongo.mongoengine as pm

    pm.disconnect()
    pm.connect(name, mongo_client_class=mongomock.MongoClient, uuidRepresentation="standard")
    return _fill(_models())


def server_clinic(uri: str, name: str) -> dict[str, Any]:
    """``clinic`` on a server at ``uri``, with ``uri``, a raw ``client`` and ``master_key``."""
    import pymongo

    import privata_mongo.mongoengine as pm

    pm.disconnect()
    pm.connect(name, host=uri, uuidRepresentation="standard")
    found = _fill(_models())
    client: Any = pymongo.MongoClient(uri, uuidRepresentation="standard")
    return {**found, "uri": uri, "client": client, "master_key": master_key()}


async def beanie_clinic(name: str = "clinic") -> dict[str, Any]:
    """A Beanie ``Member`` model on the embedded async backend, initialised."""
    from privata_mongo.beanie import Document, embedded_database, init_beanie

    class Member(Document):
        first_name: str
        email: str

        class Settings:
            name = "member"
            privacy = {"searchable": ["email"]}

    await init_beanie(database=embedded_database(name), document_models=[Member])
    return {"Member": Member}
