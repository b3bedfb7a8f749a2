"""The storage port contract: the checks every ``DocumentStore`` adapter passes.

privata's drivers talk to storage only through the ports in ``privata_mongo.ports.storage``.
An application that brings its own adapter (another driver, a cache in front of pymongo, a
test double) proves it here: each check drives one store through plain data and asserts
what the drivers rely on — batch sizes and exhaustion, counts of matched and modified
documents, write failures reported as data (``InsertOutcome``) or as
``core.failures.WriteFailed`` with the server's code, and identity stores that never put a
stored value into an error. The checks need nothing but the store: no pytest, no event loop
of their own. They are written by topic, in the order of the port's protocols (reads, writes,
replace and find-and-modify, indexes and collections, identity redaction); ``CHECKS`` lists
them all in that order.

Usage with pytest (and pytest-asyncio in ``asyncio_mode = "auto"``)::

    import pytest
    from privata_mongo.testing import contract

    @pytest.fixture
    def make_store(my_database):
        def make(name: str, *, identity: bool) -> MyStore:
            # identity=True: the store serves an identity collection, so it must redact
            # stored values from its errors (PymongoStore: redaction=IdentityRedaction(...)).
            return MyStore(my_database[name], redact=identity)

        return make

    @pytest.mark.parametrize("check", contract.CHECKS, ids=str)
    async def test_my_store_honours_the_port(check: contract.Check, make_store) -> None:
        await check(make_store)

The factory may return a sync ``DocumentStore`` or an ``AsyncDocumentStore``: the checks are
written once against the async interface, and a sync store is called through a thin awaitable
shim (test-only: it runs each call inline on the event loop). Each check uses collection names
no other check uses and drops them before use; the caller owns the database and drops it
afterwards.

A backend that lacks a capability some checks need (``FEATURES``; FerretDB 1.24 has no
projection in ``findAndModify``, say) declares it: ``check.requires`` names the features, and
the caller marks those checks as expected failures, or leaves them out with
``checks(lacking=...)``. Without pytest, ``asyncio.run(verify(make))`` runs every check and
raises ``ContractViolation`` listing each one that failed.
"""

from __future__ import annotations

from collections.abc import Iterable

from privata_mongo.testing.contract import _admin, _identity, _modify, _reads, _writes
from privata_mongo.testing.contract._harness import (
    FEATURES,
    Check,
    ContractViolation,
    StoreFactory,
    error_of,
)

__all__ = [
    "CHECKS",
    "FEATURES",
    "Check",
    "ContractViolation",
    "StoreFactory",
    "checks",
    "verify",
]

CHECKS: tuple[Check, ...] = (
    *_reads.CHECKS,
    *_writes.CHECKS,
    *_modify.CHECKS,
    *_admin.CHECKS,
    *_identity.CHECKS,
)
"""Every check, in the order of the port's protocols."""


def checks(*, lacking: Iterable[str] = ()) -> tuple[Check, ...]:
    """The checks a backend lacking the given ``FEATURES`` can pass."""
    missing = frozenset(lacking)
    unknown = missing - set(FEATURES)
    if unknown:
        raise ValueError(f"unknown features {sorted(unknown)}; known: {sorted(FEATURES)}")
    return tuple(check for check in CHECKS if not check.requires & missing)


async def verify(make: StoreFactory, *, lacking: Iterable[str] = ()) -> None:
    """Run every applicable check in turn.

    Raises:
        ContractViolation: naming each check that failed, with its error.
    """
    failures: dict[str, BaseException] = {}
    for check in checks(lacking=lacking):
        error = await error_of(check(make))
        if error is not None:
            failures[check.name] = error
    if failures:
        raise ContractViolation(failures)
