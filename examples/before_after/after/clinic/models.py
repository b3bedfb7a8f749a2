"""The clinic's models: ordinary mongoengine documents."""

from __future__ import annotations

import privata_mongo.mongoengine as mongoengine
from privata_mongo.mongoengine import (
    CASCADE,
    BooleanField,
    DateTimeField,
    Document,
    EmailField,
    ListField,
    ReferenceField,
    StringField,
)


class Patient(Document):
    """A patient: who they are (name, e-mail, birth date, phone) and what the clinic knows."""

    first_name = StringField(required=True)
    last_name = StringField(required=True)
    email = EmailField(required=True, unique=True)
    date_of_birth = DateTimeField()
    phone = StringField()
    blood_type = StringField(choices=["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"])
    allergies = ListField(StringField())

    meta = {"ordering": ["last_name", "first_name"]}

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"


class Appointment(Document):
    """A visit booked for a patient; deleted with the patient."""

    patient = ReferenceField(Patient, required=True, reverse_delete_rule=CASCADE)
    at = DateTimeField(required=True)
    reason = StringField(max_length=200)
    done = BooleanField(default=False)

    meta = {"ordering": ["at"]}


def _lowercase_email(sender: type, document: Patient, **kwargs: object) -> None:
    """E-mail addresses are stored lowercase, so a lookup does not depend on how one typed."""
    if document.email:
        document.email = document.email.lower()


mongoengine.signals.pre_save.connect(_lowercase_email, sender=Patient)
