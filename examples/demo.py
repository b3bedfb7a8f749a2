"""The embedded demo: a patient model on mongomock, stored split, read back native.

Run it with ``bash scripts/demo.sh`` (which installs what it needs) or, in an environment
with privata-mongo[mongoengine,mock] installed, ``python examples/demo.py``.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import mongomock
from bson import json_util

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
    print(json.dumps(value, default=json_util.default, indent=2, ensure_ascii=False))


def main() -> None:
    connect("demo", mongo_client_class=mongomock.MongoClient, uuidRepresentation="standard")
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
            "raw identity collection 'patient__identity' (as stored)",
            list(raw["patient__identity"].find()),
        )

        ada = Patient.objects.get(email="ada@example.org")
        show(
            "the joined document the app sees (Patient.objects.get(email=...))",
            json.loads(ada.to_json()),
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
    finally:
        disconnect()


if __name__ == "__main__":
    main()
