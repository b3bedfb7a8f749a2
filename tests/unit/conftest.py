"""Fixtures for core unit tests (builders live in ``builders.py``)."""

from __future__ import annotations

import pytest

from privata_mongo.core.flows.context import Context
from privata_mongo.core.schema import ModelSchema
from tests.unit.builders import make_context, make_schema


@pytest.fixture
def schema() -> ModelSchema:
    return make_schema()


@pytest.fixture
def ctx(schema: ModelSchema) -> Context:
    return make_context(schema)
