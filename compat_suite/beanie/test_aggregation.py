"""Aggregation: Beanie's sum/avg/min/max and pipelines over clinical fields, filtered by identity
fields, and pipelines whose later stages read identity fields (pushed down by the wrapper, the
identity part merged or joined in the process: docs/differences.md row 5)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from beanie.operators import In
from pydantic import BaseModel

from compat_suite.beanie.harness import scenario
from compat_suite.beanie.models import Clinic, clinic, dt, seed_clinic
from compat_suite.beanie.observe import docs
from compat_suite.requirements import requires


@scenario(clinic)
async def test_sum_over_clinical_fields(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    return {
        "sum": await p.find_all().sum(p.weight_kg),
        "sum_identity_filter": await p.find(In(p.first_name, ["Ada", "alan", "Grace"])).sum(
            p.weight_kg
        ),
        "sum_clinical_filter": await p.find(p.blood_type == "A+").sum("weight_kg"),
        "sum_dict_subfield": await p.find(p.email != "grace@example.com").sum("vitals.bp"),
        "sum_nothing": await p.find(p.first_name == "Nobody").sum(p.weight_kg),
    }


@requires("group_min_max")
@scenario(clinic)
async def test_min_max_over_clinical_fields(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    return {
        "max": await p.find_all().max(p.weight_kg),
        "min_identity_filter": await p.find(p.last_name != "Liskov").min(p.weight_kg),
        "max_date": await p.find(p.blood_type == "A+").max(p.admitted_at),
        "min_nothing": await p.find(p.email == "nobody@example.org").min(p.weight_kg),
    }


@requires("group_avg")
@scenario(clinic)
async def test_avg_over_clinical_fields(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    return {
        "avg": await p.find_all().avg(p.weight_kg),
        "avg_identity_filter": await p.find(In(p.last_name, ["Lovelace", "Liskov"])).avg(
            p.weight_kg
        ),
        "avg_nothing": await p.find(p.first_name == "Nobody").avg(p.weight_kg),
    }


class _Group(BaseModel):
    id: str | None = None
    n: int
    kg: int


@scenario(clinic)
async def test_pipelines_over_clinical_fields(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    """Identity fields appear only in the query's filter or a leading $match."""
    await seed_clinic(m)
    p = m.Patient
    by_blood = [
        {"$group": {"_id": "$blood_type", "n": {"$sum": 1}, "kg": {"$sum": "$weight_kg"}}},
        {"$sort": {"_id": 1}},
    ]
    return {
        "group_clinical": await p.aggregate(by_blood).to_list(),
        "identity_filter_then_group": await p.find(
            In(p.email, ["ada@example.org", "alan@example.org", "edsger@example.nl"])
        )
        .aggregate([{"$group": {"_id": None, "kg": {"$sum": "$weight_kg"}}}])
        .to_list(),
        "leading_identity_match": await p.aggregate(
            [
                {"$match": {"last_name": {"$in": ["Turing", "Hopper"]}}},
                {"$project": {"_id": 0, "weight_kg": 1}},
                {"$sort": {"weight_kg": 1}},
            ]
        ).to_list(),
        "date_of_birth_match_then_count": await p.aggregate(
            [{"$match": {"date_of_birth": {"$lt": dt(1920, 1, 1)}}}, {"$count": "old"}]
        ).to_list(),
        "unwind_clinical_list": await p.aggregate(
            [
                {"$unwind": "$tags"},
                {"$group": {"_id": "$tags", "n": {"$sum": 1}}},
                {"$sort": {"n": -1, "_id": 1}},
            ]
        ).to_list(),
        "count_stage": await p.find(p.weight_kg >= 60).aggregate([{"$count": "heavy"}]).to_list(),
        "query_window_after_stages": await p.find(p.blood_type != "B+")
        .sort(+p.weight_kg)
        .skip(1)
        .limit(2)
        .aggregate([{"$project": {"_id": 0, "weight_kg": 1, "blood_type": 1}}])
        .to_list(),
    }


