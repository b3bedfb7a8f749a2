"""References between split and unsplit models: dereferencing, generic and lazy references,
cached references, and reverse delete rules."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from compat_suite.harness import outcome, raised, scenario
from compat_suite.mongoengine.models import Clinic, clinic, dt, seed_clinic
from compat_suite.mongoengine.observe import doc, names, plain, stored
from compat_suite.requirements import requires


def _visits(m: Clinic, patients: list[Any]) -> list[Any]:
    house, quinn = m.Doctor.objects.order_by("last_name")
    return [
        m.Visit(
            patient=patients[0], doctor=house, at=dt(2024, 2, 1), reason="checkup", cost=50
        ).save(),
        m.Visit(
            patient=patients[0], doctor=quinn, at=dt(2024, 2, 8), reason="follow-up", cost=30
        ).save(),
        m.Visit(
            patient=patients[1], doctor=quinn, at=dt(2024, 2, 2), reason="scan", cost=400
        ).save(),
        m.Visit(
            patient=patients[3], doctor=house, at=dt(2024, 2, 3), reason="checkup", cost=50
        ).save(),
    ]


def _kind(value: Any) -> str:
    return type(value).__name__


@scenario(clinic)
def test_reference_to_a_split_model_and_back(me: ModuleType, m: Clinic) -> dict[str, Any]:
    patients = seed_clinic(m)
    _visits(m, patients)
    visits = m.Visit.objects.order_by("at")
    first = visits.first()
    ada = m.Patient.objects.get(first_name="Ada")
    return {
        "visit_patient": (_kind(first.patient), first.patient.first_name, first.patient.email),
        "visit_doctor": (first.doctor.last_name, first.doctor.email),
        "patient_doctor_chain": [(v.patient.last_name, v.patient.doctor.last_name) for v in visits],
        "raw_reference": stored(m.Visit.objects.as_pymongo().order_by("at").first()),
        "filter_by_document": [v.reason for v in m.Visit.objects(patient=ada).order_by("at")],
        "filter_by_pk": [v.reason for v in m.Visit.objects(patient=ada.pk).order_by("at")],
        "filter_by_in": sorted(v.reason for v in m.Visit.objects(patient__in=patients[:2])),
        "patient_by_doctor": sorted(names(m.Patient.objects(doctor=first.doctor))),
        "deep_filter_refused": raised(lambda: list(m.Visit.objects(patient__first_name="Ada"))),
        "to_mongo_holds_ids": first.to_mongo().to_dict(),
        "reference_equality": first.patient == ada,
    }


@scenario(clinic)
def test_select_related_no_dereference_and_lists(me: ModuleType, m: Clinic) -> dict[str, Any]:
    patients = seed_clinic(m)
    _visits(m, patients)
    ward = m.Ward(name="A", patients=[patients[4], patients[0], patients[2]]).save()
    m.Ward(name="B", patients=[patients[1]]).save()
    wards = m.Ward.objects.order_by("name")
    related = list(m.Visit.objects.order_by("-at").select_related())
    undereferenced = m.Visit.objects.order_by("at").no_dereference().first()
    ward_raw = m.Ward.objects.no_dereference().get(pk=ward.pk)
    return {
        "list_dereference": [[p.first_name for p in w.patients] for w in wards],
        "list_dereference_types": [_kind(p) for p in ward.reload().patients],
        "list_select_related": [[p.email for p in w.patients] for w in wards.select_related()],
        "select_related": [(v.patient.first_name, v.doctor.last_name) for v in related],
        "no_dereference_value": (_kind(undereferenced.patient), undereferenced.patient),
        "no_dereference_list": [(_kind(p), p) for p in ward_raw.patients],
        "filter_list_by_document": [w.name for w in m.Ward.objects(patients=patients[1])],
        "list_scalar": [[p.last_name for p in ps] for ps in wards.scalar("patients")],
        "list_values_no_dereference": [
            [_kind(p) for p in ps] for ps in wards.no_dereference().scalar("patients")
        ],
    }


@requires("dbref_in_documents")
@scenario(clinic)
def test_generic_reference(me: ModuleType, m: Clinic) -> dict[str, Any]:
    patients = seed_clinic(m)
    house = m.Doctor.objects.get(last_name="House")
    ward = m.Ward(name="ICU").save()
    m.LabResult(subject=patients[2], test="hb", value=13.5, taken_at=dt(2024, 3, 1)).save()
    m.LabResult(subject=house, test="hb", value=15.0, taken_at=dt(2024, 3, 2)).save()
    m.LabResult(subject=ward, test="air", value=0.4, taken_at=dt(2024, 3, 3)).save()
    results = m.LabResult.objects.order_by("taken_at")
    return {
        "subjects": [(_kind(r.subject), plain(r.subject)) for r in results],
        "raw": [stored(r) for r in results.as_pymongo()],
        "filter_by_subject": [r.test for r in m.LabResult.objects(subject=patients[2])],
        "filter_by_subject_in": sorted(
            r.value for r in m.LabResult.objects(subject__in=[house, ward])
        ),
        "no_dereference": [
            _kind(r.subject) for r in m.LabResult.objects.order_by("taken_at").no_dereference()
        ],
        "deleted_subject_left_dangling": _dangling(m, patients[2]),
    }


def _dangling(m: Clinic, subject: Any) -> dict[str, Any]:
    subject.delete()  # LabResult.subject has no delete rule: the reference stays
    return {
        "raw": [(_kind(r.subject), r.subject) for r in m.LabResult.objects.no_dereference()],
        "dereferenced": [outcome(lambda r=r: _kind(r.subject)) for r in m.LabResult.objects],
    }


@scenario(clinic)
def test_lazy_reference(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    house = m.Doctor.objects.get(last_name="House")
    m.Ward(name="A", head=house).save()
    m.Ward(name="B", head=house.pk).save()
    wards = list(m.Ward.objects.order_by("name"))
    lazy = wards[0].head
    fetched = lazy.fetch()
    return {
        "type": _kind(lazy),
        "pk": lazy.pk,
        "document_type": lazy.document_type.__name__,
        "fetched": doc(fetched),
        "fetched_again_is_cached": lazy.fetch() is fetched,
        "by_pk_fetch": wards[1].head.fetch().first_name,
        "filter_by_lazy_target": [w.name for w in m.Ward.objects(head=house)],
        "raw": [stored(r) for r in m.Ward.objects.order_by("name").as_pymongo()],
        "missing_attribute_without_passthrough": raised(lambda: lazy.first_name),
    }


@scenario(clinic)
def test_cached_reference_copies_and_syncs_identity_fields(
    me: ModuleType, m: Clinic
) -> dict[str, Any]:
    patients = seed_clinic(m)
    appointment = m.Appointment(patient=patients[0], at=dt(2024, 4, 1)).save()
    m.Appointment(patient=patients[2], at=dt(2024, 4, 2)).save()
    before = [stored(r) for r in m.Appointment.objects.order_by("at").as_pymongo()]
    ada = m.Patient.objects.get(pk=patients[0].pk)
    ada.last_name = "King"
    ada.save()  # CachedReferenceField's auto-sync rewrites the copies
    return {
        "before": before,
        "after_sync": [stored(r) for r in m.Appointment.objects.order_by("at").as_pymongo()],
        "query_by_cached_field": [
            a.at for a in m.Appointment.objects(patient__last_name="King").order_by("at")
        ],
        "dereferenced": doc(appointment.reload().patient, "first_name", "last_name", "email"),
    }


@scenario(clinic)
def test_reverse_delete_rules(me: ModuleType, m: Clinic) -> dict[str, Any]:
    patients = seed_clinic(m)
    _visits(m, patients)
    house, quinn = m.Doctor.objects.order_by("last_name")
    ward = m.Ward(name="A", patients=[patients[0], patients[1], patients[3]]).save()
    observed: dict[str, Any] = {
        "deny_document": raised(house.delete),
        "deny_queryset": raised(lambda: m.Doctor.objects(speciality="gp").delete()),
        "doctors_after_deny": sorted(d.last_name for d in m.Doctor.objects),
    }
    patients[0].delete()  # CASCADE visits, PULL from wards
    observed["visits_after_cascade"] = sorted(v.reason for v in m.Visit.objects)
    observed["ward_after_pull"] = [p.first_name for p in ward.reload().patients]
    observed["cascade_queryset"] = m.Patient.objects(first_name__in=["alan", "Edsger"]).delete()
    observed["visits_after_queryset_cascade"] = sorted(v.reason for v in m.Visit.objects)
    observed["ward_after_queryset_pull"] = [p.first_name for p in ward.reload().patients]
    m.Patient.objects(doctor=quinn).update(unset__doctor=True)
    m.Visit(patient=patients[2], doctor=quinn, at=dt(2024, 5, 1), reason="late").save()
    quinn.delete()  # no patient refers to quinn any more: DENY passes, visits are NULLIFYed
    observed["visit_doctor_nullified"] = [
        (v.reason, v.doctor) for v in m.Visit.objects(reason="late")
    ]
    observed["doctors_left"] = [d.last_name for d in m.Doctor.objects]
    return observed
