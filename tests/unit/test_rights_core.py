"""The rights' core without a database: the walk's requests and depth, locating a subject,
the writers' output."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Generator
from typing import Any

import pytest
from bson import DBRef

from privata_mongo.core.rights import access as flows
from privata_mongo.core.rights.datamap import DataMap, Edge, Lookup, ModelEntry, Ref, walk
from privata_mongo.core.rights.export import writer
from privata_mongo.errors import UnknownSubject

MAP = DataMap(
    models=(
        ModelEntry("Patient", "patient", ("email",), ("_id",), ("email",)),
        ModelEntry("Visit", "visit", (), ("_id", "patient")),
        ModelEntry("Lab", "lab", (), ("_id", "visit")),
        ModelEntry("Note", "note", (), ("_id", "about")),
    ),
    edges=(
        Edge("Visit", "patient", "Patient", Ref.ID),
        Edge("Lab", "visit", "Visit", Ref.CACHED),
        Edge("Note", "about", None, Ref.GENERIC),
        Edge("Patient", "visits", "Visit", Ref.BACK, many=True),
    ),
)


def _drive(flow: Generator[Any, Any, Any], answers: dict[str, list[Any]]) -> tuple[Any, list[Any]]:
    """Answer each ``Lookup`` from ``answers`` (by model, in order); record the requests."""
    asked: list[Any] = []
    result: Any = None
    while True:
        try:
            request = flow.send(result)
        except StopIteration as done:
            return done.value, asked
        asked.append(request)
        result = answers[request.model].pop(0) if isinstance(request, Lookup) else None


def test_the_walk_asks_once_per_edge_and_level_and_stops_at_cycles() -> None:
    answers = {
        "Patient": [["p1"]],
        "Visit": [["v1", "v2"]],
        "Lab": [["l1", "l2", "l3"]],
        "Note": [["n1"], [], [], ["n1"]],  # a note on the patient, found again from a lab
    }
    found, asked = _drive(walk(MAP, "pseu_x"), answers)
    assert [(r.model, dict(r.filter), r.raw) for r in asked] == [
        ("Patient", {"_pseudonym": "pseu_x"}, True),
        ("Visit", {"patient": {"$in": ["p1"]}}, False),
        ("Note", {"about._ref": {"$in": [DBRef("patient", "p1")]}}, False),
        ("Lab", {"visit._id": {"$in": ["v1", "v2"]}}, False),
        ("Note", {"about._ref": {"$in": [DBRef("visit", "v1"), DBRef("visit", "v2")]}}, False),
        ("Note", {"about._ref": {"$in": [DBRef("note", "n1")]}}, False),
        ("Note", {"about._ref": {"$in": [DBRef("lab", i) for i in ("l1", "l2", "l3")]}}, False),
    ]
    assert found.documents == {
        "Patient": ("p1",),
        "Visit": ("v1", "v2"),
        "Note": ("n1",),
        "Lab": ("l1", "l2", "l3"),
    }
    assert found.depth == 3  # the fourth level found nothing new
    assert found.lookups == len(asked)


def test_a_level_with_more_ids_than_a_chunk_asks_once_per_chunk() -> None:
    """A level's ids go to the server in chunks: round trips grow with chunks, not documents."""
    visits = [f"v{i}" for i in range(5)]
    answers = {
        "Patient": [["p1"]],
        "Visit": [visits],
        "Lab": [["l1"], ["l2"], []],  # one answer per chunk of two visits
        "Note": [[], [], [], [], []],
    }
    found, asked = _drive(walk(MAP, "pseu_x", chunk=2), answers)
    labs = [dict(r.filter) for r in asked if r.model == "Lab"]
    assert labs == [
        {"visit._id": {"$in": ["v0", "v1"]}},
        {"visit._id": {"$in": ["v2", "v3"]}},
        {"visit._id": {"$in": ["v4"]}},
    ]
    notes = [r for r in asked if r.model == "Note"]
    assert len(notes) == 1 + 3 + 1  # the patient's one id, the visits' three chunks, the labs'
    assert found.documents["Lab"] == ("l1", "l2")
    assert found.lookups == len(asked) == 1 + 1 + 3 + 5


def test_the_default_chunk_is_a_thousand_ids() -> None:
    answers = {"Patient": [["p1"]], "Visit": [[f"v{i}" for i in range(2500)]], "Lab": [[]] * 3}
    answers["Note"] = [[]] * 4
    _, asked = _drive(walk(MAP, "pseu_x"), answers)
    sizes = [len(r.filter["visit._id"]["$in"]) for r in asked if r.model == "Lab"]
    assert sizes == [1000, 1000, 500]


