"""The embedded demo: a patient model on mongomock, stored split and encrypted, read back native.

Identity rows are encrypted in MongoDB's client-side field-level encryption format. With no
master key configured, the embedded backend generates a development key into
``.privata/master.key`` (with a warning); set ``PRIVATA_MASTER_KEY`` for anything real.

Run it with ``bash scripts/demo.sh`` (which installs what it needs) or, in an environment
with privata-mongo[mongoengine,mock] installed, ``python examples/demo.py``.
"""

from __future__ import annotations

import datetime
import functools
import json
from typing import Any

import mongomock
from bson import json_util
from mongomock.store import ServerStore

import privata_mongo
from privata_mongo.mongoengine import (
    DateTimeField,
    Document,
    EmailField,
    IntField,
    ListField,
    StringField,
    connect,
    disconnect,
    get_connection,
)

_bson_json = functools.partial(json_util.default, json_options=json_util.RELAXED_JSON_OPTIONS)
"""Extended JSON for BSON values (ObjectId, dates, binary)."""


class Patient(Document):
    """An ordinary mongoengine model: only the import line changed."""

    first_name = StringField(required=True)
    last_name = StringField(required=True)
    email = EmailField(unique=True)
    date_of_birth = DateTimeField()
    mrn = StringField(pii=True)  # an explicit marker: this hospital treats MRNs as identifying
    blood_type = StringField()
    allergies = ListField(StringField())
    visits = IntField(default=0)


def show(title: str, value: Any) -> None:
    print(f"\n== {title}")
    print(json.dumps(value, default=_bson_json, indent=2, ensure_ascii=False))


def scan(raw_client: Any) -> tuple[list[str], int]:
    """Every decrypted identity value, searched for in plaintext across the whole storage."""
    from privata_mongo.encryption import unseal_row

    values = set()
    for row in raw_client["demo"]["patient__identity"].find():
        values.update(v for v in unseal_row(raw_client["demo"], row).values() if v is not None)
    # whole values in Extended JSON: "ada@example.org" with its quotes, {"$date": ...}
    needles = {json.dumps(v, default=_bson_json) for v in values}
    leaks = []
    for database in raw_client.list_database_names():
        for name in raw_client[database].list_collection_names():
            for document in raw_client[database][name].find():
                text = json.dumps(document, default=_bson_json)
                leaks.extend(f"{database}.{name}" for n in needles if n in text)
    return leaks, len(needles)


def run() -> tuple[list[str], int]:
    """Run the demo; returns the plaintext identity values found in storage, and how many
    values were looked for."""
    store = ServerStore()
    client_class = functools.partial(mongomock.MongoClient, _store=store)
    connect("demo", mongo_client_class=client_class, uuidRepresentation="standard")
    try:
        print(privata_mongo.explain(Patient))
        Patient(
            first_name="Ada",
            last_name="Lovelace",
            email="ada@example.org",
            date_of_birth=datetime.datetime(1815, 12, 10),
            mrn="MRN-0001",
            blood_type="A+",
            allergies=["penicillin"],
        ).save()
        Patient(
            first_name="Alan",
            last_name="Turing",
            email="alan@example.org",
            date_of_birth=datetime.datetime(1912, 6, 23),
            mrn="MRN-0002",
            blood_type="O-",
            visits=2,
        ).save()

        raw = get_connection().inner["demo"]
        show("raw clinical collection 'patient' (as stored)", list(raw["patient"].find()))
        show(
            "raw identity collection 'patient__identity' (as stored: pseudonym, revision, "
            "blind index of the searchable email, one CSFLE ciphertext, BSON subtype 6)",
            list(raw["patient__identity"].find()),
        )
        show(
            "key vault 'encryption.__keyVault' (one data key per patient, wrapped)",
            [
                {"keyAltNames": k["keyAltNames"], "masterKey": k["masterKey"]}
                for k in get_connection().inner["encryption"]["__keyVault"].find()
            ],
        )

        ada = Patient.objects.get(email="ada@example.org")
        show(
            "the joined document the app sees (Patient.objects.get(email=...))",
            ada.to_mongo().to_dict(),
        )

        born_before_1900 = Patient.objects(date_of_birth__lt=datetime.datetime(1900, 1, 1))
        names = [p.last_name for p in Patient.objects(last_name__icontains="tur")]
        show(
            "queries on identity fields",
            {
                "Patient.objects(last_name__icontains='tur')": names,
                "Patient.objects(date_of_birth__lt=1900).count()": born_before_1900.count(),
                "Patient.objects.order_by('-last_name') first_name": [
                    p.first_name for p in Patient.objects.order_by("-last_name")
                ],
            },
        )
        leaks, checked = scan(get_connection().inner)
        show(
            "raw-storage scan: identity values found in plaintext anywhere in storage",
            {"values looked for": checked, "found": leaks},
        )
        return leaks, checked
    finally:
        disconnect()


def main() -> None:
    """Run the demo and fail if any identity value was found in plaintext."""
    leaks, _ = run()
    if leaks:
        raise SystemExit(f"plaintext identity values in storage: {leaks}")


if __name__ == "__main__":
    main()
