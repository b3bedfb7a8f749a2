"""Aggregation: sum/average and pipelines over clinical fields, grouped or filtered by identity."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from compat_suite.harness import differs, scenario
from compat_suite.mongoengine.models import Clinic, clinic, dt, seed_clinic
from compat_suite.requirements import requires
from privata_mongo import UnsupportedQuery


@scenario(clinic)
def test_sum_over_clinical_fields(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    patient = m.Patient.objects
    return {
        "sum": patient.sum("weight_kg"),
        "sum_identity_filter": patient(first_name__in=["Ada", "alan", "Grace"]).sum("weight_kg"),
        "sum_clinical_filter": patient(blood_type="A+").sum("weight_kg"),
        "sum_list_field": patient.sum("scores"),
        "sum_embedded_list": patient.sum("medications.dose_mg"),
        "sum_dict_subfield": patient(email__nin=["grace@example.com", "barbara@example.com"]).sum(
            "vitals.bp"
        ),
        "sum_nothing": patient(first_name="Nobody").sum("weight_kg"),
    }


@requires("group_avg")
@scenario(clinic)
def test_average_over_clinical_fields(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    patient = m.Patient.objects
    return {
        "average": patient.average("weight_kg"),
        "average_identity_filter": patient(last_name__in=["Lovelace", "Liskov"]).average(
            "weight_kg"
        ),
        "average_list_field": patient.average("scores"),
        "average_nothing": patient(first_name="Nobody").average("weight_kg"),
    }


@scenario(clinic)
def test_aggregate_pipelines_over_clinical_fields(me: ModuleType, m: Clinic) -> dict[str, Any]:
    """Identity fields appear only in the queryset's filter or a leading $match."""
    seed_clinic(m)
    patient = m.Patient.objects
    return {
        "group_clinical_by_clinical": list(
            patient.aggregate(
                [
                    {
                        "$group": {
                            "_id": "$blood_type",
                            "n": {"$sum": 1},
                            "kg": {"$sum": "$weight_kg"},
                        }
                    },
                    {"$sort": {"_id": 1}},
                ]
            )
        ),
        "identity_filter_then_group": list(
            patient(email__nin=["grace@example.com", "barbara@example.com"]).aggregate(
                [{"$group": {"_id": None, "kg": {"$sum": "$weight_kg"}}}]
            )
        ),
        "match_on_identity_in_pipeline": list(
            patient.aggregate(
                [
                    {"$match": {"last_name": {"$in": ["Turing", "Hopper"]}}},
                    {"$project": {"_id": 0, "weight_kg": 1}},
                    {"$sort": {"weight_kg": 1}},
                ]
            )
        ),
        "date_of_birth_match_then_count": list(
            patient.aggregate(
                [{"$match": {"date_of_birth": {"$lt": dt(1920, 1, 1)}}}, {"$count": "old"}]
            )
        ),
        "unwind_clinical_list": list(
            patient.aggregate(
                [
                    {"$unwind": "$tags"},
                    {"$group": {"_id": "$tags", "n": {"$sum": 1}}},
                    {"$sort": {"n": -1, "_id": 1}},
                ]
            )
        ),
        "count_stage": list(patient(weight_kg__gte=60).aggregate([{"$count": "heavy"}])),
        "queryset_window": list(
            patient.order_by("weight_kg", "admitted_at")
            .skip(1)
            .limit(2)
            .aggregate([{"$project": {"_id": 0, "weight_kg": 1, "blood_type": 1}}])
        ),
        "none": list(patient.none().aggregate([{"$match": {}}])),
    }


@requires("project_field_paths")
@scenario(clinic)
def test_aggregate_pipelines_reading_identity_fields(me: ModuleType, m: Clinic) -> dict[str, Any]:
    """Later stages that project, group or sort on identity fields, as apps write them."""
    seed_clinic(m)
    patient = m.Patient.objects
    return {
        "project_identity_fields": list(
            patient.order_by("admitted_at").aggregate(
                [{"$project": {"_id": 0, "first_name": 1, "city": "$address.city"}}]
            )
        ),
        "group_by_identity": list(
            patient.aggregate(
                [
                    {"$group": {"_id": "$address.city", "n": {"$sum": 1}}},
                    {"$sort": {"_id": -1}},
                ]
            )
        ),
        "sort_by_identity": [
            row["email"] for row in patient.aggregate([{"$sort": {"last_name": -1}}, {"$limit": 3}])
        ],
        "queryset_sorted_by_identity": [
            row["first_name"]
            for row in patient.order_by("first_name").skip(1).limit(2).aggregate([])
        ],
        "whole_documents": [
            sorted(row) for row in patient(first_name="Ada").aggregate([{"$match": {}}])
        ],
    }


