"""The clinic's documents."""

from __future__ import annotations

import datetime

from mongoengine import (
    CASCADE,
    DateField,
    DateTimeField,
    Document,
    EmailField,
    EmbeddedDocument,
    EmbeddedDocumentField,
    IntField,
    ListField,
    ReferenceField,
    StringField,
    signals,
)


class Address(EmbeddedDocument):
    street = StringField()
    city = StringField()
    postcode = StringField()


class Patient(Document):
    first_name = StringField(required=True)
    last_name = StringField(required=True)
    email = EmailField(required=True, unique=True)
    date_of_birth = DateField()
    address = EmbeddedDocumentField(Address)
    blood_type = StringField()
    allergies = ListField(StringField())
    created = DateTimeField(default=lambda: datetime.datetime(2024, 1, 1))

    meta = {"collection": "patient", "ordering": ["last_name", "first_name"]}


class Doctor(Document):
    name = StringField(required=True)
    speciality = StringField()

    meta = {"collection": "doctor"}


class Visit(Document):
    patient = ReferenceField(Patient, reverse_delete_rule=CASCADE, required=True)
    doctor = ReferenceField(Doctor, required=True)
    day = DateField(required=True)
    minutes = IntField(min_value=1)
    notes = StringField()

    meta = {"collection": "visit", "ordering": ["day"]}


SAVED: list[str] = []
"""Names of the documents saved, as a post_save handler sees them (the app's audit log)."""


def _remember(sender: type[Document], document: Document, **kwargs: object) -> None:
    SAVED.append(f"{sender.__name__}:{'created' if kwargs.get('created') else 'updated'}")


signals.post_save.connect(_remember, sender=Patient)
signals.post_save.connect(_remember, sender=Visit)
