"""Planning pipelines over a split collection: what the server runs, what the process does."""

from __future__ import annotations

from typing import Any

import pytest

from privata_mongo.core.failures import OperationFailed
from privata_mongo.core.pushdown import (
    NOTHING,
    Exposure,
    Finish,
    GroupMerge,
    IdentitySort,
    MatchSlot,
    Materialize,
    PipelinePlan,
    plan_pipeline,
)
from privata_mongo.core.routing import ProbeRef
from privata_mongo.core.schema import PSEUDONYM_FIELD, ModelSchema
from privata_mongo.errors import UnsupportedQuery

PH = PSEUDONYM_FIELD


def slot(plan: PipelinePlan, index: int) -> MatchSlot:
    stage = plan.server[index]
    assert isinstance(stage, MatchSlot), stage
    return stage


def test_a_clinical_pipeline_runs_on_the_server_and_joins_what_comes_out(
    schema: ModelSchema,
) -> None:
    pipeline: list[dict[str, Any]] = [{"$match": {"age": 3}}, {"$sort": {"age": 1}}]
    plan = plan_pipeline(schema, pipeline)
    assert plan.server == ({"$match": {"age": 3}}, {"$sort": {"age": 1}})
    assert plan.boundary == Finish(Exposure())
    assert plan.identity_fields == frozenset()


def test_after_a_clinical_group_nothing_is_joined(schema: ModelSchema) -> None:
    pipeline = [{"$group": {"_id": "$age", "n": {"$sum": 1}}}, {"$match": {"email": 1}}]
    plan = plan_pipeline(schema, pipeline)
    assert plan.server == tuple(pipeline)
    assert plan.boundary == Finish(NOTHING)


def test_identity_conditions_become_probes_in_place(schema: ModelSchema) -> None:
    plan = plan_pipeline(schema, [{"$limit": 5}, {"$match": {"first_name": "Ada", "age": 3}}])
    assert plan.server[0] == {"$limit": 5}
    (probe,) = slot(plan, 1).plan.probes
    assert probe.server == {"first_name": "Ada"}
    assert slot(plan, 1).plan.template == {"age": 3, PH: ProbeRef(0)}
    assert plan.identity_fields == {"first_name"}


def test_a_match_moves_ahead_of_a_sort_and_joins_the_filters_before_it(
    schema: ModelSchema,
) -> None:
    pipeline: list[dict[str, Any]] = [
        {"$match": {"age": 3}},
        {"$sort": {"visits": -1}},
        {"$set": {"score": 1}},
        {"$match": {"first_name": {"$regex": "^A"}}},
    ]
    plan = plan_pipeline(schema, pipeline)
    match = slot(plan, 0).plan
    (probe,) = match.probes
    assert probe.narrowing == {"age": 3}  # the clinical condition bounds the process probe
    assert plan.server[1:] == ({"$sort": {"visits": -1}}, {"$set": {"score": 1}})


def test_a_match_crosses_no_limit_and_no_stage_writing_what_it_reads(
    schema: ModelSchema,
) -> None:
    pipeline: list[dict[str, Any]] = [
        {"$set": {"age": 1}},
        {"$match": {"age": 1, "first_name": {"$regex": "^A"}}},
        {"$skip": 1},
        {"$match": {"email": "a@x"}},
    ]
    plan = plan_pipeline(schema, pipeline)
    assert plan.server[0] == {"$set": {"age": 1}}
    (regex,) = slot(plan, 1).plan.probes
    assert regex.narrowing is None  # {age: 1} holds after the $set, not in the collection
    assert plan.server[2] == {"$skip": 1}
    assert slot(plan, 3).plan.probes[0].server == {"email": "a@x"}


def test_a_sort_on_identity_fields_after_filters_is_an_ordered_id_read(
    schema: ModelSchema,
) -> None:
    pipeline = [
        {"$sort": {"first_name": -1, "age": 1}},
        {"$match": {"age": {"$gt": 1}}},
        {"$limit": 5},
        {"$skip": 2},
        {"$project": {"email": 1}},
    ]
    plan = plan_pipeline(schema, pipeline)
    assert plan.server == ({"$match": {"age": {"$gt": 1}}},)
    assert plan.boundary == IdentitySort((("first_name", -1), ("age", 1)), skip=2, limit=3)
    assert plan.tail == ({"$project": {"email": 1}},)


def test_a_sort_on_identity_fields_after_other_stages_runs_in_the_process(
    schema: ModelSchema,
) -> None:
    pipeline = [{"$project": {"_id": 0, "email": 1, "age": 1}}, {"$sort": {"email": -1}}]
    plan = plan_pipeline(schema, pipeline)
    assert plan.server == ({"$project": {"_id": 0, "age": 1, PH: 1}},)
    assert plan.boundary == Materialize(Exposure(frozenset({"email"})))
    assert plan.tail == ({"$sort": {"email": -1}},)


