"""Restriction (GDPR Art. 18), objection (Art. 21) and break-glass (HIPAA §164.312(a)(2)(ii)).

A data subject named by pseudonym (``privata_mongo.audit.subject_of`` gives the pseudonym of a
document the application knows by ``_id``) is marked on every document of every split
collection of the database (``core.rights.restriction`` says where the marker lives and why).
From then on the proxy's planner enforces it on every path the application has — querysets,
``count``, ``distinct``, pagination, aggregation, references, raw collection access:

- ``restrict``: the subject is absent from reads and writes to it raise
  ``ProcessingRestricted``, except under the purposes the restriction allows
  (``allowed_purposes=("legal_claims",)``) or under ``break_glass``;
- ``object``: the subject is absent from reads and writes made under that purpose.

Each change is audited under its own operation name (``restrict``, ``lift_restriction``,
``object``, ``withdraw_objection``) with the actor, purpose and legal basis of the access
context. The functions take the database as the application holds it
(``privata_mongo.mongoengine.get_db()``, a Beanie model's ``get_pymongo_collection().database``);
the ``_async`` twins take the async one. They return the number of documents marked.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator, Iterable, Mapping
from typing import Any

from privata_mongo.context import break_glass
from privata_mongo.core.flows.context import Context
from privata_mongo.core.ops import Steps
from privata_mongo.core.pseudonym import is_pseudonym
from privata_mongo.core.rights.restriction import (
    LIFT_RESTRICTION,
    OBJECT,
    RESTRICT,
    RESTRICTION_FIELD,
    WITHDRAW_OBJECTION,
    change_marker,
)
from privata_mongo.core.schema import PSEUDONYM_FIELD, REGION_FIELD
from privata_mongo.drivers import aio, sync
from privata_mongo.drivers._dispatch import Binding
from privata_mongo.errors import ConfigurationError
from privata_mongo.proxy._collection_base import split_collection
from privata_mongo.runtime.regions import clinical_collections, identity_database

__all__ = [
    "break_glass",
    "lift_restriction",
    "lift_restriction_async",
    "object",
    "object_async",
    "restrict",
    "restrict_async",
    "withdraw_objection",
    "withdraw_objection_async",
]

_R = f"{RESTRICTION_FIELD}.r"
_A = f"{RESTRICTION_FIELD}.a"
_O = f"{RESTRICTION_FIELD}.o"


def _purposes(values: Iterable[str], what: str) -> list[str]:
    out = list(dict.fromkeys(values))
    for value in out:
        if not isinstance(value, str) or not value:  # type: ignore[redundant-expr] # callers' types are not checked
            raise ConfigurationError(f"{what}: a purpose is a non-empty string such as 'research'")
    return out


def _subject(subject: str) -> str:
    if not is_pseudonym(subject):
        raise ConfigurationError(
            "a data subject is named by its pseudonym ('pseu_' and 32 lowercase hex digits); "
            "privata_mongo.audit.subject_of(db, collection, _id) gives it for a document"
        )
    return subject


def _restrict(allowed_purposes: Iterable[str]) -> dict[str, Any]:
    allowed = _purposes(allowed_purposes, "restrict")
    return {"$set": {_R: True, _A: allowed}}


def _lift() -> dict[str, Any]:
    return {"$unset": {_R: "", _A: ""}}


def _object(purpose: str) -> dict[str, Any]:
    (chosen,) = _purposes([purpose], "object")
    return {"$addToSet": {_O: chosen}}


def _withdraw(purpose: str) -> dict[str, Any]:
    (chosen,) = _purposes([purpose], "withdraw_objection")
    return {"$pull": {_O: chosen}}


def _pairs(
    database: Any, names: Iterable[str]
) -> list[tuple[Context, Binding[Any, Any, Any, Any, Any]]]:
    suffix = database.client.runtime.settings().identity_suffix
    clinical = sorted({n[: -len(suffix)] for n in names if n.endswith(suffix) and n != suffix})
    return [split_collection(database, name).flow_parts() for name in clinical]


def _names(database: Any, pseudonym: str) -> Generator[Any, Any, list[str]]:
    """The collection names of ``database`` and of the subject's region's identity database.

    With regions the identity collections are not in the application's database: they are
    found in the identity database of the subject's region, read from the ``_region`` of its
    first clinical row (in whichever store holds it: a region may keep its clinical rows on a
    server of its own), so no other region is asked. Each call is yielded: the sync caller
    takes its value, the async one awaits it.
    """
    names: list[str] = list((yield database.inner.list_collection_names()))
    regions = database.client.runtime.settings().regions
    if not regions:
        return names
    suffix = database.client.runtime.settings().identity_suffix
    settings = database.client.runtime.settings()
    selector = {PSEUDONYM_FIELD: pseudonym, REGION_FIELD: {"$exists": True}}
    for name in names:
        if name.endswith(suffix) or name.startswith("system."):
            continue
        row = None
        for _, stored in clinical_collections(settings, database.inner[name]):
            row = yield stored.find_one(selector, {REGION_FIELD: 1})
            if row:
                break
        region = regions.get(row.get(REGION_FIELD)) if row else None
        if region is not None:
            identity = identity_database(region, database.inner.name)
            found = yield identity.list_collection_names()
            return list(dict.fromkeys([*names, *found]))  # a region may share the database
    return names


def _run_names(database: Any, pseudonym: str) -> list[str]:
    steps: Steps[list[str]] = Steps(_names(database, pseudonym))
    made: Any = steps.advance()
    while not steps.finished:
        made = steps.advance(made)
    return steps.value


async def _run_names_async(database: Any, pseudonym: str) -> list[str]:
    steps: Steps[list[str]] = Steps(_names(database, pseudonym))
    made: Any = steps.advance()
    while not steps.finished:
        made = steps.advance(await made if inspect.isawaitable(made) else made)
    return steps.value


def _change(database: Any, subject: str, operation: str, change: Mapping[str, Any]) -> int:
    pseudonym = _subject(subject)
    return sum(
        sync.run(change_marker(ctx, pseudonym, operation, change), binding)
        for ctx, binding in _pairs(database, _run_names(database, pseudonym))
    )


async def _change_async(
    database: Any, subject: str, operation: str, change: Mapping[str, Any]
) -> int:
    pseudonym = _subject(subject)
    total = 0
    for ctx, binding in _pairs(database, await _run_names_async(database, pseudonym)):
        total += await aio.run(change_marker(ctx, pseudonym, operation, change), binding)
    return total


def restrict(database: Any, subject: str, *, allowed_purposes: Iterable[str] = ()) -> int:
    """Restrict processing of ``subject`` (Art. 18), except under ``allowed_purposes``.

    Restricting again replaces the allowed purposes. Returns the documents marked.

    Raises:
        ConfigurationError: ``subject`` is not a pseudonym, or a purpose is empty.
    """
    return _change(database, subject, RESTRICT, _restrict(allowed_purposes))


def lift_restriction(database: Any, subject: str) -> int:
    """Lift the restriction of ``subject``; its objections stay."""
    return _change(database, subject, LIFT_RESTRICTION, _lift())


def object(database: Any, subject: str, purpose: str) -> int:
    """Record ``subject``'s objection (Art. 21) to processing for ``purpose``."""
    return _change(database, subject, OBJECT, _object(purpose))


def withdraw_objection(database: Any, subject: str, purpose: str) -> int:
    """Withdraw ``subject``'s objection to ``purpose``."""
    return _change(database, subject, WITHDRAW_OBJECTION, _withdraw(purpose))


async def restrict_async(
    database: Any, subject: str, *, allowed_purposes: Iterable[str] = ()
) -> int:
    """``restrict`` for an async database."""
    return await _change_async(database, subject, RESTRICT, _restrict(allowed_purposes))


async def lift_restriction_async(database: Any, subject: str) -> int:
    """``lift_restriction`` for an async database."""
    return await _change_async(database, subject, LIFT_RESTRICTION, _lift())


async def object_async(database: Any, subject: str, purpose: str) -> int:
    """``object`` for an async database."""
    return await _change_async(database, subject, OBJECT, _object(purpose))


async def withdraw_objection_async(database: Any, subject: str, purpose: str) -> int:
    """``withdraw_objection`` for an async database."""
    return await _change_async(database, subject, WITHDRAW_OBJECTION, _withdraw(purpose))
