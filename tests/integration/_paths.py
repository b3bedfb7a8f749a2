"""What each read path returns, for the tests of who is visible under an access context.

A model with ``first_name`` (the name a test knows a subject by), ``email`` (identity) and
``ward`` (clinical, one distinct value per subject) is read through every path an application
has: the ODM's queries, counts, pages, ``distinct`` on a clinical and an identity field,
aggregation, and the raw collection of the proxy. ``check`` asserts that every path returns
exactly the subjects expected and that counts, pages and ``distinct`` agree with them.
"""

from __future__ import annotations

from typing import Any

PAGES = 4
"""Pages of one document read by skip/limit: at least as many as the subjects of a test."""


def names(documents: Any) -> set[str]:
    """The first names of ``documents`` (ODM documents or raw dictionaries)."""
    return {d["first_name"] if isinstance(d, dict) else d.first_name for d in documents}


def mongoengine_paths(model: Any, raw: Any) -> dict[str, Any]:
    """Every read path of a mongoengine ``model`` and its proxy collection ``raw``."""
    pages = [names(model.objects.order_by("ward").skip(i).limit(1)) for i in range(PAGES)]
    counted = list(model.objects.aggregate([{"$count": "n"}]))
    return {
        "query": names(model.objects.order_by("ward")),
        "count": model.objects.count(),
        "pages": set().union(*pages),
        "page_sizes": sum(len(p) for p in pages),
        "identity_query": names(model.objects(email__endswith="example.org")),
        "distinct_clinical": len(model.objects.distinct("ward")),
        "distinct_identity": {e.split("@")[0] for e in model.objects.distinct("email")},
        "aggregate_count": counted[0]["n"] if counted else 0,
        "aggregate": names(model.objects.aggregate([{"$project": {"first_name": 1}}])),
        "raw_find": names(raw.find({})),
        "raw_count": raw.count_documents({}),
        "raw_estimated": raw.estimated_document_count(),
    }


async def beanie_paths(model: Any, raw: Any) -> dict[str, Any]:
    """Every read path of a Beanie ``model`` and its async proxy collection ``raw``."""
    pages = [await model.find_all().sort("ward").skip(i).limit(1).to_list() for i in range(PAGES)]
    counted = await model.aggregate([{"$count": "n"}]).to_list()
    emails = await model.distinct("email")
    return {
        "query": names(await model.find_all().to_list()),
        "count": await model.find_all().count(),
        "pages": names(p for page in pages for p in page),
        "page_sizes": sum(len(p) for p in pages),
        "identity_query": names(await model.find({"email": {"$regex": "example"}}).to_list()),
        "distinct_clinical": len(await model.distinct("ward")),
        "distinct_identity": {e.split("@")[0] for e in emails},
        "aggregate_count": counted[0]["n"] if counted else 0,
        "aggregate": names(await model.aggregate([{"$project": {"first_name": 1}}]).to_list()),
        "raw_find": names(await raw.find({}).to_list(None)),
        "raw_count": await raw.count_documents({}),
        "raw_estimated": await raw.estimated_document_count(),
    }


def check(seen: dict[str, Any], visible: set[str]) -> None:
    """Every path of ``seen`` returned exactly ``visible``, and every figure its size."""
    for path in ("query", "pages", "identity_query", "distinct_identity", "aggregate", "raw_find"):
        assert seen[path] == visible, path
    for figure in (
        "count",
        "page_sizes",
        "distinct_clinical",
        "aggregate_count",
        "raw_count",
        "raw_estimated",
    ):
        assert seen[figure] == len(visible), figure
