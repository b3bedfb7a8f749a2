"""Run one scenario on the native ODM and on the wrapped one, and compare what each observed.

A scenario is a plain function ``scenario(me, models) -> observation``: ``me`` is the module an
application imports (``mongoengine`` or ``privata_mongo.mongoengine``), ``models`` are the
document classes a factory defined with that module. The harness runs it twice, each time on a
fresh database of the same backend, with a fresh set of model classes and a clean document
registry, and asserts that the two observations are equal and that they observe something.

Observations are plain data. ObjectIds are replaced by their ordinal of first appearance (two
runs never generate the same ids); everything else (values, order, counts, datetimes, exception
type names) is compared as it is. Exception messages are never observed: the wrapper may
legitimately redact personal data from them.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import enum
import importlib
import re
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import bson

from testkit.backends import Backend, fresh_db_name
from testkit.storage_scan import plaintext_leaks

__all__ = [
    "NATIVE_MONGOENGINE",
    "WRAPPED_MONGOENGINE",
    "Difference",
    "MongoengineCompat",
    "OidRef",
    "assert_nontrivial",
    "differs",
    "drop_databases",
    "error_name",
    "informative_leaves",
    "normalise",
    "outcome",
    "raised",
    "scenario",
]

NATIVE_MONGOENGINE = "mongoengine"

# The module an application imports instead of mongoengine: the side that must match native.
WRAPPED_MONGOENGINE = "privata_mongo.mongoengine"

M = TypeVar("M")
ModelFactory = Callable[[ModuleType], M]
Scenario = Callable[[ModuleType, M], Mapping[str, Any]]

_CONNECTION_ALIAS = "default"  # what applications use; models say nothing about db_alias
_SCALARS = (
    type(None),
    bool,
    int,
    float,
    str,
    bytes,  # bson.Binary included
    datetime.datetime,
    datetime.date,
    decimal.Decimal,
    bson.Decimal128,
    bson.Regex,
    uuid.UUID,
    enum.Enum,
)


# ---------------------------------------------------------------------------------------------
# Observations
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OidRef:
    """The n-th distinct ObjectId of an observation (0-based, in order of first appearance)."""

    n: int

    def __repr__(self) -> str:
        return f"oid#{self.n}"


def normalise(observation: Any) -> Any:
    """Plain, comparable data: each distinct ObjectId becomes an ``OidRef``.

    Mapping keys are visited in sorted order when ordinals are handed out, so two documents that
    differ only in key order get the same ordinals (key order stays in the result, and a scenario
    that cares about it observes ``list(doc)``). Types the harness cannot compare by value
    (documents, querysets, cursors, sets) are refused: a scenario must say what it observes.
    """
    ordinals: dict[bson.ObjectId, int] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, bson.ObjectId):
            return OidRef(ordinals.setdefault(value, len(ordinals)))
        if isinstance(value, bson.DBRef):
            ref = {"$ref": value.collection, "$id": walk(value.id, f"{path}.$id")}
            if value.database is not None:
                ref["$db"] = value.database
            return ref
        if isinstance(value, re.Pattern):
            return bson.Regex(value.pattern, value.flags)
        if isinstance(value, _SCALARS):
            return value
        if isinstance(value, Mapping):
            visited = {
                key: (walk(key, f"{path}[key]"), walk(value[key], f"{path}.{key}"))
                for key in sorted(value, key=lambda k: (type(k).__name__, str(k)))
            }
            return {visited[key][0]: visited[key][1] for key in value}
        if isinstance(value, list | tuple):
            items = [walk(item, f"{path}[{i}]") for i, item in enumerate(value)]
            return items if isinstance(value, list) else tuple(items)
        raise TypeError(
            f"observation{path}: a {type(value).__module__}.{type(value).__qualname__} is not "
            "plain data; observe its values (sets: observe sorted(...); documents: fields)"
        )

    return walk(observation, "")


def informative_leaves(value: Any) -> int:
    """How many leaves of a normalised observation carry information (not None/0/''/False)."""
    if isinstance(value, Mapping):
        return sum(informative_leaves(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(informative_leaves(v) for v in value)
    return 0 if value is None or value is False or value == 0 or value in ("", b"") else 1


def assert_nontrivial(observation: Any, *, minimum: int = 2) -> None:
    """A scenario that observes nothing proves nothing: demand a mapping with real content."""
    assert isinstance(observation, Mapping), (
        f"a scenario returns a mapping of named observations, not {type(observation).__name__}"
    )
    assert observation, "the scenario observed nothing"
    found = informative_leaves(observation)
    assert found >= minimum, (
        f"the scenario observed only {found} informative value(s) (None/0/''/False/empty "
        f"do not count; at least {minimum} needed): {observation!r}"
    )


def error_name(exc: BaseException) -> str:
    """The exception's type and its bases up to ``Exception``, by qualified name.

    Bases matter: ``Patient.DoesNotExist`` is a class made per model, and what an application
    catches is often its base, ``mongoengine.errors.DoesNotExist``.
    """
    names = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in type(exc).__mro__
        if cls not in (Exception, BaseException, object)
    ]
    return " < ".join(names)


def raised(action: Callable[[], object]) -> str | None:
    """The name of the exception ``action`` raises (``None`` when it returns)."""
    try:
        action()
    except Exception as exc:
        return error_name(exc)
    return None


def outcome(action: Callable[[], object]) -> dict[str, Any]:
    """``{"returned": value}`` or ``{"raised": exception name}``, whichever happened."""
    try:
        return {"returned": action()}
    except Exception as exc:
        return {"raised": error_name(exc)}


# ---------------------------------------------------------------------------------------------
# mongoengine runs
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _isolated_registry() -> Iterator[None]:
    """mongoengine's document registry holds only the classes this run defines.

    The registry is global and keyed by class name, and the wrapper finds a collection's models
    through it: a class left over from another test (same name, other fields) must not be seen.
    """
    from mongoengine.base.common import _document_registry

    saved = dict(_document_registry)
    _document_registry.clear()
    try:
        yield
    finally:
        for cls in _document_registry.values():
            if hasattr(cls, "_collection"):
                cls._collection = None  # no cached (proxy) collection outlives its connection
        _document_registry.clear()
        _document_registry.update(saved)


@contextlib.contextmanager
def _isolated_signals() -> Iterator[None]:
    """Receivers connected during the run (a scenario's, CachedReferenceField's auto-sync) are
    disconnected after it: blinker's signals are global and would fire in later runs."""
    from mongoengine import signals

    names = (*signals.__all__, "pre_bulk_insert", "post_bulk_insert")
    every = [getattr(signals, name) for name in names]
    before = [set(signal.receivers) for signal in every]
    try:
        yield
    finally:
        for signal, known in zip(every, before, strict=True):
            for receiver_id in set(signal.receivers) - known:
                ref = signal.receivers[receiver_id]
                receiver = ref() if isinstance(ref, weakref.ref) else ref
                if receiver is not None:
                    signal.disconnect(receiver)