def test_a_sort_on_identity_fields_after_an_identity_field_is_removed_runs_in_the_process(
    schema: ModelSchema,
) -> None:
    plan = plan_pipeline(schema, [{"$unset": "email"}, {"$sort": {"first_name": 1}}])
    assert plan.server == ()
    assert isinstance(plan.boundary, Materialize)
    assert not plan.boundary.exposure.exposed("email")


def test_first_and_last_need_an_order_that_still_holds(schema: ModelSchema) -> None:
    group = {"$group": {"_id": "$email", "x": {"$first": "$age"}}}
    for between in (
        {"$sample": {"size": 3}},
        {"$set": {"visits": 0}},
        {"$project": {"age": 1, "email": 1}},
    ):
        with pytest.raises(UnsupportedQuery, match="no defined order"):
            plan_pipeline(schema, [{"$sort": {"visits": 1}}, between, group])
    plan = plan_pipeline(schema, [{"$sort": {"visits": 1}}, {"$limit": 3}, group])
    assert isinstance(plan.boundary, GroupMerge)


def test_projections_keep_identity_fields_as_the_pseudonym(schema: ModelSchema) -> None:
    pipeline = [{"$project": {"_id": 0, "first_name": 1, "city": "$address.city", "age": 1}}]
    plan = plan_pipeline(schema, pipeline)
    assert plan.server == ({"$project": {"_id": 0, "age": 1, PH: 1}},)
    assert plan.boundary == Finish(
        Exposure(frozenset({"first_name"}), renames=(("city", "address.city"),))
    )


def test_a_copied_identity_field_is_filtered_and_grouped_by_its_source(
    schema: ModelSchema,
) -> None:
    pipeline = [
        {"$set": {"name": "$first_name"}},
        {"$match": {"name": "Ada"}},
        {"$group": {"_id": "$name", "n": {"$sum": 1}}},
    ]
    plan = plan_pipeline(schema, pipeline)
    assert slot(plan, 0).plan.probes[0].server == {"first_name": "Ada"}
    assert isinstance(plan.boundary, GroupMerge)
    assert plan.boundary.split.identity_fields == {"first_name"}


def test_removed_or_replaced_identity_fields_are_no_longer_joined(schema: ModelSchema) -> None:
    pipeline = [{"$set": {"first_name": "x"}}, {"$unset": "email"}, {"$project": {"address": 0}}]
    plan = plan_pipeline(schema, pipeline)
    assert plan.server == ({"$set": {"first_name": "x"}},)
    assert isinstance(plan.boundary, Finish)
    exposure = plan.boundary.exposure
    assert not any(exposure.exposed(f) for f in ("first_name", "email", "address"))


def test_reading_a_replaced_identity_field_is_done_in_the_process(schema: ModelSchema) -> None:
    pipeline = [{"$set": {"first_name": "x"}}, {"$match": {"first_name": "x"}}]
    plan = plan_pipeline(schema, pipeline)
    assert isinstance(plan.boundary, Materialize)
    assert plan.tail == ({"$match": {"first_name": "x"}},)


def test_a_match_crosses_stages_that_only_add_or_drop_other_fields(schema: ModelSchema) -> None:
    lookup = {"$lookup": {"from": "other", "localField": "x", "foreignField": "_id", "as": "o"}}
    pipeline = [lookup, {"$unwind": "$o"}, {"$project": {"o": 0}}, {"$match": {"email": "a@x"}}]
    plan = plan_pipeline(schema, pipeline, frozenset({"other"}))
    assert slot(plan, 0).plan.probes[0].server == {"email": "a@x"}
    assert isinstance(plan.boundary, Materialize)
    assert plan.tail == tuple(pipeline[:3])


def test_an_expression_over_identity_fields_in_a_match_runs_in_the_process(
    schema: ModelSchema,
) -> None:
    match = {"$match": {"age": 3, "$expr": {"$eq": ["$email", "$first_name"]}}}
    plan = plan_pipeline(schema, [{"$limit": 9}, match])
    assert plan.server == ({"$limit": 9},)
    assert isinstance(plan.boundary, Materialize)
    assert plan.tail == (match,)
    assert plan.identity_fields == {"email", "first_name"}


