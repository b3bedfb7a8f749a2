"""A clinic service: Flask and mongoengine on privata_mongo, every patient stored split.

Ordinary Flask + mongoengine code; the privata-specific lines are the imports of
``models.py``, the WSGI middleware that runs each request under the access context the gateway
states in its headers (``X-Actor``, ``X-Purpose``, ``X-Legal-Basis``, ``X-Request-Id``), and
the data-subject rights endpoints, each one call of ``privata_mongo.Rights``.

Endpoints:

- ``POST /patients``, ``GET /patients/<id>``, ``PATCH /patients/<id>``;
- ``GET /patients?email=...`` (equality on a searchable identity field, run on the server);
- ``POST /patients/<id>/visits``, ``GET /patients/<id>/visits``;
- ``GET /patients/<id>/access``: GDPR Art. 15, everything held and its processing record;
- ``GET /patients/<id>/export?format=json|csv|xml``: Art. 20, streamed as a download;
- ``PATCH /patients/<id>/rectify``: Art. 16, through mongoengine's validation;
- ``POST /patients/<id>/restrict`` and ``DELETE`` of it: Art. 18;
- ``POST /patients/<id>/object/<purpose>`` and ``DELETE`` of it: Art. 21;
- ``POST /patients/<id>/erase``: Art. 17, the receipt (the visits stay, pseudonymised).

Errors never echo personal data: validation errors name the fields, a duplicate e-mail answers
409 without quoting it.

Run it with ``flask --app examples.flask_app.app run``: on the embedded in-memory backend by
default, or on a server with ``MONGODB_URI=mongodb://host:27017/clinic``.
"""

from __future__ import annotations

import datetime
import io
import os
from typing import Any

from flask import Flask, Response, jsonify, request
from privata_mongo.mongoengine.errors import DoesNotExist, NotUniqueError, ValidationError

from examples.flask_app.models import Patient, Visit
from privata_mongo import ProcessingRestricted, Rights
from privata_mongo.mongoengine import connect, disconnect
from privata_mongo.rights import Subject
from privata_mongo.web import AccessContextMiddleware, from_headers

__all__ = ["MONGODB_URI_ENV", "create_app"]

MONGODB_URI_ENV = "MONGODB_URI"
PATIENT_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "date_of_birth",
    "blood_type",
    "allergies",
)
FORMATS = {"json": "application/json", "csv": "application/zip", "xml": "application/xml"}


def _headers(environ: dict[str, Any]) -> Any:
    """The access context a trusted gateway states in the request's headers."""
    prefix = "HTTP_"
    headers = {
        k[len(prefix) :].replace("_", "-"): v for k, v in environ.items() if k.startswith(prefix)
    }
    return from_headers(headers)


def _patient_out(patient: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(patient.id)}
    for name in PATIENT_FIELDS:
        value = getattr(patient, name)
        out[name] = value.isoformat() if isinstance(value, datetime.date) else value
    return out


def _visit_out(visit: Any) -> dict[str, Any]:
    return {
        "id": str(visit.id),
        "patient_id": str(visit.patient.id),
        "at": visit.at.isoformat(),
        "reason": visit.reason,
        "duration_min": visit.duration_min,
    }


