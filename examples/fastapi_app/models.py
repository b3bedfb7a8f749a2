"""The clinic's storage models: ordinary Beanie documents, imported from privata_mongo.beanie.

Nothing here names privata beyond the import line. ``Patient`` holds identity data (names,
e-mail, date of birth, phone, address: privata's name defaults classify them), so it is stored
split: ``patients__identity`` keyed by a pseudonym, ``patients`` with the clinical fields.
``Visit`` holds none and is stored as Beanie would store it; it refers to the patient by the
clinical ``_id``, which is not personal data, and says so in ``Settings.references`` so that a
patient's visits are part of its data map (export, restriction, erasure).
"""

from __future__ import annotations

import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from privata_mongo.beanie import Document, Indexed, PydanticObjectId

__all__ = ["Address", "BloodType", "Patient", "Visit"]

BloodType = Literal["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"]


class Address(BaseModel):
    """A postal address, embedded in the patient (and so stored whole on the identity side)."""

    street: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postcode: str = Field(min_length=1, max_length=20)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2 code")


class Patient(Document):
    """A patient: identity fields first, clinical fields after."""

    first_name: str
    last_name: str
    email: Annotated[str, Indexed(unique=True)]
    date_of_birth: datetime.date
    phone: str | None = None
    address: Address | None = None
    blood_type: BloodType
    allergies: list[str] = Field(default_factory=list)
    visits: int = 0

    class Settings:
        name = "patients"
        # Erasure (GDPR Art. 17) deletes the patient's own document; its visits stay,
        # pseudonymised, as medical records with a legal retention period (the default).
        privacy = {"erasure": "delete"}


class Visit(Document):
    """One visit of a patient (clinical data only)."""

    patient_id: Annotated[PydanticObjectId, Indexed()]
    at: datetime.datetime
    reason: str

    class Settings:
        name = "visits"
        # patient_id is a plain id: name its target so a patient's visits are in its data map
        references = {"patient_id": "Patient"}
