"""Filters moved ahead of the stages they commute with (``core/pushdown/hoist.py``).

A ``$match`` may run earlier only past stages that keep documents whole and write no field the
filter reads; moving it must not change what the pipeline returns, only where it runs.
"""

from __future__ import annotations

from typing import Any

import pytest

from privata_mongo.core.pushdown.hoist import filter_reads, hoist_filters, rename_filter, stage_name


def _hoisted(*stages: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(s) for _, s in hoist_filters(list(enumerate(stages)))]


def test_filter_reads_names_keys_expression_paths_and_whole_document_reads() -> None:
    reads = filter_reads(
        {"a": 1, "$or": [{"b.c": 2}, {"$expr": {"$gt": ["$d", "$e.f"]}}], "$comment": "x"}
    )
    assert reads.keys == {"a", "b.c"}
    assert reads.expr == {"d", "e.f"}
    assert not reads.whole
    assert filter_reads({"$where": "this.a"}).whole
    assert filter_reads({"$expr": {"$eq": ["$$ROOT", {}]}}).whole
    assert filter_reads({"$and": [{"$where": "1"}]}).whole
    assert not filter_reads({"$text": {"$search": "x"}}).whole


@pytest.mark.parametrize(
    "before",
    [
        {"$sort": {"n": 1}},
        {"$set": {"other": 1}},
        {"$addFields": {"other.x": 1}},
        {"$project": {"other": 0}},
        {"$unset": "other"},
        {"$unset": ["other", "more"]},
        {"$unwind": {"path": "$other", "includeArrayIndex": "i"}},
        {"$lookup": {"from": "c", "localField": "x", "foreignField": "y", "as": "other"}},
    ],
)
def test_a_match_moves_before_a_stage_that_writes_nothing_it_reads(before: dict[str, Any]) -> None:
    assert _hoisted(before, {"$match": {"a": 1}}) == [{"$match": {"a": 1}}, before]


@pytest.mark.parametrize(
    "before",
    [
        {"$set": {"a": 1}},
        {"$project": {"a": 1}},
        {"$unset": "a"},
        {"$unset": [5]},
        {"$unwind": "$a"},
        {"$unwind": 5},
        {"$lookup": {"from": "c", "localField": "x", "foreignField": "y", "as": "a.b"}},
        {"$group": {"_id": "$a"}},
        {"$limit": 1},
    ],
)
def test_a_match_stays_after_a_stage_it_does_not_commute_with(before: dict[str, Any]) -> None:
    assert _hoisted(before, {"$match": {"a": 1}}) == [before, {"$match": {"a": 1}}]


def test_a_whole_document_filter_and_a_text_search_stay_where_they_are() -> None:
    sort = {"$sort": {"n": 1}}
    assert _hoisted(sort, {"$match": {"$where": "1"}}) == [sort, {"$match": {"$where": "1"}}]
    text = {"$match": {"$text": {"$search": "x"}}}
    assert _hoisted(sort, text) == [sort, text]


def test_adjacent_matches_merge_into_one() -> None:
    assert _hoisted({"$match": {"a": 1}}, {"$match": {"b": 2}}) == [{"$match": {"a": 1, "b": 2}}]
    assert _hoisted({"$match": {"a": 1}}, {"$match": {"a": 2}}) == [
        {"$match": {"$and": [{"a": 1}, {"a": 2}]}}
    ]
    assert _hoisted({"$match": {}}, {"$match": {"b": 2}}) == [{"$match": {"b": 2}}]
    assert _hoisted({"$match": {"a": 1}}, {"$match": {}}) == [{"$match": {"a": 1}}]
    sort = {"$sort": {"n": 1}}
    assert _hoisted({"$match": {"a": 1}}, sort, {"$match": {"b": 2}}) == [
        {"$match": {"a": 1, "b": 2}},
        sort,
    ]


def test_renamed_copies_are_rewritten_to_the_fields_they_copy() -> None:
    renames = {"mail": "email"}
    assert rename_filter({"mail": 1, "$or": [{"mail.x": 2}, 5]}, renames) == {
        "email": 1,
        "$or": [{"email.x": 2}, 5],
    }
    assert rename_filter({"mail": 1, "email": 2}, renames) == {"$and": [{"email": 1}, {"email": 2}]}
    assert rename_filter({"$expr": {"$eq": ["$mail", 1]}}, renames) == {
        "$expr": {"$eq": ["$mail", 1]}
    }


def test_a_malformed_stage_has_no_name() -> None:
    assert stage_name({"$a": 1, "$b": 2}) == ""
    assert stage_name(5) == ""
    assert stage_name({"$match": {}}) == "$match"