@scenario(clinic)
async def test_pipelines_reading_identity_fields(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    """Later stages that group, sort, match or project on identity fields, as apps write them."""
    await seed_clinic(m)
    p = m.Patient
    return {
        "group_by_identity": await p.aggregate(
            [
                {"$group": {"_id": "$address.city", "n": {"$sum": 1}}},
                {"$sort": {"_id": -1}},
            ]
        ).to_list(),
        "sort_by_identity_then_limit": [
            row["email"]
            for row in await p.aggregate([{"$sort": {"last_name": -1}}, {"$limit": 3}]).to_list()
        ],
        "match_identity_after_clinical_stage": [
            row["first_name"]
            for row in await p.aggregate(
                [
                    {"$sort": {"weight_kg": -1, "admitted_at": 1}},
                    {"$match": {"first_name": {"$regex": "^[AE]"}}},
                ]
            ).to_list()
        ],
        "project_identity_fields": await p.aggregate(
            [
                {"$sort": {"admitted_at": 1}},
                {"$project": {"_id": 0, "first_name": 1, "email": 1, "weight_kg": 1}},
            ]
        ).to_list(),
        "projection_model_over_identity": docs(
            await p.aggregate(
                [{"$match": {"weight_kg": {"$gte": 60}}}, {"$sort": {"email": 1}}],
                projection_model=m.Summary,
            ).to_list()
        ),
    }


@scenario(clinic)
async def test_groups_on_identity_fields_are_merged_from_partial_groups(
    odm: ModuleType, m: Clinic
) -> dict[str, Any]:
    """Grouped per pseudonym on the server, merged per identity value in the process."""
    await seed_clinic(m)
    p = m.Patient
    return {
        "by_last_name_after_a_filter": await p.find(p.weight_kg > 50)
        .aggregate(
            [
                {"$group": {"_id": "$last_name", "kg": {"$sum": "$weight_kg"}}},
                {"$sort": {"_id": 1}},
                {"$limit": 3},
            ]
        )
        .to_list(),
        "key_with_a_clinical_part": await p.aggregate(
            [
                {
                    "$group": {
                        "_id": {"city": "$address.city", "b": "$blood_type"},
                        "n": {"$sum": 1},
                    }
                },
                {"$sort": {"_id.city": -1}},
            ]
        ).to_list(),
    }


@requires("project_field_paths")
@scenario(clinic)
async def test_pipelines_computing_from_identity_fields(
    odm: ModuleType, m: Clinic
) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    by_blood = [
        {"$group": {"_id": "$blood_type", "n": {"$sum": 1}, "kg": {"$sum": "$weight_kg"}}},
        {"$sort": {"_id": 1}},
    ]
    return {
        "group_into_projection_model": [
            g.model_dump()
            for g in await p.aggregate(
                [*by_blood, {"$project": {"id": "$_id", "n": 1, "kg": 1, "_id": 0}}],
                projection_model=_Group,
            ).to_list()
        ],
        "computed_identity_path": await p.aggregate(
            [
                {"$sort": {"admitted_at": 1}},
                {"$project": {"_id": 0, "name": "$first_name", "city": "$address.city"}},
            ]
        ).to_list(),
    }


@scenario(clinic)
async def test_query_sort_window_then_pipeline(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    """Beanie appends the query's sort, skip and limit after the given stages, its sort as
    ``{field: SortDirection}``: an ``int`` enum the server reads as a number."""
    await seed_clinic(m)
    p = m.Patient
    return {
        "sorted_by_identity": [
            row["first_name"]
            for row in await p.find(p.weight_kg > 50)
            .sort(+p.first_name)
            .skip(1)
            .limit(2)
            .aggregate([])
            .to_list()
        ],
        "clinical_stage_then_identity_sort": await p.find_all()
        .sort(-p.email)
        .aggregate([{"$project": {"_id": 0, "email": 1, "weight_kg": 1}}])
        .to_list(),
    }
