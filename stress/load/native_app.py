"""The FastAPI example's twin on native Beanie: the same patient routes, no privata import.

The baseline of the load levels must be the same application without privata, so this module
never imports ``privata_mongo`` (importing ``privata_mongo.beanie`` wraps Beanie's validators
process-wide). The models and the request/response schemas are *generated* from the example's
own sources (``examples/fastapi_app/models.py`` and ``schemas.py``) by rewriting their imports
to plain ``beanie`` and to this twin, so the two cannot drift; the patient routes are copied
from ``examples/fastapi_app/app.py`` (``_patient_routes``), and
``tests/integration/test_load_harness.py`` checks that both apps expose the same patient routes.
The rights endpoints are privata's API and have no native twin.
"""

from __future__ import annotations

import os
import re
import sys
import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from beanie import PydanticObjectId, init_beanie
from fastapi import FastAPI, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from stress.load.profiling import served as profiled
from stress.load.profiling import start_if_asked

start_if_asked()

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_app"
MODELS = f"{__name__}_models"
SCHEMAS = f"{__name__}_schemas"
REWRITES = {
    MODELS: ("models.py", {"from privata_mongo.beanie import": "from beanie import"}),
    SCHEMAS: ("schemas.py", {"from examples.fastapi_app.models import": f"from {MODELS} import"}),
}


def generated(name: str) -> types.ModuleType:
    """The example's module ``name`` stands for, with its imports rewritten (once per process)."""
    if name in sys.modules:
        return sys.modules[name]
    filename, replacements = REWRITES[name]
    source = (EXAMPLE / filename).read_text()
    for old, new in replacements.items():
        if old not in source:
            raise RuntimeError(f"examples/fastapi_app/{filename} no longer contains {old!r}")
        source = source.replace(old, new)
    if re.search(r"^\s*(from|import) privata_mongo", source, re.MULTILINE):
        raise RuntimeError(f"examples/fastapi_app/{filename} imports privata_mongo beyond Beanie")
    module = types.ModuleType(name)
    module.__file__ = str(EXAMPLE / filename)
    sys.modules[name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - our sources
    return module


_models = generated(MODELS)
_schemas = generated(SCHEMAS)
Patient: Any = _models.Patient
Visit: Any = _models.Visit
PatientCreate: Any = _schemas.PatientCreate
PatientOut: Any = _schemas.PatientOut
PatientUpdate: Any = _schemas.PatientUpdate
VisitCreate: Any = _schemas.VisitCreate
VisitOut: Any = _schemas.VisitOut
PatientExport: Any = _schemas.PatientExport

MAX_PAGE = 200
PatientId = Annotated[PydanticObjectId, PathParam(description="the patient's id")]


def create_app() -> FastAPI:
    """The twin on ``AsyncMongoClient($MONGODB_URI)``'s default database (``clinic``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URI"])
        try:
            database = client.get_default_database("clinic")
            await init_beanie(database=database, document_models=[Patient, Visit])
            yield
        finally:
            await client.close()

    app = FastAPI(title="Clinic patients (native Beanie twin)", lifespan=lifespan)
    app.add_exception_handler(DuplicateKeyError, _duplicate)
    _patient_routes(app)
    return app


async def _duplicate(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_409_CONFLICT,
        content={"detail": "another patient already has this value of a unique field"},
    )


async def _patient(patient_id: PydanticObjectId) -> Any:
    patient = await Patient.get(patient_id)
    if patient is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="patient not found")
    return patient


def _patient_routes(app: FastAPI) -> None:
    @app.post("/patients", status_code=status.HTTP_201_CREATED)
    async def create_patient(body: PatientCreate) -> PatientOut:  # type: ignore[valid-type]
        patient = await Patient(**body.model_dump()).insert()
        return PatientOut.of(patient)

    @app.get("/patients")
    async def search_patients(
        email: Annotated[str | None, Query(max_length=254)] = None,
        last_name_prefix: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    ) -> list[PatientOut]:  # type: ignore[valid-type]
        query: dict[str, Any] = {}
        if email is not None:
            query["email"] = email.strip().lower()
        if last_name_prefix is not None:
            pattern = "^" + re.escape(last_name_prefix.strip())
            query["last_name"] = {"$regex": pattern, "$options": "i"}
        found = Patient.find(query).sort("+last_name", "+first_name").limit(limit)
        return [PatientOut.of(patient) for patient in await found.to_list()]

    @app.get("/patients/{patient_id}")
    async def read_patient(patient_id: PatientId) -> PatientOut:  # type: ignore[valid-type]
        return PatientOut.of(await _patient(patient_id))

    @app.patch("/patients/{patient_id}")
    async def update_patient(patient_id: PatientId, body: PatientUpdate) -> PatientOut:  # type: ignore[valid-type]
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
    async def record_visit(patient_id: PatientId, body: VisitCreate) -> VisitOut:  # type: ignore[valid-type]
        patient = await _patient(patient_id)
        visit = await Visit(patient_id=patient_id, at=body.at, reason=body.reason).insert()
        await patient.inc({Patient.visits: 1})
        return VisitOut.of(visit)

    @app.get("/patients/{patient_id}/visits")
    async def list_visits(patient_id: PatientId) -> list[VisitOut]:  # type: ignore[valid-type]
        patient = await _patient(patient_id)
        visits = await Visit.find(Visit.patient_id == patient.id).sort("+at").to_list()
        return [VisitOut.of(visit) for visit in visits]

    @app.get("/patients/{patient_id}/export")
    async def export_patient(patient_id: PatientId, response: Response) -> PatientExport:  # type: ignore[valid-type]
        patient = await _patient(patient_id)
        visits = await Visit.find(Visit.patient_id == patient.id).sort("+at").to_list()
        response.headers["Content-Disposition"] = (
            f'attachment; filename="patient-{patient.id}.json"'
        )
        return PatientExport(
            patient=PatientOut.of(patient), visits=[VisitOut.of(visit) for visit in visits]
        )


app = create_app()
served = profiled(app)
"""What uvicorn serves: ``app``, dumping its profile at shutdown under ``--profile``."""
