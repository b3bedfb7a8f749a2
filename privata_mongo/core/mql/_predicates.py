"""Internal. The compiled form of a filter: predicates over documents, and paths that run tests.

``match`` parses a filter (the server's ``MatchExpressionParser``); what it builds is defined
here. A filter becomes plain closures: ``Predicate``s over a whole document combined by
``all_match``/``any_match``, and at each path a ``Field`` (one operator's test, or a negation)
run over every value the path traversal yields. ``path_predicate`` is the hot path of every
in-process query, and it is also where the positional ``$`` of an update is recorded: the index,
in the outermost array traversed, of the element that satisfied the test. Keeping evaluation
apart from parsing lets each be read, and tuned, without the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from privata_mongo.core.mql._bson_types import ARRAY_TYPES, MISSING
from privata_mongo.core.mql._match_ops import Test
from privata_mongo.core.mql._traverse import collect

Record = list[int | None]
"""A one-slot list that receives the positional index, when the caller asks for it."""
Predicate = Callable[[Mapping[str, Any], Record | None], bool]


@dataclass(frozen=True, slots=True)
class Leaf:
    """One operator on one path: ``test`` sees each value the traversal yields."""

    test: Test
    traverse: bool = True  # False for $size/$elemMatch: a leaf array is not expanded
    locate: Callable[[Any], int] | None = None  # the element $elemMatch matched


@dataclass(frozen=True, slots=True)
class Negation:
    """``$not``/``$ne``/``$nin``/``$exists: false``: none of the children match together."""

    children: tuple[Field, ...]


Field = Leaf | Negation


def always(result: bool) -> Predicate:
    """A predicate with a fixed answer (``$alwaysTrue``, ``$alwaysFalse``, an empty ``$and``)."""
    return lambda document, record: result


def all_match(predicates: Sequence[Predicate]) -> Predicate:
    """``$and`` (and the implicit one of a document): every predicate may record a position."""
    if not predicates:
        return always(True)
    if len(predicates) == 1:
        return predicates[0]
    group = tuple(predicates)

    def conjunction(document: Mapping[str, Any], record: Record | None) -> bool:
        for predicate in group:  # noqa: SIM110 - a loop: this is the hot path
            if not predicate(document, record):
                return False
        return True

    return conjunction


def any_match(predicates: Sequence[Predicate], negate: bool) -> Predicate:
    """``$or``, or ``$nor`` when ``negate``: no clause records a position, as on the server."""
    group = tuple(predicates)

    def disjunction(document: Mapping[str, Any], record: Record | None) -> bool:
        for predicate in group:
            if predicate(document, None):
                return not negate
        return negate

    return disjunction


def path_predicate(parts: tuple[str, ...], field: Field) -> Predicate:
    """``field`` at the dotted path ``parts``: true when one traversed value passes its test."""
    if isinstance(field, Negation):
        inner = all_match([path_predicate(parts, child) for child in field.children])
        return lambda document, record: not inner(document, None)
    test, traverse, locate = field.test, field.traverse, field.locate
    if len(parts) == 1:
        key = parts[0]

        def top_level(document: Mapping[str, Any], record: Record | None) -> bool:
            value = document.get(key, MISSING)
            if not isinstance(value, ARRAY_TYPES):
                return test(value)
            if traverse:
                for index, element in enumerate(value):
                    if test(element):
                        if record is not None:
                            record[0] = index
                        return True
            if not test(value):
                return False
            if record is not None and locate is not None:
                record[0] = locate(value)
            return True

        return top_level

    def dotted(document: Mapping[str, Any], record: Record | None) -> bool:
        values: list[Any] = []
        if record is None:
            collect(document, parts, traverse, values)
            for value in values:  # noqa: SIM110 - a loop: this is the hot path
                if test(value):
                    return True
            return False
        offsets: list[int | None] = []
        collect(document, parts, traverse, values, offsets)
        for value, offset in zip(values, offsets, strict=True):
            if test(value):
                if offset is not None:
                    record[0] = offset
                elif locate is not None:
                    record[0] = locate(value)
                return True
        return False

    return dotted
