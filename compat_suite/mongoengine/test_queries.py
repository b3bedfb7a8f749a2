"""Querysets: filters on identity and clinical fields, Q objects, raw queries, ordering, paging.

Filter scenarios observe ``sorted`` names, so that a difference in natural order (observed on
its own in ``test_natural_order_without_sort``) does not hide which documents matched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

from compat_suite.harness import raised, scenario
from compat_suite.mongoengine.models import Clinic, clinic, dt, seed_clinic
from compat_suite.mongoengine.observe import doc, docs, names, stored
from compat_suite.requirements import requires


def _matches(queryset: Any, filters: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Sorted first names for each named filter.

    Errors are not caught: a filter a backend cannot run must fail the scenario (and so meet its
    declared gap), not turn into an equal pair of exception names.
    """
    return {label: sorted(names(queryset.filter(**kw))) for label, kw in filters.items()}


@scenario(clinic)
def test_exact_and_set_operators_on_identity_fields(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    return _matches(
        m.Patient.objects,
        {
            "exact": {"first_name": "Ada"},
            "exact_is_case_sensitive": {"first_name": "ada"},
            "ne": {"first_name__ne": "Ada"},
            "in": {"email__in": ["ada@example.org", "grace@example.com", "nobody@example.org"]},
            "nin": {"last_name__nin": ["Lovelace", "Turing"]},
            "phone_missing": {"phone": None},
            "phone_exists": {"phone__exists": True},
            "phone_not_exists": {"phone__exists": False},
            "insurance_pii_marker": {"insurance_number__in": ["INS-001", "INS-005"]},
            "insurance_is_none": {"insurance_number": None},
            "identity_list_contains": {"aliases": "Amazing Grace"},
            "identity_list_size": {"aliases__size": 0},
            "embedded_identity": {"address__city": "London"},
            "embedded_identity_ne": {"address__city__ne": "London"},
            "embedded_identity_in": {"address__postcode__in": ["P1", "P3"]},
            "two_identity_fields": {"first_name__in": ["Ada", "alan"], "last_name": "Lovelace"},
            "identity_and_pk": {"first_name__ne": "Ada", "pk__exists": True},
            "no_match": {"first_name": "Nobody"},
        },
    )


@requires("unicode_regex")
@scenario(clinic)
def test_string_operators_on_identity_fields(me: ModuleType, m: Clinic) -> dict[str, Any]:
    """mongoengine turns these operators into compiled Python regexes (always with the u flag)."""
    seed_clinic(m)
    q = me.Q
    observed = _matches(
        m.Patient.objects,
        {
            "exact_op": {"last_name__exact": "Hopper"},
            "iexact": {"first_name__iexact": "ALAN"},
            "contains": {"last_name__contains": "ra"},
            "icontains": {"email__icontains": "EXAMPLE.COM"},
            "startswith": {"first_name__startswith": "Ba"},
            "istartswith": {"first_name__istartswith": "a"},
            "endswith": {"email__endswith": ".org"},
            "iendswith": {"last_name__iendswith": "ER"},
            "regex": {"email__regex": r"^[a-e]\w+@"},
            "iregex": {"last_name__iregex": "^(l|t)"},
            "wholeword": {"address__city__wholeword": "York"},
            "iwholeword": {"address__city__iwholeword": "angeles"},
            "not_startswith": {"first_name__not__startswith": "A"},
            "not_iexact": {"first_name__not__iexact": "alan"},
            "insurance_pii_marker": {"insurance_number__startswith": "INS-00"},
            "embedded_identity": {"address__city__icontains": "l"},
            "identity_list": {"aliases__icontains": "grace"},
            "with_clinical": {"first_name__istartswith": "a", "weight_kg__gte": 61},
            "raw_compiled": {"__raw__": {"first_name": re.compile("^[ab]", re.IGNORECASE)}},
        },
    )
    observed["q_or"] = sorted(
        names(m.Patient.objects(q(email__endswith=".com") | q(first_name__iexact="ALAN")))
    )
    observed["q_and_clinical"] = sorted(
        names(m.Patient.objects(q(last_name__startswith="L") & q(blood_type="A+")))
    )
    return observed


@scenario(clinic)
def test_comparison_operators_on_date_of_birth_and_numbers(
    me: ModuleType, m: Clinic
) -> dict[str, Any]:
    seed_clinic(m)
    return _matches(
        m.Patient.objects,
        {
            "born_before_1910": {"date_of_birth__lt": dt(1910, 1, 1)},
            "born_on_or_before_grace": {"date_of_birth__lte": dt(1906, 12, 9)},
            "born_after_1930": {"date_of_birth__gt": dt(1930, 5, 11)},
            "born_1930_or_later": {"date_of_birth__gte": dt(1930, 5, 11)},
            "born_between": {
                "date_of_birth__gte": dt(1900, 1, 1),
                "date_of_birth__lt": dt(1935, 1, 1),
            },
            "born_exactly": {"date_of_birth": dt(1912, 6, 23)},
            "born_ne": {"date_of_birth__ne": dt(1912, 6, 23)},
            "born_in": {"date_of_birth__in": [dt(1815, 12, 10), dt(1939, 11, 7)]},
            "weight_gt": {"weight_kg__gt": 60},
            "weight_lte": {"weight_kg__lte": 58},
            "weight_in": {"weight_kg__in": [55, 70]},
            "weight_and_dob": {"weight_kg": 70, "date_of_birth__lt": dt(1920, 1, 1)},
            "admitted_after": {"admitted_at__gt": dt(2024, 1, 3)},
            "dict_subfield": {"vitals__bp__gte": 122},
            "dict_subfield_exists": {"vitals__hr__exists": True},
        },
    )


@scenario(clinic)
def test_list_and_embedded_operators_on_clinical_fields(
    me: ModuleType, m: Clinic
) -> dict[str, Any]:
    seed_clinic(m)
    return _matches(
        m.Patient.objects,
        {
            "list_contains": {"tags": "vip"},
            "list_in": {"tags__in": ["neuro", "ortho"]},
            "list_nin": {"tags__nin": ["vip"]},
            "list_all": {"tags__all": ["vip", "cardio"]},
            "list_size_0": {"tags__size": 0},
            "list_size_2": {"tags__size": 2},
            "list_element_gt": {"scores__gt": 7},
            "list_position": {"scores__0": 4},
            "list_exists": {"scores__exists": True},
            "embedded_list_field": {"medications__name": "aspirin"},
            "embedded_list_gt": {"medications__dose_mg__gt": 250},
            "list_size_and_identity": {"tags__size": 1, "first_name__ne": "Ada"},
            "reference_by_document": {"doctor": m.Doctor.objects.get(last_name="Quinn")},
            "reference_by_id": {"doctor__in": [m.Doctor.objects.get(last_name="House").pk]},
            "type_string": {"phone__type": "string"},
        },
    )


@requires("elem_match_documents")
@scenario(clinic)
def test_elem_match_on_embedded_document_lists(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    return _matches(
        m.Patient.objects,
        {
            "match_two_conditions": {
                "medications__match": {"name": "aspirin", "dose_mg__gte": 400}
            },
            "match_one_condition": {"medications__match": {"dose_mg__lt": 300}},
            "match_and_identity": {
                "medications__match": {"name": "aspirin"},
                "first_name__in": ["alan", "Ada"],
            },
            "raw": {"__raw__": {"medications": {"$elemMatch": {"dose_mg": {"$gte": 200}}}}},
        },
    )


@scenario(clinic)
def test_q_objects_mixing_identity_and_clinical_fields(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    q = me.Q
    queries = {
        "or_identity_clinical": q(first_name="Ada") | q(weight_kg=70),
        "and_identity_clinical": q(last_name__in=["Lovelace", "Liskov"]) & q(blood_type="A+"),
        "nested": (q(last_name__in=["Lovelace", "Liskov"]) & q(blood_type="A+")) | q(tags="neuro"),
        "or_of_ands": (
            q(email__in=["grace@example.com", "barbara@example.com"]) & q(weight_kg__lt=57)
        )
        | (q(first_name="alan") & q(scores__size=2)),
        "and_of_ors": (q(first_name="Ada") | q(first_name="Grace"))
        & (q(blood_type="A+") | q(weight_kg__gt=100)),
        "or_same_identity_field": q(last_name="Turing") | q(last_name="Liskov"),
        "or_embedded_identity": q(address__city="London") | q(address__city__in=["New York"]),
        "dob_or_tag": q(date_of_birth__gt=dt(1935, 1, 1)) | q(tags__size=0),
        "empty_q": q(),
        "q_and_empty": q(first_name="Ada") & q(),
    }
    observed: dict[str, Any] = {
        label: sorted(names(m.Patient.objects(query))) for label, query in queries.items()
    }
    observed["q_plus_kwargs"] = sorted(
        names(m.Patient.objects(q(weight_kg=70) | q(blood_type="AB-"), first_name__ne="alan"))
    )
    observed["filter_chain"] = sorted(
        names(m.Patient.objects.filter(q(tags="cardio")).filter(last_name__ne="Hopper"))
    )
    return observed


@scenario(clinic)
def test_raw_queries(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    raw: dict[str, dict[str, Any]] = {
        "or": {"$or": [{"first_name": "Ada"}, {"weight_kg": {"$lt": 56}}]},
        "regex_string": {"email": {"$regex": r"example\.com$"}},
        "regex_options": {"last_name": {"$regex": "^L", "$options": "i"}},
        "and": {"$and": [{"blood_type": "A+"}, {"address.city": {"$ne": "London"}}]},
        "nor": {"$nor": [{"first_name": "Ada"}, {"tags": "vip"}]},
        "not": {"last_name": {"$not": {"$regex": "^[LT]"}}},
        "in_dotted_identity": {"address.postcode": {"$in": ["P0", "P4"]}},
        "elem_match_scalars": {"scores": {"$elemMatch": {"$gt": 3, "$lt": 5}}},
        "exists": {"insurance_number": {"$exists": False}},
        "date_range": {"date_of_birth": {"$gte": dt(1900, 1, 1), "$lt": dt(1920, 1, 1)}},
    }
    observed = _matches(
        m.Patient.objects, {label: {"__raw__": query} for label, query in raw.items()}
    )
    observed["raw_and_kwargs"] = sorted(
        names(m.Patient.objects(__raw__={"tags": "cardio"}, first_name="Grace"))
    )
    return observed


@scenario(clinic)
def test_natural_order_without_sort(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    return {
        "all": names(m.Patient.objects),
        "identity_filter": names(m.Patient.objects(first_name__in=["Barbara", "Ada", "alan"])),
        "clinical_filter": names(m.Patient.objects(weight_kg__gte=58)),
        "mixed_filter": names(m.Patient.objects(last_name__ne="Hopper", tags__size__ne=0)),
        "as_pymongo": [raw["email"] for raw in m.Patient.objects.as_pymongo()],
    }


@scenario(clinic)
def test_order_by_identity_and_clinical_fields(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    patient = m.Patient.objects
    orderings: dict[str, tuple[str, ...]] = {
        "first_name_binary_order": ("first_name",),
        "last_name_desc": ("-last_name",),
        "email": ("+email",),
        "date_of_birth": ("date_of_birth",),
        "date_of_birth_desc": ("-date_of_birth",),
        "embedded_identity": ("address.city",),
        "missing_phone_first": ("phone",),
        "missing_phone_last": ("-phone",),
        "weight_ties_natural": ("weight_kg",),
        "weight_desc_then_name": ("-weight_kg", "first_name"),
        "blood_then_last_name_desc": ("blood_type", "-last_name"),
        "identity_then_clinical": ("last_name", "weight_kg"),
        "tags_list": ("tags",),
        "dict_subfield": ("-vitals.hr",),
    }
    observed: dict[str, Any] = {
        label: names(patient.order_by(*keys)) for label, keys in orderings.items()
    }
    observed["raw_sort"] = names(patient.order_by(__raw__=[("blood_type", -1), ("last_name", 1)]))
    observed["reordered"] = names(patient.order_by("first_name").order_by("-weight_kg"))
    observed["order_cleared"] = names(patient.order_by("last_name").order_by())
    observed["filtered_sorted"] = names(patient(blood_type="A+").order_by("-first_name"))
    observed["both_keys_and_raw"] = raised(
        lambda: patient.order_by("first_name", __raw__=[("last_name", 1)])
    )
    return observed


@scenario(clinic)
def test_skip_limit_slicing_and_indexing(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    ordered = m.Patient.objects.order_by("last_name")
    return {
        "skip": names(ordered.skip(3)),
        "limit": names(ordered.limit(2)),
        "skip_limit": names(ordered.skip(1).limit(2)),
        "limit_0_means_all": names(ordered.limit(0)),
        "slice": names(ordered[1:3]),
        "slice_open_end": names(ordered[3:]),
        "slice_open_start": names(ordered[:2]),
        "slice_empty": names(ordered[2:2]),
        "index_0": ordered[0].last_name,
        "index_4": ordered[4].last_name,
        "index_out_of_range": raised(lambda: ordered[5]),
        "index_unsorted_identity_filter": m.Patient.objects(
            email__in=["grace@example.com", "barbara@example.com"]
        )[1].first_name,
        "slice_then_filter_order": names(ordered[1:4].order_by("-first_name")),
        "limit_on_identity_sort": names(m.Patient.objects.order_by("-email").limit(3)),
        "skip_past_end": names(ordered.skip(10)),
        "as_pymongo_index": stored(ordered.as_pymongo()[2]),
        "scalar_index": ordered.scalar("email")[1],
    }


@scenario(clinic)
def test_count_exists_and_len(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    patient = m.Patient.objects
    window = patient.order_by("first_name").skip(1).limit(2)
    return {
        "count": patient.count(),
        "count_identity_filter": patient(first_name__in=["Ada", "alan", "Grace", "Nobody"]).count(),
        "count_clinical_filter": patient(weight_kg=70).count(),
        "count_mixed": patient(
            email__nin=["grace@example.com", "barbara@example.com"], blood_type__ne="A+"
        ).count(),
        "count_ignores_window": window.count(),
        "count_with_limit_and_skip": window.count(with_limit_and_skip=True),
        "count_skip_only": patient.skip(4).count(with_limit_and_skip=True),
        "len": len(patient(tags="vip")),
        "exists_via_count": patient(last_name="Hopper").count() > 0,
        "not_exists_via_count": patient(last_name="Nobody").count() > 0,
        "bool_nonempty": bool(patient(last_name="Hopper")),
        "bool_empty": bool(patient(last_name="Nobody")),
        "first_exists": patient(address__city="Rotterdam").first() is not None,
    }


@scenario(clinic)
def test_distinct_on_identity_and_clinical_fields(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    patient = m.Patient.objects
    return {
        "last_name": sorted(patient.distinct("last_name")),
        "email_filtered": sorted(patient(weight_kg=70).distinct("email")),
        "embedded_identity": sorted(patient.distinct("address.city")),
        "date_of_birth": sorted(patient(blood_type="A+").distinct("date_of_birth")),
        "insurance_number": sorted(patient.distinct("insurance_number")),
        "blood_type": sorted(patient.distinct("blood_type")),
        "blood_type_identity_filter": sorted(
            patient(first_name__in=["Ada", "alan"]).distinct("blood_type")
        ),
        "tags_flattened": sorted(patient.distinct("tags")),
        "embedded_list": sorted(patient.distinct("medications.name")),
        "embedded_documents": sorted(
            (a.city, a.street) for a in patient(weight_kg__lt=60).distinct("address")
        ),
        "referenced_doctors": sorted(d.last_name for d in patient.distinct("doctor")),
        "none_matching": patient(first_name="Nobody").distinct("email"),
    }


@scenario(clinic)
def test_only_exclude_fields_values_list_scalar(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    ordered = m.Patient.objects.order_by("first_name")
    return {
        "only_identity": docs(ordered.only("first_name", "email")),
        "only_clinical": docs(ordered.only("weight_kg", "tags")),
        "only_mixed_as_pymongo": [
            stored(r) for r in ordered.only("last_name", "weight_kg").as_pymongo()
        ],
        "only_embedded_subfield": [stored(r) for r in ordered.only("address.city").as_pymongo()],
        "exclude_identity": docs(ordered.exclude("email", "address", "phone", "date_of_birth")),
        "exclude_as_pymongo": [
            sorted(r) for r in ordered.exclude("first_name", "vitals").as_pymongo()
        ],
        "fields_include": [
            stored(r) for r in ordered.fields(last_name=1, blood_type=1).as_pymongo()
        ],
        "fields_exclude": [sorted(r) for r in ordered.fields(email=0, tags=0).as_pymongo()],
        "values_list": list(ordered.values_list("first_name", "blood_type", "date_of_birth")),
        "values_list_embedded": list(ordered.values_list("address__city", "vitals")),
        "scalar_one": list(ordered.scalar("email")),
        "scalar_reference_id": [d.pk for d in ordered.scalar("doctor")],
        "scalar_then_all_fields": doc(ordered.scalar("email").scalar().first(), "first_name"),
        "only_then_reload_missing": ordered.only("first_name").first().weight_kg,
        "all_fields": doc(ordered.only("first_name").all_fields().first()),
        "only_filter_on_other_field": list(
            m.Patient.objects(weight_kg=70).order_by("email").scalar("email")
        ),
    }


@requires("mod_operator")
@scenario(clinic)
def test_mod_operator(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    return {
        "weight_mod_5": sorted(names(m.Patient.objects(weight_kg__mod=[5, 0]))),
        "and_identity": sorted(
            names(m.Patient.objects(weight_kg__mod=[2, 0], first_name__ne="Ada"))
        ),
    }


@requires("slice_projection")
@scenario(clinic)
def test_slice_projection(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    ordered = m.Patient.objects.order_by("first_name")
    return {
        "first_two_scores": [p.scores for p in ordered.fields(slice__scores=2)],
        "last_score": [p.scores for p in ordered.fields(slice__scores=-1)],
        "with_identity": [(p.first_name, p.scores) for p in ordered.fields(slice__scores=[1, 1])],
    }


@requires("elem_match_projection")
@scenario(clinic)
def test_elem_match_projection(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    ordered = m.Patient.objects(medications__size=1).order_by("first_name")
    projected = ordered.fields(elemMatch__medications={"dose_mg": {"$gte": 400}})
    return {
        "raw": [stored(r) for r in projected.as_pymongo()],
        "documents": [(p.first_name, [x.name for x in p.medications]) for p in projected],
    }


@scenario(clinic)
def test_none_in_bulk_with_id(me: ModuleType, m: Clinic) -> dict[str, Any]:
    patients = seed_clinic(m)
    ids = [p.pk for p in patients]
    bulk = m.Patient.objects.in_bulk([ids[3], ids[0], ids[0]])
    return {
        "none_list": list(m.Patient.objects.none()),
        "none_count": m.Patient.objects.none().count(),
        "none_first": m.Patient.objects.none().first(),
        "none_filtered_again": list(m.Patient.objects.none().filter(first_name="Ada")),
        "none_distinct_ignores_none": sorted(m.Patient.objects.none().distinct("email")),
        "in_bulk_keys_by_id_order": sorted(bulk, key=ids.index),
        "in_bulk_values": {
            key: doc(value, "first_name", "address") for key, value in sorted(bulk.items())
        },
        "in_bulk_unknown": m.Patient.objects.in_bulk([ids[0].__class__()]),
        "in_bulk_as_pymongo": {
            k: v["email"] for k, v in m.Patient.objects.as_pymongo().in_bulk(ids[:2]).items()
        },
        "with_id": doc(m.Patient.objects.with_id(ids[2]), "first_name", "email"),
        "with_id_str": doc(m.Patient.objects.with_id(str(ids[1])), "last_name"),
        "with_id_unknown": m.Patient.objects.with_id(ids[0].__class__()),
        "with_id_after_filter": raised(lambda: m.Patient.objects(first_name="Ada").with_id(ids[0])),
        "pk_in": sorted(names(m.Patient.objects(pk__in=ids[1:3]))),
        "id_ne": len(m.Patient.objects(id__ne=ids[0])),
    }


@scenario(clinic)
def test_iterating_twice_rewind_clone_and_batches(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    cached = m.Patient.objects(blood_type__ne="O-").order_by("last_name")
    first_pass, second_pass = names(cached), names(cached)
    uncached = m.Patient.objects.order_by("-first_name").no_cache()
    uncached_passes = (names(uncached), names(uncached))
    cursor = m.Patient.objects.order_by("first_name").no_cache()
    head = [next(cursor).first_name, next(cursor).first_name]
    cursor.rewind()
    rewound = next(cursor).first_name
    clone = cached.clone()
    partial_iteration = []
    for patient in m.Patient.objects.order_by("email"):
        partial_iteration.append(patient.email)
        if len(partial_iteration) == 2:
            break
    return {
        "first_pass": first_pass,
        "second_pass": second_pass,
        "uncached_passes": uncached_passes,
        "head_then_rewound": (head, rewound),
        "clone": names(clone),
        "clone_refined": names(clone.filter(tags__size=1)),
        "batch_size_2": names(m.Patient.objects.order_by("date_of_birth").batch_size(2)),
        "batch_size_1_identity_filter": names(
            m.Patient.objects(email__exists=True).order_by("-date_of_birth").batch_size(1)
        ),
        "partial_iteration": partial_iteration,
    }


@requires("no_cursor_timeout")
@scenario(clinic)
def test_queryset_without_cursor_timeout(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    return {
        "no_timeout": names(m.Patient.objects.order_by("last_name").timeout(False).limit(2)),
        "identity_filter": names(m.Patient.objects(email__ne="x@example.org").timeout(False)),
    }


@scenario(clinic)
def test_queryset_manager(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    return {
        "heavy": names(m.Patient.heavy),
        "heavy_refined": names(m.Patient.heavy(first_name__ne="Ada")),
        "heavy_count": m.Patient.heavy.count(),
    }


def _filters_that_error(m: Clinic) -> dict[str, Callable[[], object]]:
    return {
        "unknown_field": lambda: list(m.Patient.objects(nickname="x")),
        "unknown_operator": lambda: list(m.Patient.objects(first_name__like="x")),
        "bad_date": lambda: list(m.Patient.objects(date_of_birth__gt="not a date")),
        "int_for_string_list": lambda: list(m.Patient.objects(weight_kg__in=5)),
        "bad_object_id": lambda: list(m.Patient.objects(pk="nope")),
    }


@scenario(clinic)
def test_invalid_queries_raise_the_same_errors(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    return {label: raised(action) for label, action in _filters_that_error(m).items()}
