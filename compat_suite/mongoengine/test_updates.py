"""Updates: queryset update operators, upserts, modify, Document.update and delta saves."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from compat_suite.harness import outcome, raised, scenario
from compat_suite.mongoengine.models import Clinic, clinic, dt, seed_clinic
from compat_suite.mongoengine.observe import doc, docs, names
from compat_suite.requirements import requires

_IDENTITY = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "date_of_birth",
    "address",
    "aliases",
    "insurance_number",
)
_CLINICAL = ("weight_kg", "tags", "scores", "vitals", "medications", "blood_type")


def _state(m: Clinic, *fields: str) -> list[Any]:
    return docs(m.Patient.objects.order_by("admitted_at"), *fields)


def _result(result: Any) -> dict[str, Any]:
    return {
        "acknowledged": result.acknowledged,
        "matched_count": result.matched_count,
        "modified_count": result.modified_count,
        "upserted_id": result.upserted_id,
        # What the server reported, less per-connection noise (mongomock numbers connections).
        "raw_result": {k: v for k, v in result.raw_result.items() if k in _RAW_RESULT_KEYS},
    }


_RAW_RESULT_KEYS = frozenset({"n", "nModified", "ok", "upserted", "updatedExisting", "err"})


@scenario(clinic)
def test_update_operators_on_identity_fields(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    patient = m.Patient.objects
    counts = {
        "set_by_identity_filter": patient(first_name="Ada").update(
            set__email="countess@example.org", set__last_name="King"
        ),
        "set_implicit_operator": patient(last_name="Turing").update(phone="+44 0"),
        "set_embedded_identity": patient(address__city="Rotterdam").update(
            set__address__city="Amsterdam", set__address__postcode="1000"
        ),
        "set_whole_embedded": patient(first_name="Grace").update(
            set__address=m.Address(street="Navy Yard", city="Arlington")
        ),
        "unset_identity": patient(blood_type="A+").update(unset__phone=True),
        "set_none_identity": patient(first_name="Barbara").update(set__insurance_number=None),
        "set_date_of_birth": patient(first_name="alan").update(set__date_of_birth=dt(1912, 6, 24)),
        "update_one_by_clinical_filter": patient(weight_kg=70).update_one(set__first_name="Alan"),
        "push_identity_list": patient(first_name="Barbara").update(push__aliases="Babs"),
        "add_to_set_identity_list": patient(first_name="Grace").update(
            add_to_set__aliases=["Amazing Grace", "Admiral"]
        ),
        "pull_identity_list": patient(first_name="Ada").update(
            pull__aliases="Countess of Lovelace"
        ),
        "set_identity_by_clinical_filter": patient(tags="neuro").update(
            set__email="enigma@example.org"
        ),
        "rename_identity_raw": patient(first_name="Barbara").update(
            __raw__={"$rename": {"insurance_number": "phone"}}
        ),
        "update_matching_nothing": patient(first_name="Nobody").update(set__email="x@example.org"),
    }
    return {
        "counts": counts,
        "state": _state(m, *_IDENTITY),
        "found_by_new_values": {
            "email": names(patient(email="countess@example.org")),
            "city": names(patient(address__city="Amsterdam")),
            "alias": names(patient(aliases="Babs")),
            "old_email": names(patient(email="ada@example.org")),
        },
    }


@scenario(clinic)
def test_update_operators_on_clinical_fields(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    patient = m.Patient.objects
    counts = {
        "inc": patient(first_name="Ada").update(inc__weight_kg=2),
        "dec": patient(last_name="Turing").update(dec__weight_kg=5),
        "min": patient(first_name="Barbara").update(min__weight_kg=50),
        "max": patient(first_name="Edsger").update(max__weight_kg=72),
        "push": patient(first_name="Ada").update(push__tags="math"),
        "push_at_position": patient(first_name="Ada").update(push__scores__0=1),
        "push_all": patient(first_name="alan").update(push_all__tags=["crypto", "ai"]),
        "pull": patient(tags="vip").update(pull__tags="vip"),
        "pull_all": patient(first_name="Barbara").update(pull_all__scores=[4]),
        "pull_in": patient(first_name="Grace").update(pull__tags__in=["ortho", "x"]),
        "add_to_set_one": patient(first_name="Grace").update(add_to_set__tags="cardio"),
        "add_to_set_many": patient(first_name="Edsger").update(add_to_set__tags=["a", "b", "a"]),
        "pop_last": patient(first_name="alan").update(pop__scores=1),
        "pop_first": patient(first_name="Ada").update(pop__scores=-1),
        "set_dict_subfield": patient(blood_type="A+").update(set__vitals__bp=135),
        "unset_dict_subfield": patient(first_name="Edsger").update(unset__vitals__hr=1),
        "set_embedded_list": patient(first_name="Grace").update(
            set__medications=[m.Medication(name="statin", dose_mg=20)]
        ),
        "push_embedded": patient(first_name="Barbara").update(
            push__medications=m.Medication(name="ibuprofen", dose_mg=200)
        ),
        "pull_embedded_by_match": patient(first_name="Edsger").update(
            pull__medications__name="aspirin"
        ),
        "multi_operator": patient(weight_kg__gte=70).update(
            inc__weight_kg=1, push__tags="heavy", set__vitals__checked=True
        ),
    }
    return {"counts": counts, "state": _state(m, *_CLINICAL)}


@scenario(clinic)
def test_updates_mixing_identity_and_clinical_fields(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    patient = m.Patient.objects
    counts = {
        "identity_filter_clinical_change": patient(
            email__in=["grace@example.com", "barbara@example.com"]
        ).update(inc__weight_kg=1),
        "clinical_filter_identity_change": patient(blood_type="A+").update(
            set__last_name="Changed", push__tags="a-plus"
        ),
        "both_in_one_update": patient(first_name="Edsger").update(
            set__phone="+31 1", set__weight_kg=71, unset__address__postcode=True
        ),
        "q_filter": patient(me.Q(first_name="Ada") | me.Q(weight_kg=55)).update(
            set__insurance_number="INS-NEW"
        ),
    }
    return {"counts": counts, "state": _state(m, *_IDENTITY, *_CLINICAL, "insurance_number")}


@scenario(clinic)
def test_upserts_take_identity_values_from_the_filter(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    patient = m.Patient.objects
    created = patient(email="new@example.org", first_name="New").update(
        set__last_name="Person", set__weight_kg=80, upsert=True
    )
    existing = patient(email="ada@example.org").update(set__weight_kg=62, upsert=True)
    full = patient(email="full@example.org", last_name="Result").update(
        set__first_name="Full", set_on_insert__blood_type="B-", upsert=True, full_result=True
    )
    full_existing = patient(email="full@example.org").update(
        set__phone="+1 0", set_on_insert__blood_type="ignored", upsert=True, full_result=True
    )
    one = patient(first_name="One", last_name="Upsert").update_one(
        set__email="one@example.org", upsert=True
    )
    upserted_doc = patient(first_name="Doc", last_name="Upsert").upsert_one(
        set__email="doc@example.org", inc__weight_kg=3
    )
    upserted_again = patient(first_name="Doc", last_name="Upsert").upsert_one(inc__weight_kg=3)
    return {
        "created": created,
        "existing": existing,
        "full_result": _result(full),
        "full_existing": _result(full_existing),
        "update_one": one,
        "upsert_one": doc(upserted_doc),
        "upsert_one_again": doc(upserted_again),
        "same_document": upserted_doc.pk == upserted_again.pk,
        "new_documents": docs(
            patient(email__in=["new@example.org", "full@example.org", "one@example.org"]).order_by(
                "email"
            )
        ),
        "count": patient.count(),
    }


@scenario(clinic)
def test_modify_returns_old_or_new_document(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    patient = m.Patient.objects
    return {
        "old": doc(
            patient(first_name="Ada").modify(set__email="ada2@example.org", inc__weight_kg=1)
        ),
        "new": doc(patient(first_name="alan").modify(new=True, set__last_name="T", push__tags="x")),
        "sorted_first": doc(
            patient(blood_type="A+").order_by("-date_of_birth").modify(new=True, set__phone="+0"),
            "first_name",
            "phone",
        ),
        "sorted_by_identity": doc(
            patient.order_by("email").modify(new=True, set__weight_kg=1), "first_name", "weight_kg"
        ),
        "no_match": patient(first_name="Nobody").modify(set__weight_kg=1),
        "upsert_new": doc(
            patient(email="modify@example.org").modify(
                upsert=True, new=True, set__first_name="Mod", set__last_name="Ify"
            )
        ),
        "upsert_old_is_none": patient(email="none@example.org").modify(
            upsert=True, set__first_name="No", set__last_name="Ne"
        ),
        "remove": doc(patient(first_name="Barbara").modify(remove=True), "first_name", "email"),
        "remove_and_new": raised(lambda: patient(first_name="Grace").modify(remove=True, new=True)),
        "state": _state(m, "first_name", "last_name", "email", "phone", "weight_kg", "tags"),
    }


@scenario(clinic)
def test_document_update_and_modify(me: ModuleType, m: Clinic) -> dict[str, Any]:
    patients = seed_clinic(m)
    ada, alan, grace = patients[0], patients[1], patients[2]
    updated = ada.update(set__last_name="King", inc__weight_kg=1, push__aliases="Ada King")
    in_memory_after_update = doc(ada, "last_name", "weight_kg", "aliases")
    ada.reload()
    modified = alan.modify(set__email="turing@example.org", set__weight_kg=71)
    not_modified = grace.modify(query={"weight_kg": 1000}, set__weight_kg=1)
    unsaved = m.Patient(first_name="U", last_name="N")
    return {
        "update_count": updated,
        "in_memory_after_update": in_memory_after_update,
        "reloaded": doc(ada, "last_name", "weight_kg", "aliases"),
        "modify_returns": modified,
        "modify_updates_instance": doc(alan, "email", "weight_kg"),
        "modify_with_failing_query": not_modified,
        "grace_unchanged": doc(grace, "weight_kg"),
        "update_unsaved": raised(lambda: unsaved.update(set__weight_kg=1)),
        "modify_pk": raised(lambda: grace.modify(set__id=ada.pk)),
        "stored": _state(m, "last_name", "email", "weight_kg", "aliases"),
    }


@scenario(clinic)
def test_save_sends_only_the_delta(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    edsger = m.Patient.objects.get(first_name="Edsger")
    m.Patient.objects(pk=edsger.pk).update(set__blood_type="O+")  # a concurrent change
    edsger.address.city = "Nuenen"
    edsger.medications[0].dose_mg = 75
    edsger.scores.append(10)
    edsger.vitals.pop("hr")
    edsger.aliases = ["EWD"]
    edsger.phone = "+31 2"
    delta = edsger._delta()
    edsger.save()
    ada = m.Patient.objects.get(first_name="Ada")
    ada.tags.remove("vip")
    ada.scores[1] = 42
    del ada.vitals["bp"]
    ada.save()
    return {
        "delta": delta,
        "edsger": doc(m.Patient.objects.get(pk=edsger.pk)),
        "concurrent_change_kept": m.Patient.objects.get(pk=edsger.pk).blood_type,
        "ada": doc(m.Patient.objects.get(pk=ada.pk), "tags", "scores", "vitals"),
    }


@scenario(clinic)
def test_save_condition(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    grace = m.Patient.objects.get(first_name="Grace")
    grace.weight_kg = 59
    ok = outcome(lambda: grace.save(save_condition={"weight_kg": 58}) and None)
    grace.email = "hopper@example.com"
    failed = raised(lambda: grace.save(save_condition={"weight_kg": 58}))
    identity_condition = outcome(
        lambda: grace.save(save_condition={"last_name": "Hopper"}) and None
    )
    return {
        "ok": ok,
        "failed": failed,
        "identity_condition": identity_condition,
        "stored": doc(m.Patient.objects.get(pk=grace.pk), "email", "weight_kg"),
    }


@scenario(clinic)
def test_update_errors(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    patient = m.Patient.objects
    return {
        "no_update": raised(lambda: patient(first_name="Ada").update()),
        "unknown_field": raised(lambda: patient.update(set__nickname="x")),
        "bad_value_for_int": raised(lambda: patient.update(set__weight_kg="heavy")),
        "bad_email": outcome(lambda: patient(first_name="Ada").update(set__email="not-an-email")),
        "inc_a_string": raised(lambda: patient(first_name="Ada").update(inc__first_name=1)),
        "pull_all_nested": raised(lambda: patient.update(pull_all__address__city=["x"])),
        "unchanged": sorted(names(patient)),
    }


@requires("positional_update")
@scenario(clinic)
def test_positional_update_on_embedded_list(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    count = m.Patient.objects(medications__name="aspirin").update(set__medications__S__dose_mg=1)
    return {
        "count": count,
        "medications": [p.medications[0].dose_mg for p in m.Patient.objects(medications__size=1)],
        "names": names(m.Patient.objects(medications__dose_mg=1)),
    }


@requires("positional_update", "positional_update_on_scalars")
@scenario(clinic)
def test_positional_update_on_scalar_lists(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    return {
        "clinical": m.Patient.objects(tags="vip").update(set__tags__S="VIP"),
        "identity": m.Patient.objects(aliases="Amazing Grace").update(set__aliases__S="Grace"),
        "state": _state(m, "tags", "aliases"),
    }
