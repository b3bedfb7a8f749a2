"""A patients service: FastAPI and Beanie on privata_mongo, with every patient stored split.

The application is ordinary Beanie code; its one privata-specific line is the import of
``init_beanie`` and the documents from ``privata_mongo.beanie``. Each patient is stored as an
identity row (names, e-mail, date of birth, phone, address; keyed by a pseudonym) and a clinical
row (blood type, allergies, visit count), and read back joined. Searching by e-mail runs on the
identity collection; a last-name prefix is matched in the process by privata.

Endpoints:

- ``POST /patients``, ``GET /patients/{id}``, ``PATCH /patients/{id}``, ``DELETE /patients/{id}``;
- ``GET /patients?email=...`` and ``GET /patients?last_name_prefix=...`` (case-insensitive);
- ``POST /patients/{id}/visits``, ``GET /patients/{id}/visits``;
- ``GET /patients/{id}/export``: data portability, the joined patient and its visits as JSON
  (audited as the reads it is made of);
- the data-subject rights, one call each of ``privata_mongo.AsyncRights``:
  ``POST /patients/{id}/erase`` (GDPR Art. 17: the receipt), ``PATCH /patients/{id}/rectify``
  (Art. 16), ``POST``/``DELETE /patients/{id}/restrict`` (Art. 18),
  ``POST``/``DELETE /patients/{id}/object/{purpose}`` (Art. 21).

No response carries privata's internal fields, and errors never echo personal data: a duplicate
e-mail answers 409 without quoting it; validation errors leave out the input.

Every request runs under the access context the API gateway in front of the service states in
its headers (``X-Actor``, ``X-Purpose``, ``X-Legal-Basis``, ``X-Request-Id``), through privata's
FastAPI dependency: each audit record privata writes names who acted, why and in which request.

Run it with ``uvicorn examples.fastapi_app.app:app``: on the embedded in-memory backend by
default, or on a server with ``MONGODB_URI=mongodb://host:27017/clinic``.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from examples.fastapi_app.models import Patient, Visit
from examples.fastapi_app.schemas import (
    Erased,
    Marked,
    PatientCreate,
    PatientExport,
    PatientOut,
    PatientUpdate,
    Restriction,
    VisitCreate,
    VisitOut,
)
from privata_mongo import AccessContext, AsyncRights, ProcessingRestricted
from privata_mongo.beanie import PydanticObjectId, embedded_database, init_beanie
from privata_mongo.rights import Subject
from privata_mongo.web import fastapi_access, from_headers

__all__ = ["MONGODB_URI_ENV", "app", "create_app"]

MONGODB_URI_ENV = "MONGODB_URI"
DEFAULT_DATABASE = "clinic"
MAX_PAGE = 200

PatientId = Annotated[PydanticObjectId, Path(description="the patient's id")]


def _caller(request: Request) -> AccessContext | None:
    """Who calls and why, as the gateway's headers say (``None``: the configured default)."""
    return from_headers(request.headers)


def create_app(database: Any = None) -> FastAPI:
    """The service on ``database`` (an async pymongo-shaped database the caller owns).

    Without one, the service opens its own at start-up: ``AsyncMongoClient($MONGODB_URI)``'s
    default database (``clinic`` when the URI names none) when the variable is set, else the
    embedded in-memory backend; it closes what it opened at shutdown.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client: AsyncMongoClient[dict[str, Any]] | None = None
        chosen = database
        if chosen is None:
            uri = os.environ.get(MONGODB_URI_ENV, "").strip()
            if uri:
                client = AsyncMongoClient(uri)
                chosen = client.get_default_database(DEFAULT_DATABASE)
            else:
                chosen = embedded_database(DEFAULT_DATABASE)
        try:
            await init_beanie(database=chosen, document_models=[Patient, Visit])
            yield
        finally:
            if client is not None:
                await client.close()

    app = FastAPI(
        title="Clinic patients (privata_mongo example)",
        lifespan=lifespan,
        dependencies=[Depends(fastapi_access(_caller))],
    )
    app.add_exception_handler(DuplicateKeyError, _duplicate)
    app.add_exception_handler(ProcessingRestricted, _restricted)
    app.add_exception_handler(RequestValidationError, _invalid)
    _patient_routes(app)
    _rights_routes(app)
    return app


async def _duplicate(request: Request, exc: Exception) -> JSONResponse:
    """409 without the driver's message, which may quote the conflicting value."""
    return JSONResponse(
        status_code=status.HTTP_409_CONFLICT,
        content={"detail": "another patient already has this value of a unique field"},
    )


