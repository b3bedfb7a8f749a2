"""Regexes on identity fields run in the process: their cost is bounded, ``maxTimeMS`` honoured.

``^(a+)+$`` against 28 ``a`` and a ``!`` backtracks for minutes in Python's ``re``; the server
answers at once. Through both facades, on every backend, the same query returns well under a
second (RE2), and a pattern only a backtracking engine can run stops at the operation's time
limit with the server's ``ExecutionTimeout`` (code 50).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import mongoengine as me
import pymongo
import pytest
from pymongo.errors import ExecutionTimeout

import privata_mongo.beanie as pb
from privata_mongo.embedded import AsyncMockClient
from testkit.backends import Backend

EVIL = "^(a+)+$"
VALUE = "a" * 28 + "!"
BACKTRACKING = r"^(a|a)+\1$"  # a back-reference: RE2 cannot take it
FAST = 0.5


class _Clock:
    """The CPU time the block took in this process.

    The budget of a backtracking match is CPU time (the ``regex`` module's timeout), and the
    machine running the tests may be loaded: wall time would measure the other processes.
    """

    def __enter__(self) -> _Clock:
        self.start = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.process_time() - self.start


@pytest.fixture
def patient(connected: Any) -> Any:
    class RegexPatient(me.Document):
        first_name = me.StringField()
        ward = me.StringField()
        meta = {"collection": "regex_patient"}

    RegexPatient(first_name=VALUE, ward="A").save()
    RegexPatient(first_name="aaa", ward="A").save()
    return RegexPatient


def test_a_catastrophic_pattern_returns_at_once_through_mongoengine(patient: Any) -> None:
    with _Clock() as clock:
        found = [p.first_name for p in patient.objects(__raw__={"first_name": {"$regex": EVIL}})]
    assert found == ["aaa"]
    assert clock.elapsed < FAST


def test_max_time_ms_stops_an_in_process_match_with_the_servers_error(patient: Any) -> None:
    query = patient.objects(__raw__={"first_name": {"$regex": BACKTRACKING}}).max_time_ms(100)
    with _Clock() as clock, pytest.raises(ExecutionTimeout) as raised:
        list(query)
    assert raised.value.code == 50
    assert VALUE not in str(raised.value)
    assert clock.elapsed < FAST + 0.1 * 2


def test_pymongos_own_max_time_ms_and_max_time_ms_stop_in_process_matches(patient: Any) -> None:
    collection = patient._get_collection()  # the proxy collection the ODM calls
    regex = {"first_name": {"$regex": BACKTRACKING}}
    with pytest.raises(ExecutionTimeout) as raised:
        list(collection.find(regex, max_time_ms=100))
    assert raised.value.code == 50
    with pytest.raises(ExecutionTimeout) as raised:
        collection.count_documents(regex, maxTimeMS=100)
    assert raised.value.code == 50
    assert raised.value.details is not None
    assert raised.value.details["codeName"] == "MaxTimeMSExpired"
    # a pipeline stage evaluated in the process, after values computed from identity fields
    computed = [
        {"$project": {"n": {"$cond": [True, "$first_name", None]}}},
        {"$match": {"n": {"$regex": BACKTRACKING}}},
    ]
    with _Clock() as clock, pytest.raises(ExecutionTimeout):
        list(collection.aggregate(computed, maxTimeMS=100))
    assert clock.elapsed < FAST + 0.1 * 2


def test_pymongo_timeout_stops_an_in_process_match(patient: Any) -> None:
    query = patient.objects(__raw__={"first_name": {"$regex": BACKTRACKING}})
    with _Clock() as clock, pytest.raises(ExecutionTimeout) as raised, pymongo.timeout(0.2):
        list(query)
    assert raised.value.code == 50
    assert clock.elapsed < 1.0


def test_without_a_time_limit_a_backtracking_match_stops_at_its_budget(patient: Any) -> None:
    with _Clock() as clock, pytest.raises(ExecutionTimeout) as raised:
        list(patient.objects(__raw__={"first_name": {"$regex": BACKTRACKING}}))
    assert raised.value.code == 50
    assert "budget" in str(raised.value)
    assert clock.elapsed < 3.0  # a budget of 1 s per match


class _AsyncRegexPatient(pb.Document):
    first_name: str
    ward: str

    class Settings:
        name = "regex_patient_async"


@pytest.fixture
async def async_patient(backend: Backend) -> AsyncIterator[Any]:
    client: Any = (
        AsyncMockClient() if backend.name == "mongomock" else pymongo.AsyncMongoClient(backend.uri)
    )
    try:
        await pb.init_beanie(database=client[backend.db_name], document_models=[_AsyncRegexPatient])
        await _AsyncRegexPatient(first_name=VALUE, ward="A").insert()
        await _AsyncRegexPatient(first_name="aaa", ward="A").insert()
        yield _AsyncRegexPatient
    finally:
        if backend.name != "mongomock":
            await client.drop_database(backend.db_name)
            await client.close()


async def test_a_catastrophic_pattern_returns_at_once_through_beanie(async_patient: Any) -> None:
    with _Clock() as clock:
        found = await async_patient.find({"first_name": {"$regex": EVIL}}).to_list()
    assert [p.first_name for p in found] == ["aaa"]
    assert clock.elapsed < FAST


async def test_beanies_max_time_ms_stops_an_in_process_match(async_patient: Any) -> None:
    query = async_patient.find({"first_name": {"$regex": BACKTRACKING}}, max_time_ms=100)
    with _Clock() as clock, pytest.raises(ExecutionTimeout) as raised:
        await query.to_list()
    assert raised.value.code == 50
    assert clock.elapsed < FAST + 0.1 * 2


async def test_pymongo_timeout_stops_an_in_process_match_through_beanie(
    async_patient: Any,
) -> None:
    with pytest.raises(ExecutionTimeout) as raised, pymongo.timeout(0.2):
        await async_patient.find({"first_name": {"$regex": BACKTRACKING}}).to_list()
    assert raised.value.code == 50


async def test_an_aggregation_honours_max_time_ms_in_the_process(async_patient: Any) -> None:
    pipeline = [{"$match": {"first_name": {"$regex": BACKTRACKING}}}]
    with pytest.raises(ExecutionTimeout) as raised:
        await async_patient.aggregate(pipeline, maxTimeMS=100).to_list()
    assert raised.value.code == 50
