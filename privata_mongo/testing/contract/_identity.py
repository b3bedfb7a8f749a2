"""Internal. The contract's checks of identity stores: no stored value in any error.

A store serving an identity collection reports duplicates and failed updates by index and code,
never with a value of the row (an e-mail address, a name) or its pseudonymous ``_id``: errors end
up in logs. Every text an error shows is searched, chained exceptions included.
"""

from __future__ import annotations

from collections.abc import Iterator

from privata_mongo.core.failures import DUPLICATE_KEY
from privata_mongo.core.ops import (
    CreateIndex,
    Insert,
    Update,
)
from privata_mongo.ports.storage import AsyncDocumentStore
from privata_mongo.testing.contract._harness import SIDE, Register, StoreFactory, fresh
from privata_mongo.testing.contract._helpers import (
    failure_of,
    fetch_ids,
    fetch_one,
    seed,
)

__all__ = ["CHECKS"]

_check = Register()


def _texts(error: object, seen: set[int] | None = None) -> Iterator[str]:
    """Every text an error shows: message, repr, attributes, and the exceptions it chains."""
    seen = set() if seen is None else seen
    if id(error) in seen:
        return
    seen.add(id(error))
    yield str(error)
    yield repr(error)
    for name in ("message", "details", "args", "failures"):
        yield repr(getattr(error, name, None))
    attributes = getattr(error, "__dict__", None)
    if attributes is not None:
        yield repr(attributes)
    if isinstance(error, BaseException):
        yield from _texts(error.__cause__, seen)
        if not error.__suppress_context__:
            yield from _texts(error.__context__, seen)


def _assert_no_value(error: object, *values: str) -> None:
    for text in _texts(error):
        for value in values:
            assert value not in text, f"a stored value reached an error: {text!r}"


_EMAIL = "ada.lovelace@example.org"
_NAME = "Ada Lovelace"


async def _identity_store(make: StoreFactory, name: str) -> AsyncDocumentStore:
    store = await fresh(make, name, identity=True)
    await store.execute(CreateIndex(SIDE, (("email", 1),), {"unique": True}))
    await seed(store, [{"_id": "pseu_first", "email": _EMAIL, "first_name": _NAME}])
    return store


@_check()
async def check_identity_insert_duplicate_is_redacted(make: StoreFactory) -> None:
    """An identity store reports a duplicate e-mail with the index, never with the value."""
    store = await _identity_store(make, "identity_insert")
    for ordered in (True, False):
        outcome = await store.execute(
            Insert(
                SIDE,
                ({"_id": "pseu_second", "email": _EMAIL, "first_name": "Other"},),
                ordered,
            )
        )
        assert [(f.index, f.code) for f in outcome.failures] == [(0, DUPLICATE_KEY)]
        _assert_no_value(outcome, _EMAIL)
    assert await fetch_ids(store) == ["pseu_first"]


@_check()
async def check_identity_update_duplicate_is_redacted(make: StoreFactory) -> None:
    """An identity store's update that duplicates an e-mail fails without showing the value."""
    store = await _identity_store(make, "identity_update")
    await seed(store, [{"_id": "pseu_second", "email": "other@example.org"}])
    # The error's type is update_duplicate_key_raises_write_failed's business; here, its text.
    failed = await failure_of(
        store.execute(
            Update(SIDE, {"_id": "pseu_second"}, {"$set": {"email": _EMAIL}}, False, False, {})
        )
    )
    _assert_no_value(failed, _EMAIL)
    assert await fetch_one(store, "pseu_second") == {
        "_id": "pseu_second",
        "email": "other@example.org",
    }


@_check()
async def check_identity_operator_error_is_redacted(make: StoreFactory) -> None:
    """An identity store's failed update names neither the stored value nor the row's ``_id``."""
    store = await _identity_store(make, "identity_operator")
    # The error's type is update_operator_errors_raise_write_failed's business; here, its text.
    failed = await failure_of(
        store.execute(
            Update(SIDE, {"_id": "pseu_first"}, {"$inc": {"first_name": 1}}, False, False, {})
        )
    )
    _assert_no_value(failed, _NAME, "pseu_first")


CHECKS = _check.checks
