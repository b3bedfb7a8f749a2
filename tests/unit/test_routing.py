from __future__ import annotations

import re

import pytest

from privata_mongo.core.projection import plan_projection
from privata_mongo.core.routing import (
    ProbeRef,
    needs_process_sort,
    plan_filter,
    references_identity,
    split_update,
    substitute,
)
from privata_mongo.core.schema import PSEUDONYM_FIELD, ModelSchema
from privata_mongo.errors import UnsupportedQuery

PH = PSEUDONYM_FIELD


def test_clinical_filter_is_untouched(schema: ModelSchema) -> None:
    plan = plan_filter(schema, {"age": {"$gt": 3}, "$or": [{"visits": 1}, {"_id": 2}]})
    assert plan.probes == ()
    assert plan.template == {"age": {"$gt": 3}, "$or": [{"visits": 1}, {"_id": 2}]}


def test_identity_equalities_become_one_server_probe(schema: ModelSchema) -> None:
    plan = plan_filter(schema, {"first_name": "Ada", "email": {"$in": ["a@x"]}, "age": 3})
    (probe,) = plan.probes
    assert probe.server == {"first_name": "Ada", "email": {"$in": ["a@x"]}}
    assert probe.process is None
    assert plan.template == {"age": 3, PH: ProbeRef(0)}
    assert plan.identity_fields == frozenset({"first_name", "email"})


def test_regex_and_ranges_are_evaluated_in_process_narrowed_by_clinical(
    schema: ModelSchema,
) -> None:
    plan = plan_filter(schema, {"first_name": re.compile("^A"), "email": "a@x", "age": 3})
    (probe,) = plan.probes
    assert probe.server == {"email": "a@x"}
    assert probe.process == {"first_name": re.compile("^A")}
    assert probe.narrowing == {"age": 3}


def test_negations_use_the_positive_probe(schema: ModelSchema) -> None:
    plan = plan_filter(schema, {"email": {"$ne": "a@x"}, "first_name": {"$nin": ["A", "B"]}})
    assert [p.server for p in plan.probes] == [
        {"email": "a@x"},
        {"first_name": {"$in": ["A", "B"]}},
    ]
    assert plan.template == {"$and": [{PH: ProbeRef(0, True)}, {PH: ProbeRef(1, True)}]}
    resolved = substitute(plan.template, [["p1"], ["p2", "p3"]])
    assert resolved == {"$and": [{PH: {"$nin": ["p1"]}}, {PH: {"$nin": ["p2", "p3"]}}]}


def test_or_mixing_sides_groups_identity_children(schema: ModelSchema) -> None:
    plan = plan_filter(schema, {"$or": [{"age": 3}, {"email": "a"}, {"first_name": "b"}]})
    (probe,) = plan.probes
    assert probe.filter == {"$or": [{"email": "a"}, {"first_name": "b"}]}
    assert probe.server == {"$or": [{"email": "a"}, {"first_name": "b"}]}
    assert plan.template == {"$or": [{"age": 3}, {PH: ProbeRef(0)}]}


def test_nor_keeps_its_meaning_when_grouping(schema: ModelSchema) -> None:
    plan = plan_filter(schema, {"$nor": [{"email": "a"}, {"first_name": "b"}, {"age": 1}]})
    assert plan.probes[0].filter == {"$or": [{"email": "a"}, {"first_name": "b"}]}
    assert plan.template == {"$nor": [{"age": 1}, {PH: ProbeRef(0)}]}


def test_mixed_child_document_is_planned_recursively(schema: ModelSchema) -> None:
    plan = plan_filter(schema, {"$or": [{"email": "a", "age": 2}, {"visits": 1}]})
    assert plan.template == {"$or": [{"visits": 1}, {"age": 2, PH: ProbeRef(0)}]}


def test_identity_only_or_is_one_probe(schema: ModelSchema) -> None:
    plan = plan_filter(schema, {"$or": [{"email": "a"}, {"first_name": re.compile("x")}]})
    (probe,) = plan.probes
    assert probe.server == {}
    assert probe.process == {"$or": [{"email": "a"}, {"first_name": re.compile("x")}]}