@pytest.mark.parametrize(
    "stage",
    [
        {"$unwind": "$address"},
        {"$project": {"full": {"$cond": [True, "$first_name", None]}}},
        {"$replaceWith": "$address"},
        {"$lookup": {"from": "c", "localField": "email", "foreignField": "e", "as": "c"}},
    ],
)
def test_stages_computing_from_identity_values_run_in_the_process(
    schema: ModelSchema, stage: dict[str, Any]
) -> None:
    plan = plan_pipeline(schema, [{"$sort": {"age": 1}}, stage, {"$limit": 2}])
    assert plan.server == ({"$sort": {"age": 1}},)
    assert isinstance(plan.boundary, Materialize)
    assert plan.tail == (stage, {"$limit": 2})


def test_a_lookup_into_a_split_collection_runs_in_the_process(schema: ModelSchema) -> None:
    lookup = {"$lookup": {"from": "other", "localField": "x", "foreignField": "_id", "as": "o"}}
    plan = plan_pipeline(schema, [{"$match": {"age": 1}}, lookup], frozenset({"other"}))
    assert isinstance(plan.boundary, Materialize)
    assert plan.tail == (lookup,)


def test_a_group_on_identity_fields_asks_the_server_for_partial_groups(
    schema: ModelSchema,
) -> None:
    group = {
        "_id": {"name": "$first_name", "age": "$age"},
        "n": {"$sum": 1},
        "visits": {"$sum": "$visits"},
        "mean": {"$avg": "$visits"},
        "emails": {"$push": "$email"},
    }
    plan = plan_pipeline(schema, [{"$match": {"age": 3}}, {"$group": group}, {"$sort": {"n": 1}}])
    assert isinstance(plan.boundary, GroupMerge)
    partial = plan.server[-1]
    assert partial == {
        "$group": {
            "_id": {PH: f"${PH}", "k0": "$age"},
            "p0": {"$sum": 1},
            "p1": {"$sum": "$visits"},
            "p2": {"$sum": {"$cond": [{"$isNumber": "$visits"}, 1, 0]}},
        }
    }
    assert plan.tail == ({"$sort": {"n": 1}},)
    assert plan.boundary.split.projection == {"email": 1, "first_name": 1}


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ({"_id": {"$toUpper": "$first_name"}}, "computes its _id from identity fields"),
        ({"_id": "$first_name", "x": {"$first": "$age"}}, "in no defined order"),
        ({"_id": "$first_name", "x": {"$stdDevPop": "$age"}}, "cannot be merged"),
        ({"_id": None, "x": {"$sum": {"$strLenCP": "$email"}}}, "only a field path"),
        ({"_id": "$age", "x": {"$push": "$$ROOT"}}, "only a field path"),
    ],
)
def test_a_group_that_cannot_be_merged_is_refused_with_its_remedy(
    schema: ModelSchema, group: dict[str, Any], message: str
) -> None:
    with pytest.raises(UnsupportedQuery, match=message) as caught:
        plan_pipeline(schema, [{"$match": {"age": 1}}, {"$group": group}])
    assert "pipeline stage 2 ($group)" in str(caught.value)


def test_first_and_last_merge_after_a_clinical_sort(schema: ModelSchema) -> None:
    group = {"_id": "$email", "x": {"$first": "$age"}, "y": {"$last": "$first_name"}}
    plan = plan_pipeline(schema, [{"$sort": {"visits": -1}}, {"$group": group}])
    assert isinstance(plan.boundary, GroupMerge)
    spec = plan.server[-1]["$group"]  # type: ignore[index]
    assert spec["p0"] == {"$first": "$visits"}
    assert spec["p1"] == {"$first": "$age"}
    assert spec["p2"] == {"$last": "$visits"}


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        ([{"$bucketAuto": {"groupBy": "$first_name", "buckets": 2}}], r"cannot run \$bucketAuto"),
        ([{"$facet": {"a": [{"$match": {"email": 1}}]}}], r"cannot run \$facet"),
        (
            [{"$graphLookup": {"from": "other", "startWith": "$x", "as": "g"}}],
            r"\$graphLookup into a split collection",
        ),
        ([{"$unwind": "$address"}, {"$bucket": {"groupBy": "$age"}}], r"cannot run \$bucket"),
        ([{"$set": {"name": "$first_name"}}, {"$out": "copy"}], r"\$out"),
    ],
)
def test_what_cannot_be_pushed_down_is_refused_naming_the_stage(
    schema: ModelSchema, pipeline: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(UnsupportedQuery, match=message):
        plan_pipeline(schema, pipeline, frozenset({"other"}))


def test_a_group_key_is_parsed_as_the_server_parses_it(schema: ModelSchema) -> None:
    with pytest.raises(OperationFailed) as caught:
        plan_pipeline(schema, [{"$group": {"_id": {"a.b": "$email"}}}])
    assert caught.value.code == 16412
