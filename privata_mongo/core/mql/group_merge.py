"""Merge partial groups into groups, as the merging half of a sharded ``$group`` does.

Each partial group carries partial accumulators computed by the server (a sum, a count, a
minimum, an array ...) and stands for the documents of one data subject, whose identity values
the caller hands in. A ``Merge`` folds one output field of the partial groups of a group:

- from a server partial (``partial`` names it): sums are added with the server's number types
  (an int stays an int while it fits, a long widens to a double on overflow, a decimal wins),
  ``$avg`` divides the summed totals by the summed counts of numbers, ``$min``/``$max``
  compare in BSON order ignoring null, arrays are concatenated (``$push``) or united
  (``$addToSet``), ``$first``/``$last`` take the partial whose first (last) sort key comes
  first (last);
- from an identity value (``source`` is its path, ``count`` the partial's document count): the
  value counts once per document, exactly as if each document had carried it.

Nothing here knows where values come from: the caller builds the merges
(``core.pushdown.group_split``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from privata_mongo.core.mql._bson_types import MISSING
from privata_mongo.core.mql.expressions._accumulators import MinMax, Push, Sum, mean
from privata_mongo.core.mql.expressions._base import expr_equal, is_number
from privata_mongo.core.mql.expressions._compiler import walk
from privata_mongo.core.mql.expressions._value_keys import value_key
from privata_mongo.core.mql.values import sort_key

__all__ = [
    "GroupTable",
    "Merge",
    "average",
    "first_or_last",
    "identity_value",
    "min_or_max",
    "pushed",
    "total",
]

Row = Mapping[str, Any]


class Merge(Protocol):
    """One output field of one group, fed its partial groups."""

    def add(self, partial: Row, identity: Row | None) -> None:
        """Fold in one partial group (``identity``: its subject's identity values, if any)."""

    def result(self) -> Any:
        """The merged value (``MISSING`` where the group would show null)."""


def identity_value(identity: Row | None, path: str, missing: Any = MISSING) -> Any:
    """The value a field path reads in an identity document, as ``"$path"`` would."""
    if identity is None:
        return missing
    value = walk(identity, tuple(path.split(".")))
    return missing if value is MISSING else value


def _weight(partial: Row, count: str | None) -> int:
    value = partial.get(count, 0) if count is not None else 0
    return int(value) if is_number(value) else 0


class GroupTable:
    """Groups by MongoDB equality of their keys, in order of first appearance."""

    def __init__(self, names: Sequence[str], factories: Sequence[Callable[[], Merge]]) -> None:
        self._names = list(names)
        self._factories = list(factories)
        self._hashed: dict[Any, tuple[Any, list[Merge]]] = {}
        self._loose: list[tuple[Any, list[Merge]]] = []
        self._order: list[tuple[Any, list[Merge]]] = []

    def __len__(self) -> int:
        return len(self._order)

    def add(self, key: Any, partial: Row, identity: Row | None) -> None:
        """Fold one partial group into the group of ``key``."""
        for state in self._states(key):
            state.add(partial, identity)

    def _states(self, key: Any) -> list[Merge]:
        hashed = value_key(key)
        group = (
            self._hashed.get(hashed)
            if hashed is not None
            else next((g for g in self._loose if expr_equal(g[0], key)), None)
        )
        if group is None:
            group = (key, [factory() for factory in self._factories])
            if hashed is not None:
                self._hashed[hashed] = group
            else:
                self._loose.append(group)
            self._order.append(group)
        return group[1]

    def documents(self) -> list[dict[str, Any]]:
        """One document per group: ``_id``, then the output fields (null when missing)."""
        out: list[dict[str, Any]] = []
        for key, states in self._order:
            document: dict[str, Any] = {"_id": key}
            for name, state in zip(self._names, states, strict=True):
                value = state.result()
                document[name] = None if value is MISSING else value
            out.append(document)
        return out


class _Total:
    __slots__ = ("count", "partial", "source", "sum")

    def __init__(self, partial: str | None, source: str | None, count: str | None) -> None:
        self.partial, self.source, self.count = partial, source, count
        self.sum = Sum()

    def add(self, partial: Row, identity: Row | None) -> None:
        if self.partial is not None:
            self.sum.process(partial.get(self.partial, MISSING))
        elif self.source is not None:
            value = identity_value(identity, self.source)
            self.sum.process(value, _weight(partial, self.count))

    def result(self) -> Any:
        return self.sum.result()


def total(
    partial: str | None, source: str | None = None, count: str | None = None
) -> Callable[[], Merge]:
    """``$sum``: of a partial sum, or of an identity value once per document."""
    return lambda: _Total(partial, source, count)


class _Average:
    __slots__ = ("count", "counted", "partial", "source", "sum")

    def __init__(self, partial: str | None, count: str, source: str | None) -> None:
        self.partial, self.count, self.source = partial, count, source
        self.sum = Sum()
        self.counted = 0

    def add(self, partial: Row, identity: Row | None) -> None:
        if self.partial is not None:
            self.sum.process(partial.get(self.partial, MISSING))
            self.counted += _weight(partial, self.count)
            return
        value = identity_value(identity, self.source or "")
        if is_number(value):
            weight = _weight(partial, self.count)
            self.sum.process(value, weight)
            self.counted += weight

    def result(self) -> Any:
        return mean(self.sum, self.counted)


def average(partial: str | None, count: str, source: str | None = None) -> Callable[[], Merge]:
    """``$avg``: summed totals over summed counts of numbers (``partial`` the total's name)."""
    return lambda: _Average(partial, count, source)


class _MinMax:
    __slots__ = ("partial", "source", "state")

    def __init__(self, partial: str | None, source: str | None, minimum: bool) -> None:
        self.partial, self.source = partial, source
        self.state = MinMax(1 if minimum else -1)

    def add(self, partial: Row, identity: Row | None) -> None:
        if self.partial is not None:
            self.state.process(partial.get(self.partial, MISSING))
        else:
            self.state.process(identity_value(identity, self.source or ""))

    def result(self) -> Any:
        return self.state.result()


def min_or_max(partial: str | None, source: str | None, minimum: bool) -> Callable[[], Merge]:
    """``$min``/``$max``: BSON order, null and missing ignored."""
    return lambda: _MinMax(partial, source, minimum)


class _Pushed:
    __slots__ = ("count", "partial", "source", "state")

    def __init__(
        self, partial: str | None, source: str | None, count: str | None, unique: bool
    ) -> None:
        self.partial, self.source, self.count = partial, source, count
        self.state = Push(unique)

    def add(self, partial: Row, identity: Row | None) -> None:
        if self.partial is not None:
            values = partial.get(self.partial)
            for value in values if isinstance(values, list) else ():
                self.state.process(value)
            return
        value = identity_value(identity, self.source or "")
        if value is MISSING:
            return
        if self.state.unique:
            self.state.process(value)
        else:
            self.state.values.extend([value] * _weight(partial, self.count))

    def result(self) -> Any:
        return self.state.result()


def pushed(
    partial: str | None, source: str | None, count: str | None, unique: bool
) -> Callable[[], Merge]:
    """``$push``/``$addToSet``: concatenated or united arrays."""
    return lambda: _Pushed(partial, source, count, unique)


class _FirstLast:
    __slots__ = ("best", "first", "keys", "partial", "sort", "source", "value")

    def __init__(
        self,
        partial: str | None,
        source: str | None,
        keys: Sequence[str],
        order: Sequence[tuple[str, Any]],
        first: bool,
    ) -> None:
        self.partial, self.source, self.keys, self.first = partial, source, list(keys), first
        self.sort = [(f"k{i}", int(direction)) for i, (_, direction) in enumerate(order)]
        self.best: Any = None
        self.value: Any = MISSING

    def add(self, partial: Row, identity: Row | None) -> None:
        key = sort_key({f"k{i}": partial.get(k) for i, k in enumerate(self.keys)}, self.sort)
        if self.best is not None and (key >= self.best if self.first else key < self.best):
            return
        self.best = key
        if self.partial is not None:
            self.value = partial.get(self.partial, MISSING)
        else:
            self.value = identity_value(identity, self.source or "")

    def result(self) -> Any:
        return self.value


def first_or_last(
    partial: str | None,
    source: str | None,
    keys: Sequence[str],
    order: Sequence[tuple[str, Any]],
    operator: str,
) -> Callable[[], Merge]:
    """``$first``/``$last`` in the order the partial groups' sort keys (``keys``) give."""
    return lambda: _FirstLast(partial, source, keys, order, operator == "$first")
