"""The storage port contract: the checks every ``DocumentStore`` adapter passes.

privata's drivers talk to storage only through the ports in ``privata_mongo.ports.storage``.
An application that brings its own adapter (another driver, a cache in front of pymongo, a
test double) proves it here: each check below drives one store through plain data and asserts
what the drivers rely on — batch sizes and exhaustion, counts of matched and modified
documents, write failures reported as data (``InsertOutcome``) or as
``core.failures.WriteFailed`` with the server's code, and identity stores that never put a
stored value into an error. The checks need nothing but the store: no pytest, no event loop
of their own.

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

import datetime
import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from privata_mongo.core.failures import DUPLICATE_KEY, TYPE_MISMATCH, WriteFailed, WriteFailure
from privata_mongo.core.ops import (
    Aggregate,
    Count,
    CreateIndex,
    Delete,
    Distinct,
    Document,
    Drop,
    DropIndex,
    EstimatedCount,
    Explain,
    Find,
    FindAndModify,
    IndexInformation,
    Insert,
    InsertOutcome,
    Op,
    Query,
    Replace,
    ReplaceMany,
    Update,
)
from privata_mongo.core.schema import Side
from privata_mongo.ports.storage import (
    CURSOR_OPS,
    AsyncBatchCursor,
    AsyncDocumentStore,
    BatchCursor,
    DocumentStore,
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

R = TypeVar("R")
_SIDE = Side.CLINICAL  # a store serves one collection: the side a request names is the caller's

FEATURES: Mapping[str, str] = {
    "find_and_modify_projection": "a projection on find-and-modify (findAndModify's fields)",
    "duplicate_key_on_update": "an update that violates a unique index fails with code 11000",
    "explain": "a query plan for a find (the explain command)",
    "typed_update_errors": "an impossible update operator fails as a write error with the "
    "server's code (e.g. $inc on a string: TypeMismatch, 14)",
}
"""Capabilities some checks need, by name: what a backend may declare that it lacks."""


class StoreFactory(Protocol):
    """Builds the store under test for one collection of the caller's database.

    ``identity=True`` asks for a store serving an identity collection: one that keeps every
    stored value out of its errors. Sync (``DocumentStore``) and async stores are both fine.
    """

    def __call__(self, name: str, /, *, identity: bool) -> DocumentStore | AsyncDocumentStore:
        """The store for collection ``name`` (an identity store when ``identity``)."""


CheckFunction = Callable[[StoreFactory], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Check:
    """One property of the port, checked against stores from a factory.

    Attributes:
        name: the check's identifier (its function's name without ``check_``).
        function: the coroutine function that makes its stores and asserts.
        requires: ``FEATURES`` the check needs from the backend.
    """

    name: str
    function: CheckFunction = field(repr=False)
    requires: frozenset[str] = frozenset()

    @property
    def description(self) -> str:
        """What the check asserts (the first line of its docstring)."""
        return (inspect.getdoc(self.function) or self.name).splitlines()[0]

    async def __call__(self, make: StoreFactory) -> None:
        """Run the check; a broken promise raises ``AssertionError`` (or the adapter's error)."""
        await self.function(make)

    def __str__(self) -> str:
        return self.name


class ContractViolation(AssertionError):
    """Raised by ``verify``: one or more checks failed; ``failures`` maps names to errors."""

    def __init__(self, failures: Mapping[str, BaseException]) -> None:
        self.failures = dict(failures)
        lines = [f"{name}: {type(exc).__name__}: {exc}" for name, exc in self.failures.items()]
        super().__init__(
            f"{len(lines)} storage contract check(s) failed:\n" + "\n".join(sorted(lines))
        )


_REGISTRY: list[Check] = []


def _check(*requires: str) -> Callable[[CheckFunction], CheckFunction]:
    unknown = set(requires) - set(FEATURES)
    if unknown:  # pragma: no cover - a typo in this module
        raise ValueError(f"unknown features {sorted(unknown)}")

    def register(function: CheckFunction) -> CheckFunction:
        name = function.__name__.removeprefix("check_")
        _REGISTRY.append(Check(name, function, frozenset(requires)))
        return function

    return register


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
        error = await _error_of(check(make))
        if error is not None:
            failures[check.name] = error
    if failures:
        raise ContractViolation(failures)


# -- sync stores, awaited -------------------------------------------------------------------------


class _AwaitedCursor:
    """A sync ``BatchCursor`` behind the async interface (test-only: it blocks the loop)."""

    def __init__(self, cursor: BatchCursor) -> None:
        self._cursor = cursor

    async def next_batch(self, size: int, /) -> list[Document]:
        return self._cursor.next_batch(size)

    async def close(self) -> None:
        self._cursor.close()


class _AwaitedStore:
    """A sync ``DocumentStore`` behind the async interface (test-only: it blocks the loop)."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    def __repr__(self) -> str:
        return f"awaited({self._store!r})"

    async def execute(self, op: Op[R], /) -> R:
        result = self._store.execute(op)
        if isinstance(op, CURSOR_OPS):
            return cast(R, _AwaitedCursor(cast(BatchCursor, result)))
        return result


def _awaitable(store: DocumentStore | AsyncDocumentStore) -> AsyncDocumentStore:
    if inspect.iscoroutinefunction(store.execute):
        return cast(AsyncDocumentStore, store)
    return _AwaitedStore(cast(DocumentStore, store))


async def _fresh(make: StoreFactory, name: str, *, identity: bool = False) -> AsyncDocumentStore:
    """The factory's store for ``name``, emptied first so that a re-run starts clean."""
    store = _awaitable(make(name, identity=identity))
    await store.execute(Drop(_SIDE))
    return store


# -- helpers ----------------------------------------------------------------------------------

_NO_OPTIONS: Mapping[str, Any] = {}


def _people(count: int = 10) -> list[Document]:
    """Plain documents with a few types; ``rank`` repeats so sorts need a tie-breaker."""
    return [
        {
            "_id": i,
            "kind": "a" if i % 3 else "b",
            "rank": (i * 7) % 5,
            "name": f"person {i}",
            "secret": f"s{i}",
        }
        for i in range(count)
    ]


async def _seed(store: AsyncDocumentStore, documents: Sequence[Document]) -> None:
    outcome = await store.execute(Insert(_SIDE, tuple(documents), True))
    assert outcome.failures == (), f"seeding failed: {outcome.failures}"


async def _all(store: AsyncDocumentStore, sort: str = "_id") -> list[Document]:
    cursor = await _open(store, Find(_SIDE, Query({}, sort=((sort, 1),))))
    try:
        return await cursor.next_batch(10_000)
    finally:
        await cursor.close()


async def _ids(store: AsyncDocumentStore, filter: Mapping[str, Any] | None = None) -> list[Any]:
    cursor = await _open(
        store, Find(_SIDE, Query(filter or {}, projection={"_id": 1}, sort=(("_id", 1),)))
    )
    try:
        return [d["_id"] for d in await cursor.next_batch(10_000)]
    finally:
        await cursor.close()


async def _one(store: AsyncDocumentStore, id: Any) -> Document | None:
    cursor = await _open(store, Find(_SIDE, Query({"_id": id})))
    try:
        found = await cursor.next_batch(2)
    finally:
        await cursor.close()
    assert len(found) <= 1, f"two documents with _id {id!r}"
    return found[0] if found else None


async def _drain(cursor: AsyncBatchCursor, size: int) -> list[list[Document]]:
    """Batches of ``size`` until a short one (the port's signal of exhaustion), then close."""
    batches: list[list[Document]] = []
    try:
        while True:
            batch = await cursor.next_batch(size)
            assert len(batch) <= size, f"next_batch({size}) returned {len(batch)} documents"
            batches.append(batch)
            if len(batch) < size:
                return batches
            assert len(batches) < 1_000, "the cursor never signals exhaustion"
    finally:
        await cursor.close()


async def _open(store: AsyncDocumentStore, op: Find | Aggregate) -> AsyncBatchCursor:
    """The cursor a ``Find`` or ``Aggregate`` opens."""
    return cast(AsyncBatchCursor, await store.execute(op))


async def _error_of(call: Awaitable[object]) -> Exception | None:
    """The exception ``call`` raises, or ``None``."""
    try:
        await call
    except Exception as error:  # any error, the adapter's own included
        return error
    return None


async def _failure_of(call: Awaitable[object]) -> Exception:
    """The exception ``call`` must raise."""
    error = await _error_of(call)
    if error is None:
        raise AssertionError("the call succeeded; it should have failed")
    return error


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


# -- DocumentReader -----------------------------------------------------------------------------


@_check()
async def check_find_reads_in_batches(make: StoreFactory) -> None:
    """``next_batch(n)`` returns n documents until the last, short batch, across server batches."""
    store = await _fresh(make, "find_reads_in_batches")
    await _seed(store, _people(7))
    # A server batch size (2) smaller than the reads (3): the cursor fetches more as needed.
    cursor = await _open(store, Find(_SIDE, Query({}, sort=(("_id", 1),), batch_size=2)))
    batches = await _drain(cursor, 3)
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [d["_id"] for b in batches for d in b] == list(range(7))
    assert batches[0][0] == _people(7)[0]


@_check()
async def check_find_signals_exhaustion_with_an_empty_batch(make: StoreFactory) -> None:
    """When the documents fill whole batches, the next batch is empty; so is an empty find."""
    store = await _fresh(make, "find_exhaustion")
    cursor = await _open(store, Find(_SIDE, Query({})))
    assert await _drain(cursor, 4) == [[]]
    await _seed(store, _people(6))
    cursor = await _open(store, Find(_SIDE, Query({}, sort=(("_id", 1),))))
    assert [len(b) for b in await _drain(cursor, 3)] == [3, 3, 0]
    cursor = await _open(store, Find(_SIDE, Query({"kind": "nobody"})))
    assert await _drain(cursor, 3) == [[]]


@_check()
async def check_find_filters_sorts_skips_and_limits(make: StoreFactory) -> None:
    """Filter, a two-key sort, skip and limit select exactly what the server would."""
    store = await _fresh(make, "find_query")
    people = _people(12)
    await _seed(store, people)
    wanted = sorted((p for p in people if p["kind"] == "a"), key=lambda p: (-p["rank"], p["_id"]))
    query = Query({"kind": "a"}, sort=(("rank", -1), ("_id", 1)), skip=1, limit=4)
    found = [d for b in await _drain(await _open(store, Find(_SIDE, query)), 2) for d in b]
    assert found == wanted[1:5]
    everything = [
        d for b in await _drain(await _open(store, Find(_SIDE, Query({}, skip=10))), 5) for d in b
    ]
    assert len(everything) == 2
    limited = Query({"rank": {"$gte": 2}}, sort=(("_id", -1),), limit=2, batch_size=1)
    found = [d for b in await _drain(await _open(store, Find(_SIDE, limited)), 10) for d in b]
    assert [d["_id"] for d in found] == [p["_id"] for p in people if p["rank"] >= 2][::-1][:2]


@_check()
async def check_find_projects(make: StoreFactory) -> None:
    """Inclusion, inclusion without ``_id``, and exclusion projections shape each document."""
    store = await _fresh(make, "find_projection")
    await _seed(store, _people(3))
    cases: list[tuple[Mapping[str, Any], set[str]]] = [
        ({"name": 1}, {"_id", "name"}),
        ({"name": 1, "rank": 1, "_id": 0}, {"name", "rank"}),
        ({"secret": 0, "kind": 0}, {"_id", "rank", "name"}),
    ]
    for projection, keys in cases:
        query = Query({}, projection=projection, sort=(("_id", 1),))
        (batch,) = await _drain(await _open(store, Find(_SIDE, query)), 5)
        assert [set(d) for d in batch] == [keys] * 3, projection
    (batch,) = await _drain(
        await _open(store, Find(_SIDE, Query({"_id": 2}, projection={"name": 1}))), 5
    )
    assert batch == [{"_id": 2, "name": "person 2"}]


@_check()
async def check_cursor_closes_before_exhaustion(make: StoreFactory) -> None:
    """A cursor closed early (or never read) releases without error; the store stays usable."""
    store = await _fresh(make, "cursor_close")
    await _seed(store, _people(10))
    cursor = await _open(store, Find(_SIDE, Query({}, sort=(("_id", 1),), batch_size=2)))
    assert len(await cursor.next_batch(3)) == 3
    await cursor.close()
    unread = await _open(store, Find(_SIDE, Query({}, batch_size=2)))
    await unread.close()
    assert await store.execute(Count(_SIDE, {}, _NO_OPTIONS)) == 10


@_check()
async def check_count_honours_skip_and_limit(make: StoreFactory) -> None:
    """``count`` counts matches, after the ``skip`` and ``limit`` options; 0 for no collection."""
    store = await _fresh(make, "count")
    assert await store.execute(Count(_SIDE, {}, _NO_OPTIONS)) == 0
    people = _people(10)
    await _seed(store, people)
    kind_a = sum(1 for p in people if p["kind"] == "a")
    assert await store.execute(Count(_SIDE, {}, _NO_OPTIONS)) == 10
    assert await store.execute(Count(_SIDE, {"kind": "a"}, _NO_OPTIONS)) == kind_a
    assert await store.execute(Count(_SIDE, {"kind": "a"}, {"skip": 2})) == kind_a - 2
    assert await store.execute(Count(_SIDE, {}, {"limit": 3})) == 3
    assert await store.execute(Count(_SIDE, {}, {"skip": 8, "limit": 5})) == 2
    assert await store.execute(Count(_SIDE, {}, {"skip": 20})) == 0
    assert await store.execute(Count(_SIDE, {"kind": "nobody"}, _NO_OPTIONS)) == 0


@_check()
async def check_distinct_lists_values_once(make: StoreFactory) -> None:
    """``distinct`` returns each value once, for the documents the filter matches."""
    store = await _fresh(make, "distinct")
    assert await store.execute(Distinct(_SIDE, "kind", {}, _NO_OPTIONS)) == []
    people = _people(10)
    await _seed(store, people)
    assert sorted(await store.execute(Distinct(_SIDE, "kind", {}, _NO_OPTIONS))) == ["a", "b"]
    ranks = await store.execute(Distinct(_SIDE, "rank", {"kind": "a"}, _NO_OPTIONS))
    assert sorted(ranks) == sorted({p["rank"] for p in people if p["kind"] == "a"})
    assert await store.execute(Distinct(_SIDE, "missing", {}, _NO_OPTIONS)) == []


# -- DocumentAnalytics -----------------------------------------------------------------------------


@_check()
async def check_aggregate_reads_in_batches(make: StoreFactory) -> None:
    """A pipeline's results come through ``next_batch`` like a find's, in the pipeline's order."""
    store = await _fresh(make, "aggregate")
    people = _people(10)
    await _seed(store, people)
    pipeline: list[Mapping[str, Any]] = [
        {"$match": {"rank": {"$gte": 1}}},
        {"$group": {"_id": "$rank", "n": {"$sum": 1}}},
        {"$sort": {"_id": 1}},
    ]
    expected: dict[int, int] = {}
    for p in people:
        if p["rank"] >= 1:
            expected[p["rank"]] = expected.get(p["rank"], 0) + 1
    batches = await _drain(
        await _open(store, Aggregate(_SIDE, tuple(pipeline), {"batchSize": 1})), 3
    )
    assert [len(b) for b in batches] == [3, 1]
    assert [(d["_id"], d["n"]) for b in batches for d in b] == sorted(expected.items())
    shaped: list[Mapping[str, Any]] = [
        {"$sort": {"_id": -1}},
        {"$skip": 2},
        {"$limit": 3},
        {"$project": {"name": 1, "_id": 0}},
    ]
    (batch,) = await _drain(await _open(store, Aggregate(_SIDE, tuple(shaped), _NO_OPTIONS)), 10)
    assert batch == [{"name": f"person {i}"} for i in (7, 6, 5)]
    empty = await _open(store, Aggregate(_SIDE, ({"$match": {"kind": "nobody"}},), _NO_OPTIONS))
    assert await _drain(empty, 2) == [[]]


@_check()
async def check_estimated_count(make: StoreFactory) -> None:
    """``estimated_count`` is the collection's size (exact when nothing else writes)."""
    store = await _fresh(make, "estimated_count")
    assert await store.execute(EstimatedCount(_SIDE, _NO_OPTIONS)) == 0
    await _seed(store, _people(4))
    assert await store.execute(EstimatedCount(_SIDE, _NO_OPTIONS)) == 4


@_check("explain")
async def check_explain_returns_a_plan(make: StoreFactory) -> None:
    """``explain`` returns the server's plan as a non-empty mapping."""
    store = await _fresh(make, "explain")
    await _seed(store, _people(3))
    plan = await store.execute(Explain(_SIDE, Query({"kind": "a"}, sort=(("_id", 1),), limit=2)))
    assert isinstance(plan, Mapping)
    assert plan


# -- DocumentWriter -------------------------------------------------------------------------------


@_check()
async def check_insert_stores_documents_as_given(make: StoreFactory) -> None:
    """Inserted documents read back equal, with their values and types; empty inserts are no-ops."""
    store = await _fresh(make, "insert")
    documents: list[Document] = [
        {
            "_id": "one",
            "text": "x",
            "int": 3,
            "float": 2.5,
            "flag": True,
            "nothing": None,
            "list": [1, "two", {"three": 3}],
            "nested": {"a": {"b": [True]}},
            "when": datetime.datetime(2024, 5, 17, 10, 30, 0, 123000),
        },
        {"_id": 2, "text": "y"},
    ]
    assert await store.execute(Insert(_SIDE, tuple(documents), True)) == InsertOutcome()
    assert await store.execute(Insert(_SIDE, (), True)) == InsertOutcome()
    assert await store.execute(Insert(_SIDE, (), False)) == InsertOutcome()
    stored = {d["_id"]: d for d in await _all(store)}
    assert stored == {"one": documents[0], 2: documents[1]}


@_check()
async def check_insert_ordered_stops_at_a_duplicate(make: StoreFactory) -> None:
    """Ordered: a duplicate ``_id`` is reported (index, code 11000), not raised; later ones wait."""
    store = await _fresh(make, "insert_ordered")
    await _seed(store, [{"_id": 1, "v": "old"}])
    outcome = await store.execute(
        Insert(_SIDE, ({"_id": 10}, {"_id": 1, "v": "new"}, {"_id": 11}), True)
    )
    assert isinstance(outcome, InsertOutcome)
    assert [(f.index, f.code) for f in outcome.failures] == [(1, DUPLICATE_KEY)]
    assert outcome.failed() == {1}
    assert all(isinstance(f, WriteFailure) for f in outcome.failures)
    assert await _ids(store) == [1, 10]
    assert await _one(store, 1) == {"_id": 1, "v": "old"}


@_check()
async def check_insert_unordered_writes_all_but_the_duplicates(make: StoreFactory) -> None:
    """Unordered: every duplicate is reported by index with code 11000; the rest are written."""
    store = await _fresh(make, "insert_unordered")
    await _seed(store, [{"_id": 1}, {"_id": 2}])
    batch: list[Document] = [{"_id": 20}, {"_id": 1}, {"_id": 21}, {"_id": 2}, {"_id": 21}]
    outcome = await store.execute(Insert(_SIDE, tuple(batch), False))
    assert sorted((f.index, f.code) for f in outcome.failures) == [
        (1, DUPLICATE_KEY),
        (3, DUPLICATE_KEY),
        (4, DUPLICATE_KEY),
    ]
    assert await _ids(store) == [1, 2, 20, 21]


@_check()
async def check_update_one_and_many(make: StoreFactory) -> None:
    """``update`` reports matched and modified counts; ``multi`` decides how many change."""
    store = await _fresh(make, "update")
    people = _people(9)
    await _seed(store, people)
    kind_a = [p["_id"] for p in people if p["kind"] == "a"]
    one = await store.execute(
        Update(_SIDE, {"kind": "a"}, {"$set": {"seen": True}}, False, False, _NO_OPTIONS)
    )
    assert (one.matched, one.modified, one.upserted_id) == (1, 1, None)
    many = await store.execute(
        Update(_SIDE, {"kind": "a"}, {"$set": {"seen": True}}, True, False, _NO_OPTIONS)
    )
    assert (many.matched, many.modified) == (len(kind_a), len(kind_a) - 1)
    assert await _ids(store, {"seen": True}) == kind_a
    bump = await store.execute(
        Update(_SIDE, {"_id": 0}, {"$inc": {"rank": 10}}, False, False, _NO_OPTIONS)
    )
    assert (bump.matched, bump.modified) == (1, 1)
    assert (await _one(store, 0) or {}).get("rank") == people[0]["rank"] + 10
    none = await store.execute(
        Update(_SIDE, {"kind": "nobody"}, {"$set": {"x": 1}}, True, False, _NO_OPTIONS)
    )
    assert (none.matched, none.modified, none.upserted_id) == (0, 0, None)


@_check()
async def check_update_upserts(make: StoreFactory) -> None:
    """An upsert that matches nothing inserts and reports the new ``_id`` as ``upserted_id``."""
    store = await _fresh(make, "update_upsert")
    given = await store.execute(
        Update(_SIDE, {"_id": "u1"}, {"$set": {"v": 1}}, False, True, _NO_OPTIONS)
    )
    assert (given.matched, given.modified, given.upserted_id) == (0, 0, "u1")
    assert await _one(store, "u1") == {"_id": "u1", "v": 1}
    made = await store.execute(
        Update(_SIDE, {"key": "k"}, {"$set": {"v": 2}}, True, True, _NO_OPTIONS)
    )
    assert made.matched == 0
    assert made.upserted_id is not None
    assert await _one(store, made.upserted_id) == {"_id": made.upserted_id, "key": "k", "v": 2}
    again = await store.execute(
        Update(_SIDE, {"key": "k"}, {"$set": {"v": 3}}, False, True, _NO_OPTIONS)
    )
    assert (again.matched, again.modified, again.upserted_id) == (1, 1, None)
    assert await store.execute(Count(_SIDE, {}, _NO_OPTIONS)) == 2


@_check("typed_update_errors")
async def check_update_operator_errors_raise_write_failed(make: StoreFactory) -> None:
    """An impossible update raises ``WriteFailed`` with the server's code; nothing changes."""
    store = await _fresh(make, "update_operator_error")
    await _seed(store, [{"_id": 1, "name": "text", "n": 1}])
    failed = await _failure_of(
        store.execute(Update(_SIDE, {"_id": 1}, {"$inc": {"name": 1}}, False, False, _NO_OPTIONS))
    )
    assert isinstance(failed, WriteFailed), repr(failed)
    assert failed.code == TYPE_MISMATCH, repr(failed)
    assert await _one(store, 1) == {"_id": 1, "name": "text", "n": 1}


@_check("duplicate_key_on_update")
async def check_update_duplicate_key_raises_write_failed(make: StoreFactory) -> None:
    """An update that breaks a unique index raises ``WriteFailed`` with code 11000."""
    store = await _fresh(make, "update_duplicate")
    await store.execute(CreateIndex(_SIDE, (("email", 1),), {"unique": True}))
    await _seed(store, [{"_id": 1, "email": "a@x"}, {"_id": 2, "email": "b@x"}])
    failed = await _failure_of(
        store.execute(
            Update(_SIDE, {"_id": 2}, {"$set": {"email": "a@x"}}, False, False, _NO_OPTIONS)
        )
    )
    assert isinstance(failed, WriteFailed), repr(failed)
    assert failed.code == DUPLICATE_KEY, repr(failed)
    assert await _one(store, 2) == {"_id": 2, "email": "b@x"}


@_check()
async def check_delete_one_and_many(make: StoreFactory) -> None:
    """``delete`` returns how many documents went: one, all matching, or none."""
    store = await _fresh(make, "delete")
    people = _people(9)
    await _seed(store, people)
    kind_a = sum(1 for p in people if p["kind"] == "a")
    assert await store.execute(Delete(_SIDE, {"kind": "a"}, False, _NO_OPTIONS)) == 1
    assert await store.execute(Delete(_SIDE, {"kind": "a"}, True, _NO_OPTIONS)) == kind_a - 1
    assert await store.execute(Delete(_SIDE, {"kind": "a"}, True, _NO_OPTIONS)) == 0
    assert await store.execute(Delete(_SIDE, {"kind": "nobody"}, False, _NO_OPTIONS)) == 0
    assert await store.execute(Count(_SIDE, {}, _NO_OPTIONS)) == 9 - kind_a


# -- DocumentModifier ------------------------------------------------------------------------------


@_check()
async def check_replace_swaps_the_whole_document(make: StoreFactory) -> None:
    """``replace`` keeps ``_id`` and nothing else of the old document; upserts report the id."""
    store = await _fresh(make, "replace")
    await _seed(store, [{"_id": 1, "a": 1, "b": 2}])
    done = await store.execute(Replace(_SIDE, {"_id": 1}, {"c": 3}, False, _NO_OPTIONS))
    assert (done.matched, done.modified, done.upserted_id) == (1, 1, None)
    assert await _one(store, 1) == {"_id": 1, "c": 3}
    missed = await store.execute(Replace(_SIDE, {"_id": 2}, {"c": 4}, False, _NO_OPTIONS))
    assert (missed.matched, missed.modified, missed.upserted_id) == (0, 0, None)
    assert await _one(store, 2) is None
    upserted = await store.execute(Replace(_SIDE, {"_id": 3}, {"c": 5}, True, _NO_OPTIONS))
    assert (upserted.matched, upserted.upserted_id) == (0, 3)
    assert await _one(store, 3) == {"_id": 3, "c": 5}


@_check()
async def check_replace_many_compares_and_swaps(make: StoreFactory) -> None:
    """``replace_many`` counts the filters that matched; a stale filter replaces nothing."""
    store = await _fresh(make, "replace_many")
    assert await store.execute(ReplaceMany(_SIDE, ())) == 0
    await _seed(store, [{"_id": i, "version": 1, "v": "old"} for i in range(4)])
    pairs: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = [
        ({"_id": 0, "version": 1}, {"version": 2, "v": "new"}),
        ({"_id": 1, "version": 1}, {"version": 2, "v": "new"}),
        ({"_id": 2, "version": 7}, {"version": 8, "v": "lost"}),  # stale: no longer matches
    ]
    assert await store.execute(ReplaceMany(_SIDE, tuple(pairs))) == 2
    stored = {d["_id"]: d for d in await _all(store)}
    assert [stored[i] for i in (0, 1)] == [{"_id": i, "version": 2, "v": "new"} for i in (0, 1)]
    assert [stored[i] for i in (2, 3)] == [{"_id": i, "version": 1, "v": "old"} for i in (2, 3)]
    # Two writers racing on one version: exactly one of them wins.
    racing: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = [
        ({"_id": 3, "version": 1}, {"version": 2, "v": "first"}),
        ({"_id": 3, "version": 1}, {"version": 2, "v": "second"}),
    ]
    assert await store.execute(ReplaceMany(_SIDE, tuple(racing))) == 1
    assert (await _one(store, 3) or {}).get("v") in {"first", "second"}


@_check()
async def check_find_and_modify_updates(make: StoreFactory) -> None:
    """Update returns the document before or after, picks by ``sort``, and upserts."""
    store = await _fresh(make, "fam_update")
    await _seed(store, [{"_id": i, "kind": "a", "n": i} for i in range(3)])
    before = await store.execute(
        FindAndModify(
            _SIDE,
            "update",
            {"kind": "a"},
            {"$inc": {"n": 10}},
            (("n", -1),),
            False,
            False,
            None,
            _NO_OPTIONS,
        )
    )
    assert before == {"_id": 2, "kind": "a", "n": 2}
    after = await store.execute(
        FindAndModify(
            _SIDE,
            "update",
            {"kind": "a"},
            {"$inc": {"n": 10}},
            (("n", 1),),
            False,
            True,
            None,
            _NO_OPTIONS,
        )
    )
    assert after == {"_id": 0, "kind": "a", "n": 10}
    missing = await store.execute(
        FindAndModify(
            _SIDE, "update", {"kind": "b"}, {"$set": {"n": 0}}, (), False, True, None, _NO_OPTIONS
        )
    )
    assert missing is None
    quiet = await store.execute(
        FindAndModify(
            _SIDE, "update", {"_id": 7}, {"$set": {"n": 7}}, (), True, False, None, _NO_OPTIONS
        )
    )
    assert quiet is None
    assert await _one(store, 7) == {"_id": 7, "n": 7}
    created = await store.execute(
        FindAndModify(
            _SIDE, "update", {"_id": 8}, {"$set": {"n": 8}}, (), True, True, None, _NO_OPTIONS
        )
    )
    assert created == {"_id": 8, "n": 8}


@_check()
async def check_find_and_modify_replaces_and_deletes(make: StoreFactory) -> None:
    """Replace returns the old or new document and upserts; delete returns what it removed."""
    store = await _fresh(make, "fam_replace_delete")
    await _seed(store, [{"_id": i, "kind": "a", "n": i} for i in range(3)])
    old = await store.execute(
        FindAndModify(
            _SIDE, "replace", {"_id": 1}, {"fresh": True}, (), False, False, None, _NO_OPTIONS
        )
    )
    assert old == {"_id": 1, "kind": "a", "n": 1}
    new = await store.execute(
        FindAndModify(
            _SIDE, "replace", {"_id": 1}, {"fresh": 2}, (), False, True, None, _NO_OPTIONS
        )
    )
    assert new == {"_id": 1, "fresh": 2}
    upserted = await store.execute(
        FindAndModify(_SIDE, "replace", {"_id": 5}, {"v": 5}, (), True, True, None, _NO_OPTIONS)
    )
    assert upserted == {"_id": 5, "v": 5}
    gone = await store.execute(
        FindAndModify(
            _SIDE, "delete", {"kind": "a"}, None, (("n", -1),), False, False, None, _NO_OPTIONS
        )
    )
    assert gone == {"_id": 2, "kind": "a", "n": 2}
    assert await _ids(store) == [0, 1, 5]
    nothing = await store.execute(
        FindAndModify(
            _SIDE, "delete", {"kind": "nobody"}, None, (), False, False, None, _NO_OPTIONS
        )
    )
    assert nothing is None


@_check("find_and_modify_projection")
async def check_find_and_modify_projects(make: StoreFactory) -> None:
    """A projection shapes the document find-and-modify returns (not what it stores)."""
    store = await _fresh(make, "fam_projection")
    await _seed(store, [{"_id": 1, "a": 1, "b": 2}])
    found = await store.execute(
        FindAndModify(
            _SIDE, "update", {"_id": 1}, {"$set": {"a": 5}}, (), False, True, {"a": 1}, _NO_OPTIONS
        )
    )
    assert found == {"_id": 1, "a": 5}
    gone = await store.execute(
        FindAndModify(
            _SIDE, "delete", {"_id": 1}, None, (), False, False, {"b": 1, "_id": 0}, _NO_OPTIONS
        )
    )
    assert gone == {"b": 2}


# -- CollectionAdmin -------------------------------------------------------------------------------


@_check()
async def check_create_index_names_and_enforces(make: StoreFactory) -> None:
    """``create_index`` returns the index name; a unique index rejects duplicates afterwards."""
    store = await _fresh(make, "create_index")
    assert await store.execute(CreateIndex(_SIDE, (("rank", 1),), _NO_OPTIONS)) == "rank_1"
    assert (
        await store.execute(CreateIndex(_SIDE, (("kind", 1), ("rank", -1)), _NO_OPTIONS))
        == "kind_1_rank_-1"
    )
    unique = await store.execute(
        CreateIndex(_SIDE, (("email", 1),), {"unique": True, "name": "by_email"})
    )
    assert unique == "by_email"
    info = await store.execute(IndexInformation(_SIDE))
    assert set(info) == {"_id_", "rank_1", "kind_1_rank_-1", "by_email"}
    assert [tuple(k) for k in info["kind_1_rank_-1"]["key"]] == [("kind", 1), ("rank", -1)]
    assert info["by_email"].get("unique") is True
    await _seed(store, [{"_id": 1, "email": "a@x"}])
    outcome = await store.execute(
        Insert(_SIDE, ({"_id": 2, "email": "a@x"}, {"_id": 3, "email": "c@x"}), False)
    )
    assert [(f.index, f.code) for f in outcome.failures] == [(0, DUPLICATE_KEY)]
    assert await _ids(store) == [1, 3]


@_check()
async def check_drop_index_by_name_and_all(make: StoreFactory) -> None:
    """``drop_index(name)`` drops one index; ``drop_index("*")`` all but ``_id_``."""
    store = await _fresh(make, "drop_index")
    await _seed(store, _people(2))
    for keys in ([("rank", 1)], [("kind", 1)], [("name", -1)]):
        await store.execute(CreateIndex(_SIDE, tuple(keys), _NO_OPTIONS))
    await store.execute(DropIndex(_SIDE, "kind_1"))
    assert set(await store.execute(IndexInformation(_SIDE))) == {"_id_", "rank_1", "name_-1"}
    await store.execute(DropIndex(_SIDE, "*"))
    assert set(await store.execute(IndexInformation(_SIDE))) == {"_id_"}
    assert await store.execute(Count(_SIDE, {}, _NO_OPTIONS)) == 2


@_check()
async def check_index_information_of_a_missing_collection(make: StoreFactory) -> None:
    """``index_information`` is an empty mapping for a collection that does not exist."""
    store = await _fresh(make, "index_information_missing")
    assert await store.execute(IndexInformation(_SIDE)) == {}


@_check()
async def check_drop_removes_documents_and_indexes(make: StoreFactory) -> None:
    """``drop`` removes the collection with its indexes; dropping a missing one is fine."""
    store = await _fresh(make, "drop")
    await _seed(store, _people(3))
    await store.execute(CreateIndex(_SIDE, (("rank", 1),), _NO_OPTIONS))
    await store.execute(Drop(_SIDE))
    assert await store.execute(Count(_SIDE, {}, _NO_OPTIONS)) == 0
    assert await store.execute(EstimatedCount(_SIDE, _NO_OPTIONS)) == 0
    assert await store.execute(IndexInformation(_SIDE)) == {}
    await store.execute(Drop(_SIDE))
    await _seed(store, _people(1))
    assert set(await store.execute(IndexInformation(_SIDE))) == {"_id_"}


# -- identity stores: no stored value in any error -------------------------------------------------

_EMAIL = "ada.lovelace@example.org"
_NAME = "Ada Lovelace"


async def _identity_store(make: StoreFactory, name: str) -> AsyncDocumentStore:
    store = await _fresh(make, name, identity=True)
    await store.execute(CreateIndex(_SIDE, (("email", 1),), {"unique": True}))
    await _seed(store, [{"_id": "pseu_first", "email": _EMAIL, "first_name": _NAME}])
    return store


@_check()
async def check_identity_insert_duplicate_is_redacted(make: StoreFactory) -> None:
    """An identity store reports a duplicate e-mail with the index, never with the value."""
    store = await _identity_store(make, "identity_insert")
    for ordered in (True, False):
        outcome = await store.execute(
            Insert(
                _SIDE,
                ({"_id": "pseu_second", "email": _EMAIL, "first_name": "Other"},),
                ordered,
            )
        )
        assert [(f.index, f.code) for f in outcome.failures] == [(0, DUPLICATE_KEY)]
        _assert_no_value(outcome, _EMAIL)
    assert await _ids(store) == ["pseu_first"]


@_check()
async def check_identity_update_duplicate_is_redacted(make: StoreFactory) -> None:
    """An identity store's update that duplicates an e-mail fails without showing the value."""
    store = await _identity_store(make, "identity_update")
    await _seed(store, [{"_id": "pseu_second", "email": "other@example.org"}])
    # The error's type is update_duplicate_key_raises_write_failed's business; here, its text.
    failed = await _failure_of(
        store.execute(
            Update(_SIDE, {"_id": "pseu_second"}, {"$set": {"email": _EMAIL}}, False, False, {})
        )
    )
    _assert_no_value(failed, _EMAIL)
    assert await _one(store, "pseu_second") == {"_id": "pseu_second", "email": "other@example.org"}


@_check()
async def check_identity_operator_error_is_redacted(make: StoreFactory) -> None:
    """An identity store's failed update names neither the stored value nor the row's ``_id``."""
    store = await _identity_store(make, "identity_operator")
    # The error's type is update_operator_errors_raise_write_failed's business; here, its text.
    failed = await _failure_of(
        store.execute(
            Update(_SIDE, {"_id": "pseu_first"}, {"$inc": {"first_name": 1}}, False, False, {})
        )
    )
    _assert_no_value(failed, _NAME, "pseu_first")


CHECKS: tuple[Check, ...] = tuple(_REGISTRY)
"""Every check, in the order of the port's protocols."""