def drop_databases(backend: Backend, names: list[str]) -> None:
    """Drop the databases ``names`` from ``backend`` (through a raw client), and forget them."""
    if names:
        client = backend.client()
        try:
            for name in names:
                client.drop_database(name)
        finally:
            client.close()
    names.clear()


def _assert_no_plaintext(connection: Any, db_name: str) -> None:
    """After a wrapped run: no classified value is stored in plaintext (``storage_scan``)."""
    raw = getattr(connection, "inner", connection)
    leaks = plaintext_leaks(raw, raw[db_name])
    assert not leaks, f"classified values stored in plaintext: {leaks}"


@dataclass
class MongoengineCompat:
    """Runs scenarios on ``native`` and ``wrapped`` against one backend (a test's fixture)."""

    backend: Backend
    native: ModuleType = field(default_factory=lambda: importlib.import_module(NATIVE_MONGOENGINE))
    wrapped: ModuleType = field(
        default_factory=lambda: importlib.import_module(WRAPPED_MONGOENGINE)
    )
    databases: list[str] = field(default_factory=list)

    def run(self, me: ModuleType, factory: ModelFactory[M], play: Scenario[M]) -> RunResult:
        """One run of ``play`` through ``me`` on a fresh database; the observation normalised."""
        db_name = fresh_db_name("compat")
        self.databases.append(db_name)
        # A connection an earlier test left under this alias goes first, while its classes are
        # still registered (so mongoengine detaches their cached collections).
        me.disconnect(_CONNECTION_ALIAS)
        with _isolated_signals(), _isolated_registry():
            me.connect(db=db_name, alias=_CONNECTION_ALIAS, **self.backend.mongoengine_settings())
            try:
                client_type = type(me.get_connection(_CONNECTION_ALIAS))
                observation = play(me, factory(me))
                if me is self.wrapped and me is not self.native:
                    _assert_no_plaintext(me.get_connection(_CONNECTION_ALIAS), db_name)
            finally:
                me.disconnect(_CONNECTION_ALIAS)
        return RunResult(observation=normalise(observation), client_type=client_type)

    def check(self, factory: ModelFactory[M], play: Scenario[M]) -> Any:
        """Run natively, then wrapped; assert both observed the same, non-trivial things.

        A scenario marked ``@differs(row, raises=...)`` pins a documented difference instead:
        the native run observes something, the wrapped run raises exactly that error.
        """
        native = self.run(self.native, factory, play)
        difference: Difference | None = getattr(play, "difference", None)
        if difference is not None:
            assert_nontrivial(native.observation)
            difference.check_documented()
            try:
                self.run(self.wrapped, factory, play)
            except difference.raises:
                return native.observation
            raise AssertionError(
                f"documented difference {difference.row} is gone: the wrapped run no longer "
                f"raises {difference.raises.__name__}; drop @differs and the docs row"
            )
        wrapped = self.run(self.wrapped, factory, play)
        assert_nontrivial(native.observation)
        if self.wrapped is not self.native:
            assert wrapped.client_type is not native.client_type, (
                f"{self.wrapped.__name__}.connect handed mongoengine the native client "
                f"{native.client_type.__qualname__}: nothing went through the wrapper"
            )
        assert wrapped.observation == native.observation
        return native.observation

    def drop_databases(self) -> None:
        """Drop every database this fixture's runs created (FerretDB keeps them on disk)."""
        drop_databases(self.backend, self.databases)


