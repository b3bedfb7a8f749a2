"""Internal. How a pymongo call is passed on to mongomock, and the backend's argument rules.

Most methods of pymongo's async API need nothing here but the same steps: bind the caller's
arguments as pymongo binds them, refuse a session and the options mongomock would drop silently
although they change the result, hand mongomock the arguments it understands (its methods have
pymongo's names and parameter names), and return what it returns -- pymongo's own result
classes; its errors are pymongo's error classes. ``forward`` takes those steps once for the
coroutine methods, ``derive`` for those that hand out a database or a collection (mongomock's,
wrapped as ours). Each such method is then one row in its class: pymongo's method, which gives
the signature and the type (to mypy and to ``inspect``, so they follow the installed pymongo
rather than a copy of it), what mongomock is given and what is refused. Whatever else pymongo
accepts (``comment``, ``bypass_document_validation`` -- mongomock has no validators -- or a
``hint`` mongomock has no use for) is accepted and has no effect, as everywhere on this backend.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeAlias, TypeVar

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.asynchronous.mongo_client import AsyncMongoClient

from privata_mongo.core.mql.values import sort_pairs

__all__ = [
    "CLIENT",
    "COLLECTION",
    "DATABASE",
    "KEYWORDS",
    "Document",
    "Prepare",
    "SortSpec",
    "derive",
    "forward",
    "no_session",
    "projection_document",
    "sort_list",
    "unsupported",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])

Document: TypeAlias = dict[str, Any]
SortSpec: TypeAlias = "str | Sequence[str | tuple[str, Any]] | Mapping[str, Any]"
"""What pymongo accepts as a sort: a key, a list of keys or (key, direction) pairs, a mapping."""
Prepare: TypeAlias = Callable[[Any, dict[str, Any]], None]
"""Checks or rewrites a call's arguments (by name) before mongomock (the first argument) runs it."""

if TYPE_CHECKING:
    # Instances for the type checker, so that ``forward(COLLECTION.delete_one)`` has the bound
    # method's type (pymongo's signature without ``self``); at run time the classes, whose
    # functions ``forward`` and ``derive`` read.
    CLIENT: AsyncMongoClient[Document]
    DATABASE: AsyncDatabase[Document]
    COLLECTION: AsyncCollection[Document]
else:
    CLIENT, DATABASE, COLLECTION = AsyncMongoClient, AsyncDatabase, AsyncCollection

KEYWORDS = "**"
"""Among a row's passed arguments: pymongo's extra keyword arguments go to mongomock as well."""


def no_session(session: object) -> None:
    """Refuse a session: mongomock has neither sessions nor transactions."""
    if session is not None:
        raise NotImplementedError(
            "the embedded (mongomock) backend has no sessions or transactions; "
            "run session-bound code against a MongoDB server"
        )


def unsupported(option: str, value: object) -> None:
    """Refuse an option mongomock would silently ignore although it changes the result."""
    if value:
        raise NotImplementedError(f"{option} is not supported by the embedded (mongomock) backend")


def sort_list(key_or_list: SortSpec, direction: Any = None) -> list[tuple[str, Any]]:
    """A sort in every form pymongo accepts, as the (key, direction) pairs BSON would send."""
    return sort_pairs(key_or_list, direction)


def projection_document(projection: Mapping[str, Any] | Iterable[str] | None) -> Document | None:
    """A projection in either pymongo form (a mapping, a list of included fields) as a mapping."""
    if projection is None:
        return None
    if isinstance(projection, Mapping):
        return dict(projection)
    return dict.fromkeys(projection, 1)


def _sort_or_none(sort: SortSpec | None) -> list[tuple[str, Any]] | None:
    return sort_list(sort) if sort else None


_NORMALISED: Mapping[str, Callable[[Any], Any]] = {
    "projection": projection_document,
    "sort": _sort_or_none,
}
"""Arguments mongomock takes in one form only, by name: each is converted before it is passed."""


class Wrapper(Protocol):
    """What a forwarded method runs on: an object that holds its mongomock counterpart."""

    _inner: Any


W = TypeVar("W", bound=Wrapper)


