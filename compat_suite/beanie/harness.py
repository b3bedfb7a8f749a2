"""Run one Beanie scenario on native ``beanie`` and on ``privata_mongo.beanie``, and compare.

The async twin of ``compat_suite.harness``: a scenario is ``async def scenario(odm, models)
-> observation``, where ``odm`` is the module an application imports and ``models`` are the
document classes a factory defined with it. Each run gets a fresh database of the backend (the
embedded async adapter over its own mongomock store, or ``pymongo.AsyncMongoClient`` on a
server), fresh model classes, ``await odm.init_beanie(database=..., document_models=...)``, and
clean global state: Beanie's ``DocsRegistry`` (forward references by class name), its
``ActionRegistry`` (event actions by class) and privata's registry of Beanie classes (schemas by
collection) hold only this run's classes while it lasts.

Observations are normalised and compared exactly as in the mongoengine half (``normalise``,
``assert_nontrivial``, ``error_name``; ``@differs`` pins a documented difference). After each
wrapped run the raw storage is scanned: no classified value may be stored in plaintext
(``testkit.storage_scan``). The wrapped run must really go through the wrapper: Beanie must
hold privata's split collection for every model with identity fields, and the raw database must
show their ``__identity`` collections.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

import mongomock
import pymongo
from mongomock.store import ServerStore

from compat_suite.harness import (
    Difference,
    assert_nontrivial,
    drop_databases,
    error_name,
    normalise,
)
from privata_mongo.embedded import AsyncMockClient
from testkit.backends import Backend, fresh_db_name
from testkit.storage_scan import plaintext_leaks

__all__ = [
    "NATIVE_BEANIE",
    "WRAPPED_BEANIE",
    "BeanieCompat",
    "BeanieRun",
    "document_models",
    "outcome",
    "raised",
    "scenario",
]

NATIVE_BEANIE = "beanie"

# The module an application imports instead of beanie: the side that must match native.
WRAPPED_BEANIE = "privata_mongo.beanie"

IDENTITY_SUFFIX = "__identity"

M = TypeVar("M")
ModelFactory = Callable[[ModuleType], M]
AsyncScenario = Callable[[ModuleType, M], Awaitable[Mapping[str, Any]]]


# ---------------------------------------------------------------------------------------------
# Observing awaitables
# ---------------------------------------------------------------------------------------------


async def raised(action: Callable[[], Awaitable[object]]) -> str | None:
    """The name of the exception awaiting ``action()`` raises (``None`` when it returns)."""
    try:
        await action()
    except Exception as exc:
        return error_name(exc)
    return None


async def outcome(action: Callable[[], Awaitable[object]]) -> dict[str, Any]:
    """``{"returned": value}`` or ``{"raised": exception name}``, whichever happened."""
    try:
        return {"returned": await action()}
    except Exception as exc:
        return {"raised": error_name(exc)}


# ---------------------------------------------------------------------------------------------
# Models and global state
# ---------------------------------------------------------------------------------------------


def document_models(models: object) -> list[type]:
    """The Beanie document classes a factory returned, in declaration order.

    A factory returns a dataclass (or any object) whose attributes are classes; every subclass
    of ``beanie.Document`` among them goes to ``init_beanie`` (embedded pydantic models do not).
    """
    import beanie

    if dataclasses.is_dataclass(models) and not isinstance(models, type):
        values = [getattr(models, f.name) for f in dataclasses.fields(models)]
    elif isinstance(models, type):
        values = [models]
    else:
        values = list(vars(models).values())
    found = [v for v in values if isinstance(v, type) and issubclass(v, beanie.Document)]
    if not found:
        raise TypeError(f"the model factory returned no Beanie document class: {models!r}")
    return found


@contextlib.contextmanager
def _isolated_beanie_state(classes: list[type]) -> Iterator[None]:
    """Beanie's and privata's class registries hold only this run's classes while it runs.

    Beanie resolves forward references (``Link["Doctor"]``) by bare class name through a global
    ``DocsRegistry`` filled from the models' modules (factory-local classes are not module
    members, so they are registered here), and keeps event actions per class in a global
    ``ActionRegistry``; privata finds a collection's classes through its own registry. A class
    of an earlier run (same name, other fields) must be seen by none of them.
    """
    from beanie.odm.actions import ActionRegistry
    from beanie.odm.registry import DocsRegistry

    from privata_mongo.beanie._describe import REGISTRY

    saved_docs = dict(DocsRegistry._registry)
    saved_privata = dict(REGISTRY._classes)
    bases = {b for cls in classes for b in cls.__mro__ if b.__module__.startswith("beanie.")}
    saved_bases = {base: dict(vars(base)) for base in bases}
    REGISTRY._classes.clear()
    for cls in classes:
        DocsRegistry.register(cls.__name__, cls)
    try:
        yield
    finally:
        for cls in classes:
            ActionRegistry.clean_actions(cls)  # type: ignore[arg-type]
        DocsRegistry._registry.clear()
        DocsRegistry._registry.update(saved_docs)
        REGISTRY._classes.clear()
        REGISTRY._classes.update(saved_privata)
        for base, saved in saved_bases.items():
            _restore_class_attributes(base, saved)


def _restore_class_attributes(cls: type, saved: Mapping[str, Any]) -> None:
    """Undo what ``init_beanie`` set on one of Beanie's own classes.

    Beanie initialises every ``Document`` subclass in a model's MRO, its own
    ``DocumentWithSoftDelete`` included: it replaces that class's field attributes with
    ``ExpressionField``s and gives it a collection. A model class defined afterwards inherits
    ``ExpressionField("_id")`` as the default of ``id`` (Beanie 2.2, native alike: a second
    ``init_beanie`` in one process then fails to insert), so each run leaves the class as found.
    """
    for name in set(vars(cls)) - set(saved):
        delattr(cls, name)
    for name, value in saved.items():
        if vars(cls).get(name, _MISSING) is not value:
            setattr(cls, name, value)


_MISSING = object()


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BeanieRun:
    """What one run produced, and how Beanie reached the data.

    ``collections``: model name → the class of the collection Beanie held for it;
    ``identity_collections``: the ``*__identity`` collections the raw database shows afterwards.
    """

    observation: Any
    collections: Mapping[str, type]
    identity_collections: tuple[str, ...]


@dataclass
class BeanieCompat:
    """Runs Beanie scenarios natively and wrapped against one backend (a test's fixture)."""

    backend: Backend
    native: ModuleType = field(default_factory=lambda: importlib.import_module(NATIVE_BEANIE))
    wrapped: ModuleType = field(default_factory=lambda: importlib.import_module(WRAPPED_BEANIE))
    databases: list[str] = field(default_factory=list)
    store: ServerStore = field(default_factory=ServerStore)

    @contextlib.asynccontextmanager
    async def raw_database(self, name: str) -> AsyncIterator[Any]:
        """A raw async database ``name`` on the backend (pymongo's ``AsyncDatabase`` API)."""
        client: Any
        if self.backend.uri is None:
            client = AsyncMockClient(self.store)
        else:
            client = pymongo.AsyncMongoClient(self.backend.uri)
        try:
            yield client[name]
        finally:
            await client.close()

    def _plaintext_leaks(self, db_name: str) -> list[str]:
        """Where the wrapped run stored a classified value in plaintext (``storage_scan``)."""
        client: Any
        if self.backend.uri is None:
            client = mongomock.MongoClient(_store=self.store)
        else:
            client = pymongo.MongoClient(self.backend.uri)
        try:
            return plaintext_leaks(client, client[db_name])
        finally:
            client.close()

    async def run(
        self, odm: ModuleType, factory: ModelFactory[M], play: AsyncScenario[M]
    ) -> BeanieRun:
        """One run of ``play`` through ``odm`` on a fresh database; the observation normalised."""
        db_name = fresh_db_name("compat")
        self.databases.append(db_name)
        models = factory(odm)
        classes = document_models(models)
        async with self.raw_database(db_name) as database:
            with _isolated_beanie_state(classes):
                await odm.init_beanie(database=database, document_models=classes)
                collections = {c.__name__: type(c.get_pymongo_collection()) for c in classes}
                observation = await play(odm, models)
            names = await database.list_collection_names()
        if odm is self.wrapped and odm is not self.native:
            leaks = await asyncio.to_thread(self._plaintext_leaks, db_name)
            assert not leaks, f"classified values stored in plaintext: {leaks}"
        identity = tuple(sorted(n for n in names if n.endswith(IDENTITY_SUFFIX)))
        return BeanieRun(normalise(observation), collections, identity)

    async def check(self, factory: ModelFactory[M], play: AsyncScenario[M]) -> Any:
        """Run natively, then wrapped; assert both observed the same, non-trivial things.

        A scenario marked ``@differs(row, raises=...)`` pins a documented difference instead:
        the native run observes something, the wrapped run raises exactly that error.
        """
        native = await self.run(self.native, factory, play)
        assert_nontrivial(native.observation)
        assert not native.identity_collections, native.identity_collections
        difference: Difference | None = getattr(play, "difference", None)
        if difference is not None:
            difference.check_documented()
            try:
                await self.run(self.wrapped, factory, play)
            except difference.raises:
                return native.observation
            raise AssertionError(
                f"documented difference {difference.row} is gone: the wrapped run no longer "
                f"raises {difference.raises.__name__}; drop @differs and the docs row"
            )
        wrapped = await self.run(self.wrapped, factory, play)
        if self.wrapped is not self.native:
            _assert_went_through_the_wrapper(native, wrapped)
        assert wrapped.observation == native.observation
        return native.observation

    def drop_databases(self) -> None:
        """Drop every database this fixture's runs created (FerretDB keeps them on disk)."""
        if self.backend.uri is None:
            self.databases.clear()  # mongomock: the store goes with the fixture
            return
        drop_databases(self.backend, self.databases)


def _assert_went_through_the_wrapper(native: BeanieRun, wrapped: BeanieRun) -> None:
    from privata_mongo.proxy.aio_collection import AsyncPrivateCollection

    split = sorted(n for n, t in wrapped.collections.items() if t is AsyncPrivateCollection)
    assert split, (
        f"init_beanie handed Beanie no privata split collection ({wrapped.collections}): "
        "nothing went through the wrapper"
    )
    assert not any(t is AsyncPrivateCollection for t in native.collections.values())
    assert wrapped.identity_collections, (
        f"the wrapped run stored no identity collection (split models: {split})"
    )


def scenario(
    factory: ModelFactory[M],
) -> Callable[[AsyncScenario[M]], Callable[[BeanieCompat], Awaitable[None]]]:
    """Turn ``async def test_x(odm, models) -> observation`` into a test run natively and wrapped.

    The returned coroutine test takes the ``compat_beanie`` fixture; the plain scenario stays
    reachable as ``test_x.scenario`` (and its factory as ``test_x.factory``). Marks
    (``@requires(...)``, ``@differs(...)``) may be put above or below ``@scenario``.
    """

    def decorate(play: AsyncScenario[M]) -> Callable[[BeanieCompat], Awaitable[None]]:
        if not inspect.iscoroutinefunction(play):
            raise TypeError(f"{play.__qualname__}: a Beanie scenario is an async function")

        async def test(compat_beanie: BeanieCompat) -> None:
            await compat_beanie.check(factory, _with_marks(test, play))

        test.__name__ = play.__name__
        test.__qualname__ = play.__qualname__
        test.__module__ = play.__module__
        test.__doc__ = play.__doc__
        marks = getattr(play, "pytestmark", None)
        if marks:
            test.pytestmark = list(marks)  # type: ignore[attr-defined]
        difference = getattr(play, "difference", None)
        if difference is not None:
            test.difference = difference  # type: ignore[attr-defined]
        test.scenario = play  # type: ignore[attr-defined]
        test.factory = factory  # type: ignore[attr-defined]
        return test

    return decorate


def _with_marks(test: object, play: AsyncScenario[M]) -> AsyncScenario[M]:
    """``@differs`` above ``@scenario`` marks the test; hand its difference to the check."""
    difference = getattr(test, "difference", None)
    if difference is not None and getattr(play, "difference", None) is None:
        play.difference = difference  # type: ignore[attr-defined]
    return play