@scenario(clinic)
def test_groups_on_identity_fields_are_merged_from_partial_groups(
    me: ModuleType, m: Clinic
) -> dict[str, Any]:
    """Grouped per pseudonym on the server, merged per identity value in the process."""
    seed_clinic(m)
    patient = m.Patient.objects
    return {
        "by_last_name": list(
            patient.aggregate(
                [{"$group": {"_id": "$last_name", "n": {"$sum": 1}}}, {"$sort": {"_id": -1}}]
            )
        ),
        "key_with_a_clinical_part": list(
            patient.aggregate(
                [
                    {"$match": {"weight_kg": {"$gte": 58}}},
                    {
                        "$group": {
                            "_id": {"city": "$address.city", "blood": "$blood_type"},
                            "kg": {"$sum": "$weight_kg"},
                        }
                    },
                    {"$sort": {"_id.city": 1}},
                ]
            )
        ),
        "stages_after_the_merge": list(
            patient.aggregate(
                [
                    {"$group": {"_id": "$email", "n": {"$sum": 1}}},
                    {"$match": {"n": {"$gte": 1}}},
                    {"$sort": {"_id": 1}},
                    {"$skip": 1},
                    {"$limit": 2},
                ]
            )
        ),
        "filtered_by_identity_after_a_sort": [
            row["last_name"]
            for row in patient.aggregate(
                [
                    {"$sort": {"weight_kg": -1, "admitted_at": 1}},
                    {"$match": {"email": {"$in": ["ada@example.org", "edsger@example.nl"]}}},
                ]
            )
        ],
    }


@requires("group_min_max", "group_arrays_and_order")
@scenario(clinic)
def test_identity_accumulators_are_merged_from_partial_groups(
    me: ModuleType, m: Clinic
) -> dict[str, Any]:
    seed_clinic(m)
    patient = m.Patient.objects
    extremes = patient.aggregate(
        [
            {
                "$group": {
                    "_id": "$blood_type",
                    "lowest": {"$min": "$last_name"},
                    "highest": {"$max": "$email"},
                    "names": {"$addToSet": "$first_name"},
                    "cities": {"$push": "$address.city"},
                }
            },
            {"$sort": {"_id": 1}},
        ]
    )
    ordered = patient.aggregate(
        [
            {"$sort": {"weight_kg": 1, "admitted_at": 1}},
            {
                "$group": {
                    "_id": "$blood_type",
                    "lightest": {"$first": "$first_name"},
                    "heaviest": {"$last": "$last_name"},
                    "kg": {"$first": "$weight_kg"},
                }
            },
            {"$sort": {"_id": 1}},
        ]
    )
    return {
        "extremes": [
            {**g, "names": sorted(g["names"]), "cities": sorted(g["cities"])} for g in extremes
        ],
        "first_and_last_after_a_sort": list(ordered),
    }


@requires("project_field_paths")
@scenario(clinic)
def test_copied_identity_fields_are_grouped_by_their_source(
    me: ModuleType, m: Clinic
) -> dict[str, Any]:
    seed_clinic(m)
    rows = m.Patient.objects.aggregate(
        [
            {"$project": {"name": "$last_name", "kg": "$weight_kg"}},
            {"$match": {"name": {"$ne": "Turing"}}},
            {"$group": {"_id": "$name", "kg": {"$sum": "$kg"}}},
            {"$sort": {"_id": 1}},
        ]
    )
    return {"rows": list(rows)}


@scenario(clinic)
@differs(5, UnsupportedQuery)
def test_computing_from_identity_fields_is_refused(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    rows = m.Patient.objects.order_by("admitted_at").aggregate(
        [{"$project": {"_id": 0, "x": {"$sum": ["$weight_kg", "$last_name"]}}}]
    )
    return {"rows": list(rows)}


@requires("lookup")
@scenario(clinic)
def test_aggregate_lookup_joins_a_split_collection(me: ModuleType, m: Clinic) -> dict[str, Any]:
    patients = seed_clinic(m)
    for i, patient in enumerate(patients[:3]):
        m.Visit(patient=patient, at=dt(2024, 2, 1 + i), reason=f"r{i}", cost=10 * i).save()
    rows = m.Visit.objects.order_by("at").aggregate(
        [
            {
                "$lookup": {
                    "from": m.Patient._get_collection_name(),
                    "localField": "patient",
                    "foreignField": "_id",
                    "as": "patient_doc",
                }
            },
            {"$unwind": "$patient_doc"},
            {"$project": {"_id": 0, "reason": 1, "name": "$patient_doc.last_name"}},
        ]
    )
    return {"rows": list(rows)}


@requires("javascript")
@scenario(clinic)
def test_item_frequencies(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    return {
        "tags": dict(sorted(m.Patient.objects.item_frequencies("tags").items())),
        "blood_normalized": dict(
            sorted(m.Patient.objects.item_frequencies("blood_type", normalize=True).items())
        ),
    }
