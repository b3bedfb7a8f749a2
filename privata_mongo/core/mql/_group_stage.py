"""Internal. The grouping stages: ``$group``, ``$count``, ``$sortByCount``.

``$group`` evaluates ``_id`` per document (missing counts as null) and finds its group by
MongoDB equality (``1`` and ``1.0`` are one group; the first value seen becomes the ``_id``),
in the same table the partial-group merge uses (``group_merge.GroupTable``). MongoDB leaves
the order of groups unspecified; this implementation emits them in order of first appearance
in the input, which is deterministic and what mongomock's users expect. An accumulator whose
value is missing shows null, as ``DocumentSourceGroup::makeDocument`` does. ``$count`` and
``$sortByCount`` are the server's own desugarings into ``$group`` (and ``$sort``), so their
edge cases (no output for no input) follow.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any, cast

from privata_mongo.core.mql._bson_types import MISSING, type_name
from privata_mongo.core.mql._stages import Documents, Stage
from privata_mongo.core.mql.expressions._accumulators import (
    Accumulator,
    Factory,
    compile_accumulator,
    count_factory,
)
from privata_mongo.core.mql.expressions._base import Expr, Vars, fail, int_or_long
from privata_mongo.core.mql.expressions._compiler import (
    compile_expression,
    is_operator_document,
    new_variables,
)
from privata_mongo.core.mql.group_merge import GroupTable
from privata_mongo.core.mql.values import sort_documents

_Output = list[tuple[str, Expr, Factory]]


def _compile_id(spec: Any) -> Expr:
    if isinstance(spec, Mapping) and spec and not str(next(iter(spec))).startswith("$"):
        for value in spec.values():
            if isinstance(value, bool) or type_name(value) in ("int", "long", "double", "decimal"):
                raise fail("$group does not support inclusion-style expressions", 17390)
    return compile_expression(spec)


class _Fed:
    """One accumulator of one group, fed the value its expression gives each document."""

    __slots__ = ("expression", "state")

    def __init__(self, expression: Expr, state: Accumulator) -> None:
        self.expression, self.state = expression, state

    def add(self, variables: Mapping[str, Any], identity: Mapping[str, Any] | None) -> None:
        self.state.process(self.expression(cast(Vars, variables)))

    def result(self) -> Any:
        return self.state.result()


def _fed(expression: Expr, factory: Factory) -> Callable[[], _Fed]:
    return lambda: _Fed(expression, factory())


def _group_stage(key: Expr, outputs: _Output) -> Stage:
    def run(documents: Documents, now: datetime.datetime) -> Documents:
        table = GroupTable(
            [name for name, _, _ in outputs],
            [_fed(expression, factory) for _, expression, factory in outputs],
        )
        for document in documents:
            variables = new_variables(document, now)
            identity = key(variables)
            table.add(None if identity is MISSING else identity, variables, None)
        return list(table.documents())

    return run


def compile_group(spec: Any) -> Stage:
    """``$group``: ``_id`` expression and accumulator fields."""
    if not isinstance(spec, Mapping):
        raise fail("a group's fields must be specified in an object", 15947)
    if "_id" not in spec:
        raise fail("a group specification must include an _id", 15955)
    key = _compile_id(spec["_id"])
    outputs: _Output = []
    for name, value in spec.items():
        if name == "_id":
            continue
        expression, factory = compile_accumulator(str(name), value, compile_expression)
        outputs.append((str(name), expression, factory))
    return _group_stage(key, outputs)


def compile_count(spec: Any) -> Stage:
    """``$count``: ``{$group: {_id: null, <name>: {$sum: 1}}}`` then ``$project: {_id: 0}``."""
    if not isinstance(spec, str) or not spec:
        raise fail("the count field must be a non-empty string", 40156)
    if spec.startswith("$"):
        raise fail("the count field cannot be a $-prefixed path", 40158)
    if "\0" in spec:
        raise fail("the count field cannot contain a null byte", 40159)
    if "." in spec:
        raise fail("the count field cannot contain '.'", 40160)
    name = str(spec)
    return lambda documents, now: [{name: int_or_long(len(documents))}] if documents else []


def compile_sort_by_count(spec: Any) -> Stage:
    """``$sortByCount``: group by the expression, count, sort by count descending."""
    if isinstance(spec, Mapping):
        if not is_operator_document(spec):
            raise fail(
                "the sortByCount field must be defined as a $-prefixed path or an "
                "expression inside an object",
                40147,
            )
    elif isinstance(spec, str):
        if not spec.startswith("$"):
            raise fail(
                "the sortByCount field must be defined as a $-prefixed path or an "
                "expression inside an object",
                40148,
            )
    else:
        raise fail(
            f"the sortByCount field must be specified as a string or as an object, not "
            f"{type_name(spec)}",
            40149,
        )
    group = _group_stage(compile_expression(spec), [("count", lambda variables: 1, count_factory)])
    return lambda documents, now: list(sort_documents(group(documents, now), [("count", -1)]))
