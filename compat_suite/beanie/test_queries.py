"""Beanie queries: expressions and operators on identity and clinical fields, sorting, paging,
projections, counting and distinct values.

Filter scenarios observe ``sorted`` names, so that a difference in natural order (observed on
its own in ``test_natural_order_without_sort``) does not hide which documents matched.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from beanie.operators import (
    GT,
    GTE,
    LT,
    LTE,
    NE,
    All,
    And,
    ElemMatch,
    Eq,
    Exists,
    In,
    Nor,
    Not,
    NotIn,
    Or,
    RegEx,
    Size,
    Type,
)

from compat_suite.beanie.harness import scenario
from compat_suite.beanie.models import Clinic, clinic, dt, seed_clinic
from compat_suite.beanie.observe import doc, docs, names
from compat_suite.requirements import requires


async def _matches(model: Any, filters: dict[str, tuple[Any, ...]]) -> dict[str, list[str]]:
    """Sorted first names for each named filter (a tuple of Beanie find arguments).

    Errors are not caught: a filter a backend cannot run must fail the scenario (and so meet its
    declared gap), not turn into an equal pair of exception names.
    """
    return {
        label: sorted(names(await model.find(*args).to_list())) for label, args in filters.items()
    }


@scenario(clinic)
async def test_expressions_on_identity_fields(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    return await _matches(
        p,
        {
            "eq": (p.first_name == "Ada",),
            "eq_is_case_sensitive": (p.first_name == "ada",),
            "eq_operator": (Eq(p.last_name, "Hopper"),),
            "ne": (p.first_name != "Ada",),
            "ne_operator": (NE(p.email, "ada@example.org"),),
            "in": (In(p.email, ["ada@example.org", "grace@example.com", "no@example.org"]),),
            "not_in": (NotIn(p.last_name, ["Lovelace", "Turing"]),),
            "phone_is_none": (p.phone == None,),  # noqa: E711  (Beanie builds {"phone": None})
            "phone_exists": (Exists(p.phone, True),),
            "insurance_pii_marker": (In(p.insurance_number, ["INS-001", "INS-005"]),),
            "aliases_pii_marker": (p.aliases == "Amazing Grace",),
            "aliases_size": (Size(p.aliases, 0),),
            "embedded_identity": (p.address.city == "London",),
            "embedded_identity_ne": (p.address.city != "London",),
            "embedded_identity_in": (In(p.address.postcode, ["P1", "P3"]),),
            "two_arguments_and": (In(p.first_name, ["Ada", "alan"]), p.last_name == "Lovelace"),
            "dict_filter": ({"last_name": {"$in": ["Turing", "Liskov"]}},),
            "dict_dotted_identity": ({"address.city": {"$ne": "London"}},),
            "id_and_identity": (p.id != None, p.first_name != "Ada"),  # noqa: E711
            "no_match": (p.first_name == "Nobody",),
            "type_string": (Type(p.phone, "string"),),
        },
    )


@scenario(clinic)
async def test_regex_on_identity_fields(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    """``RegEx`` sends a $regex string (no compiled pattern, so no ``u`` flag)."""
    await seed_clinic(m)
    p = m.Patient
    return await _matches(
        p,
        {
            "prefix": (RegEx(p.first_name, "^Ba"),),
            "case_insensitive": (RegEx(p.first_name, "^A", "i"),),
            "suffix": (RegEx(p.email, r"\.org$"),),
            "contains": (RegEx(p.last_name, "ra"),),
            "embedded": (RegEx(p.address.city, "^l", options="i"),),
            "identity_list": (RegEx(p.aliases, "grace", options="i"),),
            "with_clinical": (RegEx(p.first_name, "^a", "i"), p.weight_kg >= 61),
            "not_regex": (Not(RegEx(p.last_name, "^[LT]")),),
            "dict_regex": ({"email": {"$regex": r"example\.com$"}},),
        },
    )


@scenario(clinic)
async def test_comparisons_on_date_of_birth_and_numbers(
    odm: ModuleType, m: Clinic
) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    return await _matches(
        p,
        {
            "born_before_1910": (p.date_of_birth < dt(1910, 1, 1),),
            "born_on_or_before_grace": (LTE(p.date_of_birth, dt(1906, 12, 9)),),
            "born_after_1930": (GT(p.date_of_birth, dt(1930, 5, 11)),),
            "born_1930_or_later": (p.date_of_birth >= dt(1930, 5, 11),),
            "born_between": (p.date_of_birth >= dt(1900, 1, 1), p.date_of_birth < dt(1935, 1, 1)),
            "born_exactly": (p.date_of_birth == dt(1912, 6, 23),),
            "born_in": (In(p.date_of_birth, [dt(1815, 12, 10), dt(1939, 11, 7)]),),
            "last_name_range": (GTE(p.last_name, "H"), LT(p.last_name, "M")),
            "weight_gt": (p.weight_kg > 60,),
            "weight_lte": (p.weight_kg <= 58,),
            "weight_and_dob": (p.weight_kg == 70, p.date_of_birth < dt(1920, 1, 1)),
            "admitted_after": (p.admitted_at > dt(2024, 1, 3),),
            "dict_subfield": (p.vitals["bp"] >= 122,),
        },
    )


@scenario(clinic)
async def test_logical_operators_mixing_identity_and_clinical(
    odm: ModuleType, m: Clinic
) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    return await _matches(
        p,
        {
            "or_identity_clinical": (Or(p.first_name == "Ada", p.weight_kg == 70),),
            "and_identity_clinical": (
                And(In(p.last_name, ["Lovelace", "Liskov"]), p.blood_type == "A+"),
            ),
            "nested": (
                Or(
                    And(In(p.last_name, ["Lovelace", "Liskov"]), p.blood_type == "A+"),
                    p.tags == "neuro",
                ),
            ),
            "or_of_ands": (
                Or(
                    And(
                        In(p.email, ["grace@example.com", "barbara@example.com"]), p.weight_kg < 57
                    ),
                    And(p.first_name == "alan", Size(p.scores, 2)),
                ),
            ),
            "and_of_ors": (
                And(
                    Or(p.first_name == "Ada", p.first_name == "Grace"),
                    Or(p.blood_type == "A+", p.weight_kg > 100),
                ),
            ),
            "nor": (Nor(p.first_name == "Ada", p.tags == "vip"),),
            "dob_or_empty_tags": (Or(p.date_of_birth > dt(1935, 1, 1), Size(p.tags, 0)),),
            "or_plus_argument": (
                Or(p.weight_kg == 70, p.blood_type == "AB-"),
                p.first_name != "alan",
            ),
            "find_then_find": (p.tags == "cardio",),
        },
    ) | {
        "chained_find": sorted(
            names(await p.find(p.tags == "cardio").find(p.last_name != "Hopper").to_list())
        )
    }


@scenario(clinic)
async def test_array_operators_on_clinical_fields(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    return await _matches(
        p,
        {
            "contains": (p.tags == "vip",),
            "in": (In(p.tags, ["neuro", "ortho"]),),
            "not_in": (NotIn(p.tags, ["vip"]),),
            "all": (All(p.tags, ["vip", "cardio"]),),
            "size_0": (Size(p.tags, 0),),
            "size_2_and_identity": (Size(p.tags, 2), p.first_name != "Ada"),
            "element_gt": (p.scores > 7,),
            "elem_match_scalars": (ElemMatch(p.scores, {"$gt": 3, "$lt": 5}),),
            "embedded_list_field": ({"medications.name": "aspirin"},),
            "embedded_list_gt": ({"medications.dose_mg": {"$gt": 250}},),
            "link_by_id": ({"doctor.$id": {"$exists": True}},),
        },
    )


@requires("elem_match_documents")
@scenario(clinic)
async def test_elem_match_on_embedded_lists(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    return await _matches(
        p,
        {
            "two_conditions": (
                ElemMatch(p.medications, {"name": "aspirin", "dose_mg": {"$gte": 400}}),
            ),
            "one_condition": (ElemMatch(p.medications, {"dose_mg": {"$lt": 300}}),),
            "and_identity": (
                ElemMatch(p.medications, {"name": "aspirin"}),
                In(p.first_name, ["alan", "Ada"]),
            ),
        },
    )


@scenario(clinic)
async def test_natural_order_without_sort(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    return {
        "all": names(await p.find_all().to_list()),
        "identity_filter": names(
            await p.find(In(p.first_name, ["Barbara", "Ada", "alan"])).to_list()
        ),
        "clinical_filter": names(await p.find(p.weight_kg >= 58).to_list()),
        "mixed_filter": names(await p.find(p.last_name != "Hopper", Size(p.tags, 1)).to_list()),
        "async_for": [x.email async for x in p.find(p.blood_type != "B+")],
    }


@scenario(clinic)
async def test_sort_skip_limit(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    orderings: dict[str, tuple[Any, ...]] = {
        "first_name_binary_order": (+p.first_name,),
        "last_name_desc": (-p.last_name,),
        "email_string": ("email",),
        "date_of_birth_string_desc": ("-date_of_birth",),
        "embedded_identity": ("address.city",),
        "missing_phone_first": (+p.phone,),
        "missing_phone_last": (-p.phone,),
        "weight_desc_then_name": (-p.weight_kg, +p.first_name),
        "blood_then_last_name_desc": ("+blood_type", "-last_name"),
        "tuples": ([("last_name", odm.SortDirection.DESCENDING)],),
        "dict_subfield": ("-vitals.hr",),
    }
    observed: dict[str, Any] = {
        label: names(await p.find_all().sort(*keys).to_list()) for label, keys in orderings.items()
    }
    observed["skip_limit_identity_sort"] = names(
        await p.find_all().sort(+p.last_name).skip(1).limit(2).to_list()
    )
    observed["skip_limit_clinical_sort"] = names(
        await p.find(p.weight_kg > 50).sort(-p.weight_kg, -p.email).skip(2).limit(2).to_list()
    )
    observed["find_many_arguments"] = names(
        await p.find_many(p.blood_type != "O-", sort="-first_name", skip=1, limit=2).to_list()
    )
    observed["to_list_length"] = names(await p.find_all().sort(+p.date_of_birth).to_list(3))
    observed["limit_zero_is_no_limit"] = len(await p.find_all().limit(0).to_list())
    observed["filtered_sorted_by_identity"] = names(
        await p.find(p.blood_type == "A+").sort("-first_name").to_list()
    )
    return observed


@scenario(clinic)
async def test_projection_models(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    return {
        "project": docs(
            await p.find(p.weight_kg >= 58).sort(+p.first_name).project(m.Summary).to_list()
        ),
        "find_with_projection_model": docs(
            await p.find(p.last_name == "Turing", projection_model=m.Summary).to_list()
        ),
        "find_one_projected": doc(
            await p.find_one(p.email == "grace@example.com", projection_model=m.Summary)
        ),
        "sorted_by_identity_projected": docs(
            await p.find_all().sort(-p.email).limit(2).project(m.Summary).to_list()
        ),
    }


@scenario(clinic)
async def test_count_exists_and_distinct(odm: ModuleType, m: Clinic) -> dict[str, Any]:
    await seed_clinic(m)
    p = m.Patient
    return {
        "count": await p.count(),
        "count_identity": await p.find(In(p.first_name, ["Ada", "alan", "Nobody"])).count(),
        "count_clinical": await p.find(p.blood_type == "A+").count(),
        "count_mixed": await p.find(p.blood_type == "A+", p.last_name != "Hopper").count(),
        "count_with_limit": await p.find_all().limit(2).count(),
        "count_one": await p.find_one(p.email == "ada@example.org").count(),
        "exists": await p.find(p.email == "grace@example.com").exists(),
        "not_exists": await p.find(p.email == "nobody@example.com").exists(),
        "distinct_identity": sorted(await p.distinct("last_name")),
        "distinct_embedded_identity": sorted(await p.distinct("address.city")),
        "distinct_identity_list": sorted(await p.distinct("aliases")),
        "distinct_clinical": sorted(await p.distinct("blood_type")),
        "distinct_clinical_filtered_by_identity": sorted(
            await p.distinct("blood_type", {"last_name": {"$in": ["Lovelace", "Turing"]}})
        ),
        "distinct_on_query": sorted(await p.find(p.weight_kg == 70).distinct("email")),
        "distinct_dates": sorted(await p.find(p.weight_kg < 60).distinct("date_of_birth")),
    }
