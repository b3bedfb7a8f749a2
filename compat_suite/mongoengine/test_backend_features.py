"""Indexes and the features some backends lack (each declared in ``requirements.py``).

Each scenario that needs an optional server feature defines its own models, so that a backend
without the feature fails only that scenario (a strict xfail), never the models of the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from compat_suite.harness import raised, scenario
from compat_suite.mongoengine.models import Clinic, clinic, dt, seed_clinic
from compat_suite.mongoengine.observe import names
from compat_suite.requirements import requires


@dataclass(frozen=True)
class Indexed:
    Record: Any


def _indexed(me: ModuleType, *indexes: Any, **fields: Any) -> Indexed:
    attrs: dict[str, Any] = {
        "first_name": me.StringField(required=True),
        "last_name": me.StringField(),
        "email": me.EmailField(unique=True),
        "notes": me.StringField(),
        "weight_kg": me.IntField(),
        "admitted_at": me.DateTimeField(),
        **fields,
        "meta": {"indexes": list(indexes)},
    }
    return Indexed(type("Record", (me.Document,), attrs))


def _plain_indexes(m: Indexed) -> dict[str, Any]:
    info = m.Record._get_collection().index_information()
    return {
        name: {key: value for key, value in spec.items() if key not in ("v", "ns", "background")}
        for name, spec in sorted(info.items())
    }


def _index_report(m: Indexed) -> dict[str, Any]:
    m.Record.ensure_indexes()
    return {
        "declared": m.Record.list_indexes(),
        "compare": m.Record.compare_indexes(),
        "index_information": _plain_indexes(m),
    }


def plain_indexed(me: ModuleType) -> Indexed:
    return _indexed(me, ("last_name", "first_name"), "-admitted_at", {"fields": ["weight_kg"]})


@scenario(plain_indexed)
def test_indexes_declared_in_meta(me: ModuleType, m: Indexed) -> dict[str, Any]:
    m.Record(first_name="A", last_name="B", email="a@example.org", weight_kg=1).save()
    report = _index_report(m)
    m.Record.drop_collection()
    report["after_drop"] = m.Record.compare_indexes()
    m.Record.ensure_indexes()
    report["after_ensure"] = m.Record.compare_indexes()
    m.Record.create_index("notes")
    report["after_extra_index"] = m.Record.compare_indexes()
    return report


def ttl_indexed(me: ModuleType) -> Indexed:
    return _indexed(me, {"fields": ["admitted_at"], "expireAfterSeconds": 3600})


@requires("ttl_index")
@scenario(ttl_indexed)
def test_ttl_index(me: ModuleType, m: Indexed) -> dict[str, Any]:
    # admitted in the future: no server's TTL monitor may remove it while the scenario runs
    m.Record(first_name="A", email="a@example.org", admitted_at=dt(2999, 1, 1)).save()
    return {**_index_report(m), "count": m.Record.objects.count()}


def partial_indexed(me: ModuleType) -> Indexed:
    return _indexed(
        me,
        {
            "fields": ["last_name"],
            "unique": True,
            "partialFilterExpression": {"weight_kg": {"$gt": 60}},
        },
    )


@requires("partial_index")
@scenario(partial_indexed)
def test_partial_unique_index_on_an_identity_field(me: ModuleType, m: Indexed) -> dict[str, Any]:
    record = m.Record
    record(first_name="A", last_name="Same", email="a@example.org", weight_kg=50).save()
    record(first_name="B", last_name="Same", email="b@example.org", weight_kg=70).save()
    return {
        **_index_report(m),
        "duplicate_outside_filter": raised(
            record(first_name="C", last_name="Same", email="c@example.org", weight_kg=40).save
        ),
        "duplicate_inside_filter": raised(
            record(first_name="D", last_name="Same", email="d@example.org", weight_kg=80).save
        ),
        "names": sorted(names(record.objects)),
    }


def sparse_indexed(me: ModuleType) -> Indexed:
    return _indexed(me, ssn=me.StringField(unique=True, sparse=True))


@requires("sparse_index")
@scenario(sparse_indexed)
def test_sparse_unique_identity_field(me: ModuleType, m: Indexed) -> dict[str, Any]:
    record = m.Record
    record(first_name="A", email="a@example.org").save()
    record(first_name="B", email="b@example.org").save()  # no ssn: allowed twice
    record(first_name="C", email="c@example.org", ssn="123").save()
    return {
        **_index_report(m),
        "duplicate_ssn": raised(record(first_name="D", email="d@example.org", ssn="123").save),
        "names": sorted(names(record.objects)),
    }


def text_indexed(me: ModuleType) -> Indexed:
    return _indexed(me, "$notes")


@requires("text_search")
@scenario(text_indexed)
def test_search_text(me: ModuleType, m: Indexed) -> dict[str, Any]:
    m.Record(first_name="A", email="a@example.org", notes="chest pain at night").save()
    m.Record(first_name="B", email="b@example.org", notes="knee pain").save()
    m.Record(first_name="C", email="c@example.org", notes="routine check").save()
    return {
        "pain": sorted(names(m.Record.objects.search_text("pain"))),
        "by_score": names(m.Record.objects.search_text("chest pain").order_by("$text_score")),
    }


@requires("javascript")
@scenario(clinic)
def test_where_clause(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    return {
        "clinical": sorted(names(m.Patient.objects.where("this.weight_kg > 60"))),
        "identity": sorted(names(m.Patient.objects.where("this.last_name.length > 6"))),
    }


@requires("collation")
@scenario(clinic)
def test_collation(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    case_insensitive = {"locale": "en", "strength": 2}
    return {
        "sort_identity": names(
            m.Patient.objects.order_by("first_name").collation(case_insensitive)
        ),
        "match_identity": names(m.Patient.objects(first_name="ALAN").collation(case_insensitive)),
    }


@requires("profiling")
@scenario(clinic)
def test_query_counter(me: ModuleType, m: Clinic) -> dict[str, Any]:
    from mongoengine.context_managers import query_counter

    seed_clinic(m)
    with query_counter() as queries:
        at_start = queries == 0
        list(m.Patient.objects(first_name="Ada"))
        counted = queries > 0
    # Exact counts are not compared: the wrapper reads two collections where native reads one.
    return {"at_start": at_start, "counted": counted}


@requires("transactions")
@scenario(clinic)
def test_transactions_through_the_raw_client(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    client = me.get_connection()
    collection = m.Patient._get_collection()
    committed = m.Patient(first_name="Tx", last_name="Commit", email="tx1@example.org")
    aborted = m.Patient(first_name="Tx", last_name="Abort", email="tx2@example.org")
    with client.start_session() as session:
        with session.start_transaction():
            collection.insert_one(committed.to_mongo(), session=session)
        with session.start_transaction():
            collection.insert_one(aborted.to_mongo(), session=session)
            session.abort_transaction()
    return {"last_names": sorted(p.last_name for p in m.Patient.objects(first_name="Tx"))}


@dataclass(frozen=True)
class Nested:
    Chart: Any


def nested(me: ModuleType) -> Nested:
    class Chart(me.Document):
        first_name = me.StringField()
        grid = me.ListField(me.ListField(me.IntField()))

    return Nested(Chart)


@requires("nested_arrays")
@scenario(nested)
def test_nested_arrays(me: ModuleType, m: Nested) -> dict[str, Any]:
    m.Chart(first_name="A", grid=[[1, 2], [3]]).save()
    m.Chart(first_name="B", grid=[[4]]).save()
    return {
        "grids": [c.grid for c in m.Chart.objects.order_by("first_name")],
        "size": names(m.Chart.objects(grid__size=2)),
    }
