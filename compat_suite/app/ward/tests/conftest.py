"""The ward's test fixtures: a fresh database per test, embedded or on a server.

``CLINIC_MONGODB_URI`` names a server; without it the tests run on the in-process backend.
``CLINIC_OBSERVATIONS`` names a JSON-lines file each ``observe`` call appends to;
``CLINIC_KEEP_DATABASES`` keeps each test's database after it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from beanie import init_beanie
from pymongo import AsyncMongoClient

from ward.models import EVENTS, MODELS


@pytest_asyncio.fixture(autouse=True)
async def database() -> AsyncIterator[Any]:
    name = f"ward_{uuid.uuid4().hex[:8]}"
    uri = os.environ.get("CLINIC_MONGODB_URI")
    if uri:
        client: Any = AsyncMongoClient(uri, uuidRepresentation="standard")
        db = client[name]
    else:
        from privata_mongo.embedded import embedded_database  # the in-process server

        client, db = None, embedded_database(name)
    await init_beanie(database=db, document_models=MODELS)
    EVENTS.clear()
    yield db
    if client is not None:
        if not os.environ.get("CLINIC_KEEP_DATABASES"):
            await client.drop_database(name)
        await client.close()


@pytest.fixture
def observe(request: pytest.FixtureRequest) -> Callable[[str, Any], None]:
    path = os.environ.get("CLINIC_OBSERVATIONS")

    def record(what: str, value: Any) -> None:
        if path:
            line = {"test": request.node.name, "what": what, "value": value}
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(line, default=str, sort_keys=True) + "\n")

    return record
