"""The ward's documents."""

from __future__ import annotations

import datetime

from beanie import Document, Indexed, Insert, PydanticObjectId, after_event
from pydantic import BaseModel, EmailStr

EVENTS: list[str] = []
"""What the documents' event handlers saw (the app's own activity log)."""


class Address(BaseModel):
    street: str
    city: str


class Patient(Document):
    first_name: str
    last_name: str
    email: Indexed(EmailStr, unique=True)  # type: ignore[valid-type]
    date_of_birth: datetime.datetime
    address: Address
    blood_type: str = "O+"
    score: int = 0

    class Settings:
        name = "ward_patient"

    @after_event(Insert)
    def remember(self) -> None:
        EVENTS.append(f"admitted {self.last_name}")


class Nurse(Document):
    name: str
    shift: str

    class Settings:
        name = "ward_nurse"


class Admission(Document):
    """Refers to its patient and nurse by id: FerretDB v1.24 stores no DBRef, so no ``Link``."""

    patient_id: PydanticObjectId
    nurse_id: PydanticObjectId
    bed: int
    days: int

    class Settings:
        name = "ward_admission"


MODELS = [Patient, Nurse, Admission]