def test_a_back_link_is_shown_but_never_queried() -> None:
    assert "Patient.visits[] -> Visit (backlink)" in str(MAP)
    assert all(e.ref is not Ref.BACK for e in MAP.into("Visit"))
    with pytest.raises(ValueError, match="back link"):
        MAP.edges[3].holders("visit", [1])


def test_locate_refuses_unknown_models_and_unsearchable_fields_without_values() -> None:
    with pytest.raises(UnknownSubject, match="not a registered model"):
        _drive(flows.locate(MAP, flows.Subject(model="Nobody", id=1)), {})
    with pytest.raises(UnknownSubject, match="holds no identity fields"):
        _drive(flows.locate(MAP, flows.Subject(model="Visit", id=1)), {})
    with pytest.raises(UnknownSubject, match="searchable: email"):
        _drive(flows.locate(MAP, flows.Subject(model="Patient", field="ward", value="A")), {})
    flow = flows.locate(MAP, flows.Subject(model="Patient", field="email", value="a@b.c"))
    request = next(flow)
    assert isinstance(request, flows.FindSubject)
    assert "a@b.c" not in repr(request)
    with pytest.raises(UnknownSubject) as raised:
        flow.send(None)
    assert "a@b.c" not in str(raised.value)


def test_access_records_each_model_after_reading_and_before_returning() -> None:
    flow = flows.access(MAP, flows.Subject(pseudonym="pseu_x"), batch=2)
    asked: list[Any] = []
    answers: dict[type, Any] = {}
    result: Any = None
    lookups = iter([["p1"], ["v1", "v2", "v3"], [], [], [], []])
    while True:
        try:
            request = flow.send(result)
        except StopIteration as done:
            held = done.value
            break
        asked.append(request)
        if isinstance(request, Lookup):
            result = next(lookups)
        elif isinstance(request, flows.Read):
            result = [{"_id": i, "email": "x"} if i == "p1" else {"_id": i} for i in request.ids]
        elif isinstance(request, flows.History):
            result = [{"actor": "a", "purpose": "p", "operation": "read", "extra": 1}]
        else:
            result = answers.get(type(request))
    reads = [tuple(r.ids) for r in asked if isinstance(r, flows.Read)]
    assert reads == [("p1",), ("v1", "v2"), ("v3",)]
    records = [r for r in asked if isinstance(r, flows.Record)]
    assert [(r.operation, r.model, r.fields, r.count) for r in records] == [
        ("access", "Patient", frozenset({"email"}), 1),
        ("access", "Visit", frozenset(), 3),
    ]
    assert held.processing[0]["actor"] == "a"
    assert "extra" not in held.processing[0]


@pytest.mark.parametrize("fmt", ["json", "csv", "xml"])
def test_writers_stream_sections_in_order(fmt: str) -> None:
    out = io.BytesIO()
    w = writer(fmt, out, "pseu_x")
    w.section("Patient", ("_id", "email"))
    w.documents([{"_id": 1, "email": "a@b.c", "tags": ["x"]}])
    w.section("Visit", ("_id",))
    w.documents([{"_id": 2}])
    w.documents([{"_id": 3}])
    w.finish([{"actor": "a", "operation": "read"}])
    assert w.counts == {"Patient": 1, "Visit": 2}
    data = out.getvalue()
    if fmt == "json":
        parsed = json.loads(data)
        assert parsed["models"] == {
            "Patient": [{"_id": 1, "email": "a@b.c", "tags": ["x"]}],
            "Visit": [{"_id": 2}, {"_id": 3}],
        }
        assert parsed["processing"][0]["actor"] == "a"
    elif fmt == "csv":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            patient = archive.read("Patient.csv").decode().splitlines()
            assert patient == ["_id,email,_extra", '1,a@b.c,"{""tags"": [""x""]}"']
            assert archive.read("Visit.csv").decode().splitlines() == ["_id,_extra", "2,", "3,"]
    else:
        assert data.count(b"<document>") == 3
        assert b'<model name="Visit">' in data


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="json, csv, xml"):
        writer("pdf", io.BytesIO(), "pseu_x")


def test_declared_references_name_a_model_or_are_refused() -> None:
    from privata_mongo.core.rights.datamap import declared
    from privata_mongo.errors import ConfigurationError

    assert declared("Visit", {"patient_id": "Patient"}) == (
        Edge("Visit", "patient_id", "Patient", Ref.ID),
    )
    assert declared("Visit", None) == ()
    with pytest.raises(ConfigurationError, match="map stored field names"):
        declared("Visit", ["patient_id"])
    with pytest.raises(ConfigurationError, match="model names or classes"):
        declared("Visit", {"patient_id": 3})
