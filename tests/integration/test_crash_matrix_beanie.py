"""The crash matrix on the async facade: Beanie's create, updates, delete and read.

The same cells as ``test_crash_matrix`` (every call of the operation, before and after, pymongo's
``AutoReconnect``, one retry by the application, then ``sweep_async``), on the embedded async
backend, with the database handed to ``init_beanie`` wrapped by ``faulty_database``. Native
Beanie runs the cells that fault its one matching write, so a cell may also end as native does.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import beanie
import mongomock
from mongomock.store import ServerStore

import privata_mongo.beanie as pb
from privata_mongo.embedded import AsyncMockClient
from privata_mongo.recovery import sweep_async
from privata_mongo.testing.faults import FaultPlan, faulty_database
from tests.integration.test_crash_matrix import (
    COLLECTION,
    READS,
    Outcome,
    _key_names,
    _raw_rows,
    _wrapped_problems,
)

Operation = Callable[[Any, Any], Awaitable[Any]]


async def _create(model: Any, _: Any) -> Any:
    return await model(first_name="Ada", email="ada@example.org", diagnosis="flu").insert()


async def _update(model: Any, seed: Any) -> Any:
    change = {"$set": {"first_name": "Bea"}, "$inc": {"visits": 1}}
    return await model.find_one(model.id == seed).update(change)


async def _identity_update(model: Any, seed: Any) -> Any:
    return await model.find_one(model.id == seed).update({"$set": {"email": "bea@example.org"}})


async def _delete(model: Any, seed: Any) -> Any:
    return await model.find_one(model.id == seed).delete()


async def _read(model: Any, seed: Any) -> Any:
    return [p.first_name for p in await model.find(model.id == seed).to_list()]


OPERATIONS: dict[str, Operation] = {
    "create": _create,
    "update": _update,
    "identity_update": _identity_update,
    "delete": _delete,
    "read": _read,
}


def _model() -> Any:
    class CrashPerson(beanie.Document):
        first_name: str
        email: str
        diagnosis: str
        visits: int = 0

        class Settings:
            name = COLLECTION

    return CrashPerson


async def run_cell(wrapped: bool, operation: str, at: int = 0, moment: str = "before") -> Outcome:
    store = ServerStore()
    db = f"crash_{uuid.uuid4().hex[:10]}"
    client = AsyncMockClient(store)
    raw = mongomock.MongoClient(_store=store)[db]
    plan = FaultPlan()
    model = _model()
    init = pb.init_beanie if wrapped else beanie.init_beanie
    await init(database=faulty_database(client[db], plan), document_models=[model])
    problems: list[str] = []
    seed = (
        await model(first_name="Cy", email="cy@example.org", diagnosis="cold", visits=5).insert()
    ).id
    rows = [_raw_rows(raw)]
    seen = raw["privata_audit"].count_documents({})
    keys = _key_names(raw)
    plan.arm(at, moment)  # type: ignore[arg-type]
    result: Any = None
    try:
        result = await OPERATIONS[operation](model, seed)
    except Exception:
        rows.append(_raw_rows(raw))
        try:
            result = await OPERATIONS[operation](model, seed)  # the application retries once
        except Exception as exc:
            problems.append(f"the retry failed: {type(exc).__name__}")
    plan.disarm()
    rows.append(_raw_rows(raw))
    if wrapped:
        await sweep_async(model.get_pymongo_collection().database, older_than=0)
        rows.append(_raw_rows(raw))
    documents = sorted(
        (p.first_name, p.email, p.diagnosis, p.visits) for p in await model.find_all().to_list()
    )
    if wrapped:
        problems += _wrapped_problems(raw, rows, seen, operation, result, keys)
    return Outcome(documents, [(c.collection, c.method) for c in plan.calls], problems)


def _writes(calls: list[tuple[str, str]]) -> list[int]:
    return [i + 1 for i, (c, m) in enumerate(calls) if c == COLLECTION and m not in READS]


async def test_every_cell_of_the_beanie_crash_matrix_ends_right() -> None:
    failed: list[str] = []
    cells = native_wrong = native_cells = 0
    for operation in OPERATIONS:
        expected = await run_cell(True, operation)
        native_free = await run_cell(False, operation)
        assert expected.documents == native_free.documents, operation
        assert expected.problems == [], operation
        wrapped_writes, native_writes = _writes(expected.calls), _writes(native_free.calls)
        for at in range(1, len(expected.calls) + 1):
            for moment in ("before", "after"):
                cells += 1
                got = await run_cell(True, operation, at, moment)
                allowed = [expected.documents]
                if at in wrapped_writes and wrapped_writes.index(at) < len(native_writes):
                    twin = native_writes[wrapped_writes.index(at)]
                    native = (await run_cell(False, operation, twin, moment)).documents
                    native_cells += 1
                    native_wrong += native != native_free.documents
                    allowed.append(native)
                where = f"{operation} {moment} call {at} {expected.calls[at - 1]}"
                if got.documents not in allowed:
                    failed.append(f"{where}: documents {got.documents} not in {allowed}")
                if got.problems:
                    failed.append(f"{where}: {got.problems}")
    print(  # noqa: T201
        f"beanie crash matrix: {cells} cells, {len(failed)} wrong; native in the same cells: "
        f"{native_wrong} of {native_cells} end unlike its fault-free run"
    )
    assert not failed, "\n".join(failed)
    assert cells >= 2 * len(OPERATIONS) * 3
