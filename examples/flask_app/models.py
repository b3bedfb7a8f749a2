"""The service's mongoengine documents, imported from ``privata_mongo.mongoengine``.

This is the file's one privata-specific line: with ``from mongoengine import ...`` it is the same
application on plain mongoengine. ``Patient``'s names, e-mail, phone and date of birth are
identity data by their names (HIPAA Safe Harbor); ``email`` is marked searchable so the
e-mail lookup runs on the server through a blind index.
"""

from __future__ import annotations

from privata_mongo.mongoengine import (
    DateField,
    DateTimeField,
    Document,
    EmailField,
    IntField,
    ListField,
    ReferenceField,
    StringField,
)


class Patient(Document):
    """A patient: identity fields (encrypted, split off) and clinical ones."""

    first_name = StringField(required=True, max_length=100)
    last_name = StringField(required=True, max_length=100)
    email = EmailField(required=True, unique=True, searchable=True)
    phone = StringField(max_length=30)
    date_of_birth = DateField()
    blood_type = StringField(choices=("O+", "O-", "A+", "A-", "B+", "B-", "AB+", "AB-"))
    allergies = ListField(StringField(max_length=60))
    # erasure deletes the patient's own document; its visits stay, pseudonymised (the default)
    meta = {"collection": "patients", "indexes": ["blood_type"], "privacy": {"erasure": "delete"}}


class Visit(Document):
    """A visit: clinical data only, referencing its patient (stored as the patient's id)."""

    patient = ReferenceField(Patient, required=True)
    at = DateTimeField(required=True)
    reason = StringField(required=True, max_length=200)
    duration_min = IntField(min_value=0)
    meta = {"collection": "visits"}