def test_dotted_identity_paths_are_evaluated_in_process(schema: ModelSchema) -> None:
    (probe,) = plan_filter(schema, {"address.city": "Oslo"}).probes
    assert probe.process == {"address.city": "Oslo"}
    assert probe.fields == frozenset({"address"})


def test_multi_operator_condition_splits_into_conjuncts(schema: ModelSchema) -> None:
    (probe,) = plan_filter(schema, {"email": {"$exists": True, "$gt": "a"}}).probes
    assert probe.server == {"email": {"$exists": True}}
    assert probe.process == {"email": {"$gt": "a"}}


def test_where_and_identity_expr_are_refused_naming_the_remedy(schema: ModelSchema) -> None:
    with pytest.raises(UnsupportedQuery, match=r"\$where"):
        plan_filter(schema, {"$where": "this.email == 'x'"})
    with pytest.raises(UnsupportedQuery, match="identity fields"):
        plan_filter(schema, {"$expr": {"$eq": ["$email", "x"]}})
    assert plan_filter(schema, {"$expr": {"$gt": ["$age", 3]}}).probes == ()


def test_pass_through_schema_plans_nothing() -> None:
    from tests.unit.builders import make_schema

    native = make_schema(identity=())
    assert plan_filter(native, {"email": "x"}).template == {"email": "x"}


def test_sort_and_references(schema: ModelSchema) -> None:
    assert needs_process_sort(schema, [("age", 1), ("email", -1)])
    assert not needs_process_sort(schema, [("age", 1)])
    assert references_identity(schema, [{"$group": {"_id": "$address.city"}}])
    assert not references_identity(schema, [{"$group": {"_id": "$age", "n": {"$sum": "$$ROOT.x"}}}])


def test_split_update_by_side(schema: ModelSchema) -> None:
    identity, clinical = split_update(
        schema, {"$set": {"email": "x", "age": 3}, "$inc": {"visits": 1}}
    )
    assert identity == {"$set": {"email": "x"}}
    assert clinical == {"$set": {"age": 3}, "$inc": {"visits": 1}}
    with pytest.raises(UnsupportedQuery, match="rename"):
        split_update(schema, {"$rename": {"email": "age"}})


def test_projection_inclusion_fetches_identity_only_when_asked(schema: ModelSchema) -> None:
    plan = plan_projection(schema, {"age": 1})
    # the link is read anyway: the audit trail names the subject of every document returned
    assert (plan.clinical, plan.fetch_identity) == ({"age": 1, PH: 1}, False)
    plan = plan_projection(schema, {"email": 1, "_id": 0})
    assert plan.clinical == {PH: 1}
    assert plan.identity == {"email": 1}
    assert plan.hide_id
    assert plan.fetch_identity


def test_projection_exclusion_of_all_identity_skips_the_identity_read(schema: ModelSchema) -> None:
    plan = plan_projection(schema, {"email": 0, "first_name": 0, "address": 0})
    assert not plan.fetch_identity
    plan = plan_projection(schema, ["age", "email"])
    assert plan.identity == {"email": 1}
    assert plan_projection(schema, {"visits": {"$slice": 2}}).fetch_identity


@pytest.mark.parametrize(
    ("operand", "meaning"),
    [
        ("ada@example.org", True),
        ("", True),
        ({"a": 1}, True),
        ([], True),
        (1, True),
        (float("nan"), True),
        (0, False),
        (0.0, False),
        (None, False),
        (False, False),
    ],
)
def test_an_exists_operand_is_sent_as_the_boolean_the_server_reads(
    schema: ModelSchema, operand: object, meaning: bool
) -> None:
    for filter in (
        {"email": {"$exists": operand}},
        {"$or": [{"email": {"$exists": operand}}, {"first_name": "Ada"}]},
        {"email": {"$exists": operand, "$in": ["a@x"]}},
    ):
        (probe,) = plan_filter(schema, filter).probes
        assert probe.process is None
        sent = repr(probe.server)
        assert f"'$exists': {meaning}" in sent
        assert "example.org" not in sent