def _patient_fields(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object")
    unknown = sorted(set(body) - set(PATIENT_FIELDS))
    if unknown:
        raise ValidationError(f"unknown fields: {', '.join(unknown)}")
    fields = dict(body)
    if isinstance(fields.get("date_of_birth"), str):
        fields["date_of_birth"] = datetime.date.fromisoformat(fields["date_of_birth"])
    return fields


def create_app(connection: dict[str, Any] | None = None) -> Flask:
    """The service, connected to ``connection`` (``connect()``'s keyword arguments).

    Without one: ``MONGODB_URI`` when set, else the embedded in-memory backend.
    """
    app = Flask(__name__)
    if connection is None:
        uri = os.environ.get(MONGODB_URI_ENV, "").strip()
        if uri:
            connection = {"host": uri}
        else:
            import mongomock  # the embedded backend (the ``mock`` extra)

            connection = {"mongo_client_class": mongomock.MongoClient}
    disconnect()
    connect(**{"db": "clinic", "uuidRepresentation": "standard", **connection})
    app.wsgi_app = AccessContextMiddleware(app.wsgi_app, _headers)  # type: ignore[method-assign]
    rights = Rights([Patient, Visit])
    _errors(app)
    _patient_routes(app)
    _rights_routes(app, rights)
    return app


def _errors(app: Flask) -> None:
    @app.errorhandler(ValidationError)
    def invalid(error: ValidationError) -> Any:
        fields = sorted((error.errors or {}).keys()) if isinstance(error, ValidationError) else []
        return jsonify(detail="invalid input", fields=fields or None), 422

    @app.errorhandler(ValueError)
    def bad_value(error: ValueError) -> Any:
        return jsonify(detail="invalid input"), 422

    @app.errorhandler(NotUniqueError)
    def duplicate(error: NotUniqueError) -> Any:
        return jsonify(detail="another patient already has this value of a unique field"), 409

    @app.errorhandler(DoesNotExist)
    def missing(error: DoesNotExist) -> Any:
        return jsonify(detail="not found"), 404

    @app.errorhandler(ProcessingRestricted)
    def restricted(error: ProcessingRestricted) -> Any:
        return jsonify(detail="processing of this patient's data is restricted (GDPR Art. 18)"), 409


def _patient_routes(app: Flask) -> None:
    @app.post("/patients")
    def create_patient() -> Any:
        patient = Patient(**_patient_fields(request.get_json(silent=True))).save()
        return jsonify(_patient_out(patient)), 201

    @app.get("/patients")
    def search_patients() -> Any:
        email = request.args.get("email")
        found = Patient.objects(email=email.strip().lower()) if email else Patient.objects
        return jsonify([_patient_out(p) for p in found.order_by("last_name", "first_name")[:50]])

    @app.get("/patients/<patient_id>")
    def read_patient(patient_id: str) -> Any:
        return jsonify(_patient_out(Patient.objects.get(id=patient_id)))

    @app.patch("/patients/<patient_id>")
    def update_patient(patient_id: str) -> Any:
        patient = Patient.objects.get(id=patient_id)
        for name, value in _patient_fields(request.get_json(silent=True)).items():
            setattr(patient, name, value)
        patient.save()
        return jsonify(_patient_out(patient))

    @app.post("/patients/<patient_id>/visits")
    def record_visit(patient_id: str) -> Any:
        body = request.get_json(silent=True) or {}
        visit = Visit(
            patient=Patient.objects.get(id=patient_id),
            at=datetime.datetime.fromisoformat(str(body.get("at"))),
            reason=body.get("reason"),
            duration_min=body.get("duration_min"),
        ).save()
        return jsonify(_visit_out(visit)), 201

    @app.get("/patients/<patient_id>/visits")
    def list_visits(patient_id: str) -> Any:
        patient = Patient.objects.get(id=patient_id)
        return jsonify([_visit_out(v) for v in Visit.objects(patient=patient).order_by("at")])


def _rights_routes(app: Flask, rights: Rights) -> None:
    def subject(patient_id: str) -> Subject:
        return Subject(model="Patient", id=Patient.id.to_python(patient_id))

    @app.get("/patients/<patient_id>/access")
    def access(patient_id: str) -> Any:
        held = rights.access(subject(patient_id))
        return Response(_json(held.documents, held.processing), mimetype="application/json")

    @app.get("/patients/<patient_id>/export")
    def export(patient_id: str) -> Any:
        chosen = request.args.get("format", "json")
        if chosen not in FORMATS:
            return jsonify(detail=f"format is one of {', '.join(FORMATS)}"), 422
        out = io.BytesIO()
        rights.export(subject(patient_id), out, format=chosen)
        name = f"patient-{patient_id}.{'zip' if chosen == 'csv' else chosen}"
        return Response(
            out.getvalue(),
            mimetype=FORMATS[chosen],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.patch("/patients/<patient_id>/rectify")
    def rectify(patient_id: str) -> Any:
        changes = _patient_fields(request.get_json(silent=True))
        rights.rectify(subject(patient_id), Patient, changes)
        return jsonify(_patient_out(Patient.objects.get(id=patient_id)))

    @app.post("/patients/<patient_id>/restrict")
    def restrict(patient_id: str) -> Any:
        allowed = (request.get_json(silent=True) or {}).get("allowed_purposes", [])
        return jsonify(marked=rights.restrict(subject(patient_id), allowed_purposes=allowed))

    @app.delete("/patients/<patient_id>/restrict")
    def lift(patient_id: str) -> Any:
        return jsonify(marked=rights.lift_restriction(subject(patient_id)))

    @app.post("/patients/<patient_id>/erase")
    def erase(patient_id: str) -> Any:
        Patient.objects.get(id=patient_id)  # 404 for an unknown or erased patient
        receipt = rights.erase(subject(patient_id))
        return jsonify(
            pseudonym=receipt.pseudonym,
            erased_at=receipt.erased_at.isoformat(),
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

    @app.post("/patients/<patient_id>/object/<purpose>")
    def object_to(patient_id: str, purpose: str) -> Any:
        return jsonify(marked=rights.object(subject(patient_id), purpose))

    @app.delete("/patients/<patient_id>/object/<purpose>")
    def withdraw(patient_id: str, purpose: str) -> Any:
        return jsonify(marked=rights.withdraw_objection(subject(patient_id), purpose))


def _json(documents: Any, processing: Any) -> str:
    import json

    from bson import json_util

    return json.dumps(
        {"documents": documents, "processing": processing},
        default=json_util.default,
        sort_keys=True,
    )


def app() -> Flask:
    """``flask --app examples.flask_app.app run`` finds this factory."""
    return create_app()
