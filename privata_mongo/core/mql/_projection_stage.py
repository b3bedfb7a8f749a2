"""Internal. The ``$project``, ``$addFields``/``$set`` and ``$unset`` stages.

A specification is parsed once into a tree of nodes, as the server's ``projection_ast`` parser
and ``ProjectionNode`` executor do, and applied in the server's two passes: first the
projected fields, in the order of the *input* document (``applyProjections``), then the
computed fields and the children that hold some, in the order of the *specification*
(``applyExpressions``). The details that make outputs differ are kept:

* through an array, a sub-projection applies to every element; in an inclusion the elements
  that are not documents disappear, in an exclusion they stay; nested arrays are recursed;
* a computed field under a path whose value is not a document replaces that value with a new
  document (``{"a.b": 1}`` on ``{a: 5}`` gives ``{a: {b: 1}}``), and under an array is added
  to every element;
* a computed field that evaluates to missing is absent (``$$REMOVE`` removes a field in
  ``$addFields``), but the field keeps its position if it existed;
* ``_id`` is included unless excluded, and a computed field lands after the projected ones.

Positions are kept with ``MISSING`` placeholders while a document is built, removed at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from privata_mongo.core.mql._bson_types import ARRAY_TYPES, MISSING, as_object
from privata_mongo.core.mql.expressions._base import Expr, Vars, fail, is_number
from privata_mongo.core.mql.expressions._compiler import (
    compile_expression,
    is_expression_name,
    path_parts,
)
from privata_mongo.core.mql.values import UnsupportedOperator

Transform = Callable[[Mapping[str, Any], Vars], dict[str, Any]]
"""A compiled stage over one document: the document and its variables in, the output out."""

_INCLUDE, _EXCLUDE = "inclusion", "exclusion"


class _Node:
    """One level of a projection: projected leaves, computed fields, children."""

    __slots__ = ("children", "computed", "expressions", "leaves", "order")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.leaves: set[str] = set()
        self.expressions: dict[str, Expr] = {}
        self.order: list[str] = []
        self.computed = False

    def child(self, name: str) -> _Node:
        node = self.children.get(name)
        if node is None:
            node = self.children[name] = _Node()
            self.order.append(name)
        return node


def strip(value: Any) -> Any:
    """The value without ``MISSING`` placeholders (in documents and arrays)."""
    if type(value) is dict:
        return {key: strip(item) for key, item in value.items() if item is not MISSING}
    if type(value) is list:
        return [strip(item) for item in value if item is not MISSING]
    return value


# ---- application ---------------------------------------------------------------------------


def _include(node: _Node, document: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    leaves, children = node.leaves, node.children
    for key, value in document.items():
        if key in leaves:
            out[key] = value
        elif key in children:
            out[key] = _include_value(children[key], value)
    return out


def _include_value(node: _Node, value: Any) -> Any:
    document = as_object(value)
    if document is not None:
        return _include(node, document)
    if isinstance(value, ARRAY_TYPES):
        return [_include_value(node, element) for element in value]
    return MISSING


def _exclude(node: _Node, document: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(document)
    for key, value in document.items():
        if key in node.leaves:
            del out[key]
        elif key in node.children:
            out[key] = _exclude_value(node.children[key], value)
    return out


def _exclude_value(node: _Node, value: Any) -> Any:
    document = as_object(value)
    if document is not None:
        return _exclude(node, document)
    if isinstance(value, ARRAY_TYPES):
        return [_exclude_value(node, element) for element in value]
    return value


def _compute(node: _Node, variables: Vars, out: dict[str, Any]) -> None:
    for name in node.order:
        child = node.children.get(name)
        if child is not None:
            out[name] = _compute_value(child, variables, out.get(name, MISSING))
        else:
            out[name] = node.expressions[name](variables)


def _compute_value(node: _Node, variables: Vars, value: Any) -> Any:
    document = as_object(value)
    if document is not None:
        out = dict(document)
        _compute(node, variables, out)
        return out
    if isinstance(value, ARRAY_TYPES):
        return [_compute_value(node, variables, element) for element in value]
    if node.computed:
        out = {}
        _compute(node, variables, out)
        return out
    return MISSING


# ---- $project ------------------------------------------------------------------------------


class _Parse:
    """``projection_ast::parse`` state: the tree and the projection type found so far."""

    def __init__(self, variables: tuple[str, ...]) -> None:
        self.variables = variables
        self.kind: str | None = None
        self.id_included = self.id_excluded = self.id_specified = False
        self.tree: dict[str, Any] = {}

    def add(self, parent: dict[str, Any], path: str, leaf: Any) -> None:
        parts = path_parts(path)
        node = parent
        for index, part in enumerate(parts):
            existing = node.get(part)
            if index == len(parts) - 1:
                if existing is not None:
                    raise fail(f"Path collision at {path}", 31250)
                node[part] = leaf
                return
            if existing is None:
                existing = node[part] = {}
            elif not isinstance(existing, dict):
                raise fail(
                    f"Path collision at {path} remaining portion {'.'.join(parts[index + 1 :])}",
                    31249,
                )
            node = existing

    def element(self, parent: dict[str, Any], key: str, value: Any, top: bool) -> None:
        if key == "$" or ".$." in key or key.endswith(".$"):
            raise fail("Cannot use positional projection in aggregation projection", 31324)
        if isinstance(value, Mapping):
            self.sub_object(parent, key, value)
        elif isinstance(value, bool) or is_number(value):
            self.boolean(parent, key, _true_value(value), top)
        else:
            self.add(parent, key, compile_expression(value, self.variables))
            self.become(
                _INCLUDE,
                31310,
                f"Cannot use an expression in an exclusion projection at path {key}",
            )

    def become(self, kind: str, code: int, message: str) -> None:
        if self.kind is not None and self.kind != kind:
            raise fail(message, code)
        self.kind = kind

    def boolean(self, parent: dict[str, Any], key: str, include: bool, top: bool) -> None:
        self.add(parent, key, include)
        if top and key == "_id":
            if include:
                self.id_included = True
            else:
                self.id_excluded = True
        elif include:
            self.become(
                _INCLUDE, 31253, f"Cannot do inclusion on field {key} in exclusion projection"
            )
        else:
            self.become(
                _EXCLUDE, 31254, f"Cannot do exclusion on field {key} in inclusion projection"
            )

    def sub_object(self, parent: dict[str, Any], key: str, value: Mapping[str, Any]) -> None:
        path_parts(key)
        first = str(next(iter(value))) if value else ""
        if len(value) == 1 and first.startswith("$"):
            if first == "$elemMatch":
                raise fail("Cannot use $elemMatch in this context", 168)
            if first == "$meta":
                raise UnsupportedOperator("$meta")
            if not is_expression_name(first):
                raise UnsupportedOperator(first)
            if self.kind == _EXCLUDE:
                raise fail("Cannot use expression other than $meta in exclusion projection", 31252)
            self.kind = _INCLUDE
            self.add(parent, key, compile_expression(value, self.variables))
            return
        if not value:
            raise fail(
                f"An empty sub-projection is not a valid value. Found empty object at path {key}",
                51270,
            )
        child: dict[str, Any] = {}
        self.add(parent, key, child)
        for sub_key, sub_value in value.items():
            self.element(child, str(sub_key), sub_value, False)


def _true_value(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    number = value.to_decimal() if hasattr(value, "to_decimal") else value
    return bool(number != 0)


def _build(tree: dict[str, Any], kind: str) -> _Node:
    node = _Node()
    for name, leaf in tree.items():
        if isinstance(leaf, dict):
            child = _build(leaf, kind)
            node.children[name] = child
            node.order.append(name)
            node.computed = node.computed or child.computed
        elif leaf is True or leaf is False:
            if (kind == _INCLUDE) == leaf:
                node.leaves.add(name)
        else:
            node.expressions[name] = leaf
            node.order.append(name)
            node.computed = True
    return node


def compile_project(spec: Any, variables: tuple[str, ...] = ()) -> Transform:
    """``$project``: an inclusion (with computed fields) or an exclusion projection."""
    if not isinstance(spec, Mapping):
        raise fail("$project specification must be an object", 15969)
    if not spec:
        raise fail("$project requires at least one output field", 51272)
    parse = _Parse(variables)
    for key, value in spec.items():
        parse.id_specified |= key == "_id" or str(key).startswith("_id.")
        parse.element(parse.tree, str(key), value, True)
    kind = parse.kind or (_INCLUDE if parse.id_included else _EXCLUDE)
    if kind == _INCLUDE and not parse.id_specified:
        parse.tree["_id"] = True
    if kind == _EXCLUDE and parse.tree.get("_id") is True:
        del parse.tree["_id"]
    root = _build(parse.tree, kind)
    if kind == _EXCLUDE:
        return lambda document, variables: _exclude(root, document)

    def include(document: Mapping[str, Any], variables: Vars) -> dict[str, Any]:
        out = _include(root, document)
        if root.computed:
            _compute(root, variables, out)
        return strip(out)  # type: ignore[no-any-return]

    return include


# ---- $addFields / $set, $unset ---------------------------------------------------------------


def _validate_add_fields(spec: Mapping[str, Any], prefix: str, seen: list[str]) -> None:
    for key, value in spec.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if prefix and "." in str(key):
            raise fail(f"cannot use dotted field name '{key}' in a sub object", 40183)
        path_parts(path)
        if isinstance(value, Mapping) and not (value and str(next(iter(value))).startswith("$")):
            if not value:
                raise fail(
                    f"an empty object is not a valid value. Found empty object at path {path}",
                    40180,
                )
            _validate_add_fields(value, path, seen)
            continue
        if isinstance(value, Mapping) and len(value) != 1:
            raise fail(
                "an expression specification must contain exactly one field, the name "
                "of the expression",
                40181,
            )
        for other in seen:
            if other == path or other.startswith(path + ".") or path.startswith(other + "."):
                raise fail(
                    f"specification contains two conflicting paths. Cannot specify both "
                    f"'{path}' and '{other}'",
                    40176,
                )
        seen.append(path)


def _add_expressions(node: _Node, spec: Mapping[str, Any], variables: tuple[str, ...]) -> None:
    for key, value in spec.items():
        parts = path_parts(str(key))
        target = node
        for part in parts[:-1]:
            target.computed = True
            target = target.child(part)
        target.computed = True
        name = parts[-1]
        if isinstance(value, Mapping) and not (value and str(next(iter(value))).startswith("$")):
            _add_expressions(target.child(name), value, variables)
        else:
            target.expressions[name] = compile_expression(value, variables)
            target.order.append(name)


def compile_add_fields(name: str, spec: Any, variables: tuple[str, ...] = ()) -> Transform:
    """``$addFields``/``$set``: computed fields merged into the document."""
    if not isinstance(spec, Mapping):
        raise fail(f"{name} specification stage must be an object", 40272)
    if not spec:
        raise fail(
            f"Invalid {name} :: caused by :: specification must have at least one field", 40177
        )
    _validate_add_fields(spec, "", [])
    root = _Node()
    _add_expressions(root, spec, variables)

    def run(document: Mapping[str, Any], variables: Vars) -> dict[str, Any]:
        out = dict(document)
        _compute(root, variables, out)
        return strip(out)  # type: ignore[no-any-return]

    return run


def compile_unset(spec: Any) -> Transform:
    """``$unset``: an exclusion projection of one or more paths."""
    if isinstance(spec, str):
        paths = [spec]
    elif isinstance(spec, ARRAY_TYPES):
        if not spec:
            raise fail(
                "$unset specification must be a string or an array with at least one field", 31119
            )
        if not all(isinstance(path, str) for path in spec):
            raise fail(
                "$unset specification must be a string or an array containing only string values",
                31120,
            )
        paths = list(spec)
    else:
        raise fail("$unset specification must be a string or an array", 31002)
    return compile_project(dict.fromkeys(paths, 0))