def forward(
    method: Callable[P, Awaitable[R]],
    *passed: str,
    refused: Sequence[str] = (),
    prepare: Prepare | None = None,
) -> Callable[Concatenate[Wrapper, P], Coroutine[Any, Any, R]]:
    """A coroutine method with the signature of pymongo's ``method``, run by mongomock's namesake.

    Args:
        method: pymongo's coroutine function, read off ``CLIENT``, ``DATABASE`` or
            ``COLLECTION``.
        *passed: the arguments mongomock is given, by name (``sort`` and ``projection`` in the
            one form mongomock takes); ``KEYWORDS`` adds pymongo's extra keyword arguments.
        refused: options that raise ``NotImplementedError`` when set, checked in this order
            after the session (a named parameter or an extra keyword argument alike).
        prepare: run first on the bound arguments, given the mongomock object: checks that
            pymongo makes before any I/O, or an option mongomock lacks, emulated.

    Returns:
        A coroutine function to assign in the wrapper's class body; its signature (through
        ``__wrapped__``) and its type are ``method``'s.
    """
    name, signature = _template(method)
    extra = next((p.name for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD), None)
    named = [argument for argument in passed if argument != KEYWORDS]

    async def forwarded(self: Wrapper, /, *args: P.args, **kwargs: P.kwargs) -> R:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        given = dict(bound.arguments)
        extras: dict[str, Any] = given.pop(extra, {}) if extra else {}
        given.update(extras)
        if prepare is not None:
            prepare(self._inner, given)
        no_session(given.get("session"))
        for option in refused:
            unsupported(option, given.get(option))
        call = {
            argument: _NORMALISED.get(argument, _as_given)(given[argument])
            for argument in named
            if argument in given
        }
        if KEYWORDS in passed:
            call.update((key, given[key]) for key in extras)
        result: R = getattr(self._inner, name)(**call)
        return result

    return _stand_in(forwarded, method, _forwarding(named, KEYWORDS in passed, refused, prepare))


def derive(
    method: Callable[P, object], wrap: Callable[[W, Any], T]
) -> Callable[Concatenate[W, P], T]:
    """A method with the signature of pymongo's ``method`` that hands out a wrapped object.

    Args:
        method: pymongo's function that derives an object (``get_database``,
            ``get_collection`` ...), read off ``CLIENT`` or ``DATABASE``.
        wrap: builds the wrapper, given the wrapper called (the parent) and what mongomock's
            namesake returned.

    Returns:
        A function to assign in the wrapper's class body; mongomock is given the arguments as
        bound to pymongo's signature.
    """
    name, signature = _template(method)

    def derived(self: W, /, *args: P.args, **kwargs: P.kwargs) -> T:
        bound = signature.bind(*args, **kwargs)
        return wrap(self, getattr(self._inner, name)(*bound.args, **bound.kwargs))

    return _stand_in(derived, method, f"mongomock's result, wrapped in ``{_name_of(wrap)}``.")


def _template(method: Callable[..., object]) -> tuple[str, inspect.Signature]:
    """The name and the signature (without ``self``) of a pymongo method read off its class."""
    signature = inspect.signature(method)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].name != "self":
        raise TypeError(f"expected a method read off pymongo's class, not {method!r}")
    return method.__name__, signature.replace(parameters=parameters[1:])


def _stand_in(function: F, method: Callable[..., object], behaviour: str) -> F:
    """``function`` named after pymongo's ``method``, with its signature, and a docstring."""
    function.__name__ = function.__qualname__ = method.__name__
    function.__doc__ = f"pymongo's ``{method.__qualname__}`` on mongomock.\n\n{behaviour}"
    function.__wrapped__ = method  # type: ignore[attr-defined]
    return function


def _forwarding(
    named: Sequence[str], keywords: bool, refused: Sequence[str], prepare: Prepare | None
) -> str:
    """What a forwarded method does with its arguments, for its docstring."""
    passed = [f"``{argument}``" for argument in named] + (["extra keywords"] if keywords else [])
    refusals = "".join(f", so is ``{option}``" for option in refused)
    first = f"\n\nFirst: {prepare.__doc__}" if prepare is not None and prepare.__doc__ else ""
    return (
        f"mongomock is given {', '.join(passed) or 'no argument'}; a session is refused"
        f"{refusals}; anything else is accepted and has no effect.{first}"
    )


def _name_of(wrap: Callable[..., object]) -> str:
    return getattr(wrap, "__name__", repr(wrap))


def _as_given(value: Any) -> Any:
    return value