async def _restricted(request: Request, exc: Exception) -> JSONResponse:
    """409: the write would change a patient whose processing is restricted (Art. 18)."""
    return JSONResponse(
        status_code=status.HTTP_409_CONFLICT,
        content={"detail": "processing of this patient's data is restricted (GDPR Art. 18)"},
    )


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """422 with where and why, without FastAPI's default echo of the submitted values."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse(
        status_code=422,  # Starlette renamed the constant; the number is stable
        content={
            "detail": [
                {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
                for error in errors
            ]
        },
    )


async def _patient(patient_id: PydanticObjectId) -> Patient:
    patient = await Patient.get(patient_id)
    if patient is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="patient not found")
    return patient


def _patient_routes(app: FastAPI) -> None:
    @app.post("/patients", status_code=status.HTTP_201_CREATED)
    async def create_patient(body: PatientCreate) -> PatientOut:
        patient = await Patient(**body.model_dump()).insert()
        return PatientOut.of(patient)

    @app.get("/patients")
    async def search_patients(
        email: Annotated[str | None, Query(max_length=254)] = None,
        last_name_prefix: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    ) -> list[PatientOut]:
        query: dict[str, Any] = {}
        if email is not None:
            query["email"] = email.strip().lower()  # equality: runs on the identity collection
        if last_name_prefix is not None:
            pattern = "^" + re.escape(last_name_prefix.strip())
            query["last_name"] = {"$regex": pattern, "$options": "i"}  # matched in the process
        found = Patient.find(query).sort("+last_name", "+first_name").limit(limit)
        return [PatientOut.of(patient) for patient in await found.to_list()]

    @app.get("/patients/{patient_id}")
    async def read_patient(patient_id: PatientId) -> PatientOut:
        return PatientOut.of(await _patient(patient_id))

    @app.patch("/patients/{patient_id}")
    async def update_patient(patient_id: PatientId, body: PatientUpdate) -> PatientOut:
        patient = await _patient(patient_id)
        changes = body.changes()
        if changes:
            await patient.set(changes)
        return PatientOut.of(await _patient(patient_id))

    @app.delete("/patients/{patient_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_patient(patient_id: PatientId) -> Response:
        patient = await _patient(patient_id)
        await Visit.find(Visit.patient_id == patient.id).delete()
        await patient.delete()
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @app.post("/patients/{patient_id}/visits", status_code=status.HTTP_201_CREATED)
    async def record_visit(patient_id: PatientId, body: VisitCreate) -> VisitOut:
        patient = await _patient(patient_id)
        visit = await Visit(patient_id=patient_id, at=body.at, reason=body.reason).insert()
        await patient.inc({Patient.visits: 1})
        return VisitOut.of(visit)

    @app.get("/patients/{patient_id}/visits")
    async def list_visits(patient_id: PatientId) -> list[VisitOut]:
        patient = await _patient(patient_id)
        visits = await Visit.find(Visit.patient_id == patient.id).sort("+at").to_list()
        return [VisitOut.of(visit) for visit in visits]

    @app.get("/patients/{patient_id}/export")
    async def export_patient(patient_id: PatientId, response: Response) -> PatientExport:
        """Data portability (GDPR Art. 20): the joined patient and its visits, as JSON."""
        patient = await _patient(patient_id)
        visits = await Visit.find(Visit.patient_id == patient.id).sort("+at").to_list()
        response.headers["Content-Disposition"] = (
            f'attachment; filename="patient-{patient.id}.json"'
        )
        return PatientExport(
            patient=PatientOut.of(patient), visits=[VisitOut.of(visit) for visit in visits]
        )


def _rights_routes(app: FastAPI) -> None:
    rights = AsyncRights([Patient, Visit])

    async def subject(patient_id: PydanticObjectId) -> Subject:
        await _patient(patient_id)  # 404 for an unknown (or erased, or restricted) patient
        return Subject(model="Patient", id=patient_id)

    @app.post("/patients/{patient_id}/erase")
    async def erase_patient(patient_id: PatientId) -> Erased:
        """Erasure (GDPR Art. 17): the identity shredded, the visits kept pseudonymised."""
        receipt = await rights.erase(await subject(patient_id))
        return Erased.of(receipt)

    @app.patch("/patients/{patient_id}/rectify")
    async def rectify_patient(patient_id: PatientId, body: PatientUpdate) -> PatientOut:
        """Rectification (GDPR Art. 16), validated by pydantic as any assignment."""
        changes = body.changes()
        if changes:
            await rights.rectify(await subject(patient_id), Patient, changes)
        return PatientOut.of(await _patient(patient_id))

    @app.post("/patients/{patient_id}/restrict")
    async def restrict_patient(patient_id: PatientId, body: Restriction) -> Marked:
        """Restriction (GDPR Art. 18): absent from reads, except under the allowed purposes."""
        chosen = await subject(patient_id)
        return Marked(marked=await rights.restrict(chosen, allowed_purposes=body.allowed_purposes))

    @app.delete("/patients/{patient_id}/restrict")
    async def lift_restriction(patient_id: PatientId) -> Marked:
        """Lift a restriction: the patient is found by the request itself, restricted or not."""
        return Marked(marked=await rights.lift_restriction(Subject(model="Patient", id=patient_id)))

    @app.post("/patients/{patient_id}/object/{purpose}")
    async def object_to(patient_id: PatientId, purpose: str) -> Marked:
        """Objection (GDPR Art. 21): absent from every read and write under ``purpose``."""
        return Marked(marked=await rights.object(await subject(patient_id), purpose))

    @app.delete("/patients/{patient_id}/object/{purpose}")
    async def withdraw_objection(patient_id: PatientId, purpose: str) -> Marked:
        """Withdraw an objection to ``purpose``."""
        chosen = Subject(model="Patient", id=patient_id)
        return Marked(marked=await rights.withdraw_objection(chosen, purpose))


app = create_app()
