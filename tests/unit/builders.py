"""Builders for core unit tests: schemas and contexts without any ODM or database."""

from __future__ import annotations

import itertools
from datetime import datetime

from privata_mongo.core.classify import Policy, compile_schema
from privata_mongo.core.flows.context import Context
from privata_mongo.core.schema import FieldSpec, ModelSchema, ModelSpec


def make_schema(
    *fields: str, identity: tuple[str, ...] = ("first_name", "email", "address"), **privacy: object
) -> ModelSchema:
    names = fields or ("_id", "first_name", "email", "age", "address", "visits")
    specs = tuple(
        FieldSpec(name=n, attribute="id" if n == "_id" else n, primary_key=n == "_id")
        for n in names
    )
    marked = tuple(
        FieldSpec(
            f.name,
            f.attribute,
            marker=True if f.name in identity else None,
            primary_key=f.primary_key,
        )
        for f in specs
    )
    return compile_schema(
        [ModelSpec("Patient", "patient", marked, privacy or None)],
        Policy(name_defaults=frozenset()),
    )


def make_context(schema: ModelSchema, batch_size: int = 1000) -> Context:
    pseudonyms = (f"pseu_{i:032x}" for i in itertools.count(1))
    revisions = (f"r{i}" for i in itertools.count(1))
    ids = itertools.count(1000)
    return Context(
        schema=schema,
        new_pseudonym=lambda: next(pseudonyms),
        new_revision=lambda: next(revisions),
        new_object_id=lambda: next(ids),
        now=lambda: datetime(2026, 1, 2, 3, 4, 5),
        batch_size=batch_size,
    )
