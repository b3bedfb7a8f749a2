"""Validation and errors: the same exception types (messages are not compared: the wrapper may
redact personal data from them), the same failing fields, the same data left behind."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from compat_suite.harness import error_name, outcome, raised, scenario
from compat_suite.mongoengine.models import (
    Clinic,
    Strictness,
    clinic,
    dt,
    seed_clinic,
    strictness,
)
from compat_suite.mongoengine.observe import doc, docs, names


def _validation(action: Any) -> dict[str, Any] | None:
    """The exception type and, for ValidationError, which fields failed (not why)."""
    try:
        action()
    except Exception as exc:
        errors = getattr(exc, "errors", None)
        return {
            "type": error_name(exc),
            "fields": sorted(exc.to_dict()) if hasattr(exc, "to_dict") and errors else None,
        }
    return None


@scenario(clinic)
def test_validation_errors(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    return {
        "missing_required_identity": _validation(m.Patient(last_name="X").save),
        "missing_two": _validation(m.Patient(email="a@example.org").save),
        "bad_email": _validation(m.Patient(first_name="A", last_name="B", email="nope").save),
        "too_long_name": _validation(m.Patient(first_name="x" * 41, last_name="B").save),
        "wrong_type_clinical": _validation(
            m.Patient(first_name="A", last_name="B", weight_kg="heavy").save
        ),
        "bad_embedded": _validation(
            m.Patient(first_name="A", last_name="B", medications=[m.Medication(dose_mg=1)]).save
        ),
        "validate_only": _validation(m.Patient(first_name="A", email="bad").validate),
        "clean_before_save": _validation(
            lambda: m.Patient(first_name="A", last_name="B", date_of_birth="not a date").save()
        ),
        "save_without_validation": outcome(
            lambda: m.Patient(last_name="NoFirst", email="bad").save(validate=False).last_name
        ),
        "stored_invalid_one": docs(m.Patient.objects(last_name="NoFirst"), "email"),
        "visit_without_at": _validation(m.Visit(reason="x").save),
        "count": m.Patient.objects.count(),
    }


@scenario(clinic)
def test_not_unique_on_identity_fields(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)

    def twin(email: str, first: str = "Twin") -> Any:
        return m.Patient(first_name=first, last_name="Dup", email=email)

    inserted_before_duplicate = [
        twin("bulk1@example.org", "Bulk1"),
        twin("ada@example.org", "Bulk2"),
        twin("bulk3@example.org", "Bulk3"),
    ]
    observed = {
        "save": raised(twin("ada@example.org").save),
        "save_other_case_is_unique": outcome(lambda: twin("ADA@example.org", "Upper").save().email),
        "insert_one": raised(lambda: m.Patient.objects.insert(twin("grace@example.com"))),
        "insert_many": raised(lambda: m.Patient.objects.insert(inserted_before_duplicate)),
        "insert_many_ids_only": raised(
            lambda: m.Patient.objects.insert([twin("alan@example.org")], load_bulk=False)
        ),
        "update_to_duplicate": raised(
            lambda: m.Patient.objects(first_name="alan").update(set__email="ada@example.org")
        ),
        "update_one_to_duplicate": raised(
            lambda: m.Patient.objects(first_name="alan").update_one(set__email="ada@example.org")
        ),
        "modify_to_duplicate": raised(
            lambda: m.Patient.objects(first_name="alan").modify(set__email="ada@example.org")
        ),
        "save_existing_to_duplicate": raised(lambda: _set_and_save(m, "Grace", "ada@example.org")),
        "upsert_duplicate": raised(
            lambda: m.Patient.objects(first_name="New").update(
                set__email="ada@example.org", set__last_name="X", upsert=True
            )
        ),
        "doctor_unique_too": raised(
            lambda: m.Doctor(first_name="G", last_name="H", email="house@example.org").save()
        ),
        "not_unique_is_operation_error": _is_operation_error(twin("ada@example.org").save),
    }
    observed["left_behind"] = sorted(names(m.Patient.objects))
    observed["emails"] = sorted(m.Patient.objects.distinct("email"))
    return observed


def _set_and_save(m: Clinic, first_name: str, email: str) -> None:
    patient = m.Patient.objects.get(first_name=first_name)
    patient.email = email
    patient.save()


def _is_operation_error(action: Any) -> bool:
    from mongoengine.errors import OperationError

    try:
        action()
    except OperationError:
        return True
    return False


@scenario(strictness)
def test_field_does_not_exist(me: ModuleType, m: Strictness) -> dict[str, Any]:
    collection = m.Strict._get_collection()
    collection.insert_one({"first_name": "Raw", "email": "raw@example.org", "nickname": "R"})
    m.Lenient._get_collection().insert_one({"first_name": "Raw", "nickname": "R", "phone": "1"})
    dynamic = m.Dynamic(first_name="Dyn", phone="+1", email="dyn@example.org", ward=3).save()
    return {
        "construct_unknown": raised(lambda: m.Strict(first_name="A", nickname="x")),
        "load_unknown_from_storage": raised(lambda: list(m.Strict.objects)),
        "load_as_pymongo": [sorted(r) for r in m.Strict.objects.as_pymongo()],
        "lenient_construct_still_strict": raised(lambda: m.Lenient(first_name="L", nickname="x")),
        "lenient_load": [doc(d, "first_name") for d in m.Lenient.objects],
        "dynamic_fields": doc(m.Dynamic.objects.get(pk=dynamic.pk)),
        "dynamic_query_on_dynamic_field": names(m.Dynamic.objects(email="dyn@example.org")),
        "dynamic_dynamic_fields": sorted(m.Dynamic.objects.get(pk=dynamic.pk)._dynamic_fields),
    }


@scenario(clinic)
def test_operation_errors(me: ModuleType, m: Clinic) -> dict[str, Any]:
    patients = seed_clinic(m)
    return {
        "update_no_params": raised(lambda: m.Patient.objects.update()),
        "insert_saved": raised(lambda: m.Patient.objects.insert(patients[0])),
        "modify_remove_and_new": raised(
            lambda: m.Patient.objects(first_name="Ada").modify(remove=True, new=True)
        ),
        "order_by_keys_and_raw": raised(
            lambda: m.Patient.objects.order_by("email", __raw__=[("email", 1)])
        ),
        "deny_delete": raised(m.Doctor.objects.first().delete),
        "reload_unsaved": raised(m.Patient(first_name="U", last_name="N").reload),
        "update_unsaved": raised(lambda: m.Patient(first_name="U").update(set__weight_kg=1)),
        "cascade_then_get": raised(lambda: m.Visit.objects.get(at=dt(2000, 1, 1))),
        "drop_collection": outcome(lambda: m.Visit.drop_collection()),
        "patients_intact": sorted(names(m.Patient.objects)),
    }
