"""Restriction along the data map, without a database: which native models can hold a marker,
and the marker each native document gets from the subjects it carries."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from bson import DBRef

from privata_mongo.core.rights import access as flows
from privata_mongo.core.rights.datamap import DataMap, Edge, Lookup, ModelEntry, Ref, Source
from privata_mongo.core.rights.spread import (
    Mark,
    Markers,
    StoredMarkers,
    combined,
    inherited,
    merged,
    spread,
)

ANN, BOB = "pseu_" + "a" * 32, "pseu_" + "b" * 32

MAP = DataMap(
    models=(
        ModelEntry("Patient", "patient", ("email",), ("_id",), ("email",)),
        ModelEntry("Visit", "visit", (), ("_id", "patient")),
        ModelEntry("Lab", "lab", (), ("_id", "visit")),
        ModelEntry("Clinic", "clinic", (), ("_id",)),
        ModelEntry("Team", "team", (), ("_id", "members")),
    ),
    edges=(
        Edge("Visit", "patient", "Patient", Ref.ID),
        Edge("Lab", "visit", "Visit", Ref.ID),
        Edge("Patient", "clinic", "Clinic", Ref.ID),
        Edge("Team", "members", "Patient", Ref.ID, many=True),
    ),
)


def test_only_models_referencing_a_subject_can_hold_a_marker() -> None:
    assert MAP.reachable() == {"Visit", "Lab", "Team"}  # a clinic is referenced, not referencing
    generic = DataMap(
        (*MAP.models, ModelEntry("Note", "note")), (Edge("Note", "about", None, Ref.GENERIC),)
    )
    assert generic.reachable() == {"Note"}
    assert (
        DataMap(
            (ModelEntry("Visit", "visit"),), (Edge("Visit", "x", None, Ref.GENERIC),)
        ).reachable()
        == set()
    )


def test_the_marker_combines_every_subject_it_carries() -> None:
    decisions = {
        ANN: {"r": True, "a": ["legal_claims", "audit"]},
        BOB: {"r": True, "a": ["audit"], "o": ["research"]},
    }
    assert combined((ANN, BOB), decisions) == {
        "$set": {"_rst.s": [ANN, BOB], "_rst.r": True, "_rst.a": ["audit"], "_rst.o": ["research"]},
        "$unset": {"_rst.c": ""},
    }
    assert combined((ANN,), decisions) == {
        "$set": {"_rst.s": [ANN], "_rst.r": True, "_rst.a": ["legal_claims", "audit"]},
        "$unset": {"_rst.o": "", "_rst.c": ""},
    }
    assert combined((), decisions) == {
        "$unset": {"_rst.s": "", "_rst.r": "", "_rst.a": "", "_rst.o": "", "_rst.c": ""}
    }


def test_a_shared_document_is_consented_only_for_what_every_subject_consented_to() -> None:
    decisions = {ANN: {"c": ["research", "marketing"]}, BOB: {"c": ["research"]}, "x": {}}
    assert combined((ANN, BOB), decisions)["$set"]["_rst.c"] == ["research"]
    assert combined((ANN,), decisions)["$set"]["_rst.c"] == ["research", "marketing"]
    assert "_rst.c" in combined((ANN, "x"), decisions)["$unset"]  # x consented to nothing


def _drive(flow: Generator[Any, Any, Any], answer: Any) -> tuple[Any, list[Any]]:
    asked: list[Any] = []
    result: Any = None
    while True:
        try:
            request = flow.send(result)
        except StopIteration as done:
            return done.value, asked
        asked.append(request)
        result = answer(request)


def test_spread_marks_the_native_documents_of_the_map_per_chunk_and_subject_set() -> None:
    """Ann is restricted; a team she shares with Bob (who objects to research) carries both."""
    ids = {"Patient": ["p1"], "Visit": ["v1", "v2", "v3"], "Lab": [], "Team": ["t1"]}

    def answer(request: Any) -> Any:
        if isinstance(request, Lookup):
            if request.raw:
                return ids[request.model]
            return ids[request.model] if request.model != "Lab" else []
        if isinstance(request, Markers):
            if request.model == "Patient":
                wanted = request.filter["_pseudonym"]["$in"]
                rows = {ANN: {"r": True, "a": ["legal_claims"]}, BOB: {"o": ["research"]}}
                return [{"_pseudonym": p, "_rst": rows[p]} for p in wanted]
            if request.model == "Team":
                return [{"_id": "t1", "_rst": {"s": [BOB], "o": ["research"]}}]
            return [{"_id": i} for i in request.filter["_id"]["$in"]]
        if isinstance(request, Mark):
            return len(request.filter["_id"]["$in"])
        return None

    total, asked = _drive(spread(MAP, ANN, "restrict", chunk=2), answer)
    marks = [(r.model, r.filter["_id"]["$in"], r.update) for r in asked if isinstance(r, Mark)]
    ann = {
        "$set": {"_rst.s": [ANN], "_rst.r": True, "_rst.a": ["legal_claims"]},
        "$unset": {"_rst.o": "", "_rst.c": ""},
    }
    assert marks == [
        ("Visit", ["v1", "v2"], ann),
        ("Visit", ["v3"], ann),
        (
            "Team",
            ["t1"],
            {
                "$set": {
                    "_rst.s": [BOB, ANN],
                    "_rst.r": True,
                    "_rst.a": ["legal_claims"],
                    "_rst.o": ["research"],
                },
                "$unset": {"_rst.c": ""},
            },
        ),
    ]
    assert total == 4
    decisions = [r.filter for r in asked if isinstance(r, Markers) and r.model == "Patient"]
    assert decisions == [
        {"_pseudonym": {"$in": [ANN]}},
        {"_pseudonym": {"$in": [BOB]}},
    ]  # each once
    records = [
        (r.operation, r.model, r.pseudonym, r.count) for r in asked if isinstance(r, flows.Record)
    ]
    assert records == [("restrict", "Visit", ANN, 3), ("restrict", "Team", ANN, 1)]


def test_a_lifted_subject_leaves_the_document_to_the_others() -> None:
    def answer(request: Any) -> Any:
        if isinstance(request, Lookup):
            return {"Patient": ["p1"], "Team": ["t1"]}.get(request.model, [])
        if isinstance(request, Markers):
            if request.model == "Patient":
                rows = {ANN: {}, BOB: {"r": True, "a": []}}
                return [
                    {"_pseudonym": p, "_rst": rows[p]} for p in request.filter["_pseudonym"]["$in"]
                ]
            return [{"_id": "t1", "_rst": {"s": [BOB, ANN], "r": True, "a": []}}]
        return 1 if isinstance(request, Mark) else None

    _, asked = _drive(spread(MAP, ANN, "lift_restriction"), answer)
    (mark,) = [r for r in asked if isinstance(r, Mark)]
    assert mark.update == {  # Ann stays listed: a subject without consent limits the others'
        "$set": {"_rst.s": [BOB, ANN], "_rst.r": True, "_rst.a": []},
        "$unset": {"_rst.o": "", "_rst.c": ""},
    }


def test_a_native_model_inherits_along_references_into_marked_models_only() -> None:
    assert MAP.sources("Visit") == (Source("patient", Ref.ID, "patient"),)
    assert MAP.sources("Lab") == (Source("visit", Ref.ID, "visit"),)  # a native model of the map
    assert MAP.sources("Team") == (Source("members", Ref.ID, "patient"),)
    generic = DataMap(MAP.models, (Edge("Visit", "about", None, Ref.GENERIC),))
    assert generic.sources("Visit") == (Source("about", Ref.GENERIC, None),)
    assert MAP.sources("Clinic") == ()


def _inherit(
    sources: tuple[Source, ...], documents: list[dict[str, Any]], stored: dict[str, list[Any]]
) -> tuple[list[dict[str, Any]], list[StoredMarkers]]:
    """Run ``inherited``, answering each read from ``stored`` (rows by collection)."""
    asked: list[StoredMarkers] = []
    flow = inherited(sources, documents, chunk=2)
    try:
        request = next(flow)
        while True:
            asked.append(request)
            rows = [r for r in stored[request.collection] if r["_id"] in request.ids]
            request = flow.send(rows)
    except StopIteration as done:
        return done.value, asked


def test_documents_inherit_the_merge_of_what_they_reference_in_reads_per_chunk() -> None:
    stored = {
        "patient": [
            {"_id": 1, "_pseudonym": ANN, "_rst": {"r": True, "a": ["legal_claims"]}},
            {"_id": 2, "_pseudonym": BOB, "_rst": {"o": ["research"]}},
            {"_id": 3, "_pseudonym": "pseu_" + "c" * 32},
        ],
        "visit": [{"_id": 10, "_rst": {"s": [BOB], "o": ["marketing"]}}, {"_id": 11}],
    }
    sources = (Source("members", Ref.ID, "patient"), Source("about", Ref.DBREF, None))
    documents = [
        {"members": [1, 2]},
        {"members": [3]},
        {"members": [2], "about": DBRef("visit", 10)},
        {"about": DBRef("visit", 11)},
        {},
    ]
    markers, asked = _inherit(sources, documents, stored)
    assert markers == [
        {"s": [ANN, BOB], "r": True, "a": ["legal_claims"], "o": ["research"]},
        {},
        {"s": [BOB], "o": ["research", "marketing"]},
        {},
        {},
    ]
    assert [(a.collection, a.ids) for a in asked] == [
        ("patient", (1, 2)),
        ("patient", (3,)),
        ("visit", (10, 11)),
    ]


def test_merging_is_the_combination_of_every_subject_one_by_one() -> None:
    ann = {"s": [ANN], "r": True, "a": ["x", "y"], "c": ["research"]}
    bob = {"s": [BOB], "r": True, "a": ["y"], "o": ["ads"], "c": ["research", "ads"]}
    assert merged([ann, bob]) == merged([merged([ann]), bob])
    assert merged([ann, bob]) == {
        "s": [ANN, BOB],
        "r": True,
        "a": ["y"],
        "o": ["ads"],
        "c": ["research"],
    }
    assert merged([ann, {"s": [BOB]}]) == {"s": [ANN, BOB], "r": True, "a": ["x", "y"]}
    assert merged([{"s": [ANN]}, {}]) == {}
