"""Fixtures for integration tests: the mongoengine facade connected to a fresh database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mongoengine
import pytest

import privata_mongo.mongoengine as pm
from testkit.backends import Backend


@pytest.fixture
def connected(backend: Backend) -> Iterator[Any]:
    """The facade connected (alias ``default``) to this test's database; yields the raw db."""
    pm.connect(db=backend.db_name, **backend.mongoengine_settings())
    raw_client = backend.client()
    try:
        yield raw_client[backend.db_name]
    finally:
        mongoengine.disconnect()
        raw_client.close()