@dataclass(frozen=True, slots=True)
class Difference:
    """A behaviour the wrapper changes on purpose, documented in ``docs/differences.md``."""

    row: int
    raises: type[BaseException]

    def check_documented(self) -> None:
        """The row must exist in the documentation the difference points to."""
        text = DIFFERENCES_DOC.read_text(encoding="utf-8")
        assert re.search(rf"^\| {self.row} \|", text, re.MULTILINE), (
            f"docs/differences.md has no row {self.row}"
        )


DIFFERENCES_DOC = Path(__file__).resolve().parents[1] / "docs" / "differences.md"


def differs(row: int, raises: type[BaseException]) -> Callable[[Scenario[M]], Scenario[M]]:
    """Mark a scenario whose wrapped run raises ``raises``, as row ``row`` of the docs says."""

    def mark(play: Scenario[M]) -> Scenario[M]:
        play.difference = Difference(row, raises)  # type: ignore[attr-defined]
        return play

    return mark


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one run produced: its normalised observation and the client class mongoengine held."""

    observation: Any
    client_type: type


def scenario(
    factory: ModelFactory[M],
) -> Callable[[Scenario[M]], Callable[[MongoengineCompat], None]]:
    """Turn ``def test_x(me, models) -> observation`` into a test run natively and wrapped.

    The returned test takes the ``compat_mongoengine`` fixture; the plain scenario stays
    reachable as ``test_x.scenario`` (and its model factory as ``test_x.factory``). Marks
    (``@requires(...)``) may be put above or below ``@scenario``.
    """

    def decorate(play: Scenario[M]) -> Callable[[MongoengineCompat], None]:
        def test(compat_mongoengine: MongoengineCompat) -> None:
            compat_mongoengine.check(factory, play)

        test.__name__ = play.__name__
        test.__qualname__ = play.__qualname__
        test.__module__ = play.__module__
        test.__doc__ = play.__doc__
        marks = getattr(play, "pytestmark", None)
        if marks:
            test.pytestmark = list(marks)  # type: ignore[attr-defined]
        test.scenario = play  # type: ignore[attr-defined]
        test.factory = factory  # type: ignore[attr-defined]
        return test

    return decorate
