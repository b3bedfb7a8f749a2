"""A fresh in-memory database (mongomock) for every test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mongomock
import pytest
from mongoengine import connect, disconnect


@pytest.fixture(autouse=True)
def database() -> Iterator[Any]:
    client = connect(
        "clinic", mongo_client_class=mongomock.MongoClient, uuidRepresentation="standard"
    )
    yield client
    client.drop_database("clinic")
    disconnect()
