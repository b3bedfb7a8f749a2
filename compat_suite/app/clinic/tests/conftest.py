"""The clinic's test fixtures: a fresh database per test, on mongomock or a server.

``CLINIC_MONGODB_URI`` names a server; without it the tests run on mongomock.
``CLINIC_OBSERVATIONS`` names a JSON-lines file each ``observe`` call appends to.
``CLINIC_KEEP_DATABASES`` keeps each test's database after it (for inspection).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import mongomock
import pytest
from mongoengine import connect, disconnect


@pytest.fixture(autouse=True)
def database() -> Iterator[Any]:
    name = f"clinic_{uuid.uuid4().hex[:8]}"
    uri = os.environ.get("CLINIC_MONGODB_URI")
    if uri:
        client = connect(name, host=uri, uuidRepresentation="standard")
    else:
        client = connect(
            name, mongo_client_class=mongomock.MongoClient, uuidRepresentation="standard"
        )
    yield client
    if not os.environ.get("CLINIC_KEEP_DATABASES"):
        client.drop_database(name)
    disconnect()


@pytest.fixture
def observe(request: pytest.FixtureRequest) -> Callable[[str, Any], None]:
    path = os.environ.get("CLINIC_OBSERVATIONS")

    def record(what: str, value: Any) -> None:
        if path:
            line = {"test": request.node.name, "what": what, "value": value}
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(line, default=str, sort_keys=True) + "\n")

    return record
