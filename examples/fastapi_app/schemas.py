"""What the API accepts and returns: explicit pydantic models, never the stored documents.

Responses are built field by field from the joined ``Patient`` (``PatientOut.of``), so nothing
but the declared fields can leave the service: not privata's ``_pseudonym`` or ``_rev``, not
Beanie's ``revision_id``. Requests forbid unknown fields, so a client cannot write internal
ones either.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from examples.fastapi_app.models import Address, BloodType, Patient, Visit

__all__ = [
    "Erased",
    "Marked",
    "PatientCreate",
    "PatientExport",
    "PatientOut",
    "PatientUpdate",
    "Restriction",
    "VisitCreate",
    "VisitOut",
]

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    ),
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()-]{3,30}$")]
Allergy = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

# Fields a patient always has: an update may change them, not clear them.
_REQUIRED = frozenset(
    {"first_name", "last_name", "email", "date_of_birth", "blood_type", "allergies"}
)


class PatientCreate(BaseModel):
    """A new patient."""

    model_config = ConfigDict(extra="forbid")

    first_name: Name
    last_name: Name
    email: Email
    date_of_birth: datetime.date
    phone: Phone | None = None
    address: Address | None = None
    blood_type: BloodType
    allergies: list[Allergy] = Field(default_factory=list)


class PatientUpdate(BaseModel):
    """A partial update: only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    first_name: Name | None = None
    last_name: Name | None = None
    email: Email | None = None
    date_of_birth: datetime.date | None = None
    phone: Phone | None = None
    address: Address | None = None
    blood_type: BloodType | None = None
    allergies: list[Allergy] | None = None

    @model_validator(mode="after")
    def _no_null_for_required_fields(self) -> PatientUpdate:
        nulled = sorted(
            name for name in self.model_fields_set & _REQUIRED if getattr(self, name) is None
        )
        if nulled:
            raise ValueError(f"these fields cannot be null: {', '.join(nulled)}")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with their new values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class PatientOut(BaseModel):
    """A patient as the API shows it."""

    id: str
    first_name: str
    last_name: str
    email: str
    date_of_birth: datetime.date
    phone: str | None
    address: Address | None
    blood_type: BloodType
    allergies: list[str]
    visits: int

    @classmethod
    def of(cls, patient: Patient) -> PatientOut:
        """The declared fields of ``patient``, and nothing else."""
        return cls(
            id=str(patient.id),
            first_name=patient.first_name,
            last_name=patient.last_name,
            email=patient.email,
            date_of_birth=patient.date_of_birth,
            phone=patient.phone,
            address=patient.address,
            blood_type=patient.blood_type,
            allergies=list(patient.allergies),
            visits=patient.visits,
        )


class VisitCreate(BaseModel):
    """A visit to record."""

    model_config = ConfigDict(extra="forbid")

    at: datetime.datetime
    reason: str = Field(min_length=1, max_length=500)


class VisitOut(BaseModel):
    """A visit as the API shows it."""

    id: str
    patient_id: str
    at: datetime.datetime
    reason: str

    @classmethod
    def of(cls, visit: Visit) -> VisitOut:
        """The declared fields of ``visit``."""
        return cls(
            id=str(visit.id), patient_id=str(visit.patient_id), at=visit.at, reason=visit.reason
        )


class PatientExport(BaseModel):
    """Everything the service holds about one patient, for data portability (GDPR Art. 20)."""

    patient: PatientOut
    visits: list[VisitOut]


class Restriction(BaseModel):
    """A restriction of processing: the purposes that may still process the data."""

    model_config = ConfigDict(extra="forbid")

    allowed_purposes: list[str] = Field(default_factory=list)


class Marked(BaseModel):
    """How many of the patient's documents a restriction or objection marked."""

    marked: int


class Erased(BaseModel):
    """The erasure receipt: what was erased, when, by whom, and its digest (no personal data)."""

    pseudonym: str
    erased_at: datetime.datetime
    actor: str | None
    key_shredded: bool
    models: dict[str, dict[str, int]]
    digest: str

    @classmethod
    def of(cls, receipt: Any) -> Erased:
        """The response for an ``ErasureReceipt``."""
        return cls(
            pseudonym=receipt.pseudonym,
            erased_at=receipt.erased_at,
            actor=receipt.actor,
            key_shredded=receipt.key_shredded,
            models={
                m.model: {
                    "identity_deleted": m.identity_deleted,
                    "clinical_deleted": m.clinical_deleted,
                    "clinical_kept": m.clinical_kept,
                }
                for m in receipt.models
            },
            digest=receipt.digest,
        )
