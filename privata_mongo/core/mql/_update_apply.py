"""Internal. Applying a parsed update tree to one document, as ``UpdateNode::apply`` does.

The tree of ``_update_tree`` says what to change; this module walks it over a copy of the
document the way the server does, because the application can see the difference: children in
path order (new fields appended in lexicographic order, array indexes in numeric order), the
positional ``$`` at the index the query matched, ``$[]``/``$[<id>]`` on the elements the array
filters select (branches that meet on one element merged), missing paths created as documents
or null-padded arrays, and every change checked for ``_id`` immutability and storability. It
also records whether anything changed, the server's no-op rule behind ``nModified``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Final

from privata_mongo.core.failures import BAD_VALUE, IMMUTABLE_FIELD, PATH_NOT_VIABLE
from privata_mongo.core.mql._bson_types import type_name
from privata_mongo.core.mql._update_ops import NOOP, Leaf, Placeholder, Rename
from privata_mongo.core.mql._update_tree import ArrayNode, Node, ObjectNode, merge
from privata_mongo.core.mql._update_values import (
    DOLLAR_PREFIXED_FIELD_NAME,
    array_index,
    fail,
)
from privata_mongo.core.mql.match import Matcher

_CANNOT_BACKFILL_ARRAY: Final = 34  # ErrorCodes::CannotBackfillArray
_MAX_PADDING: Final = 1_500_000  # pathsupport::kMaxPaddingAllowed

Location = tuple[Any, Any]  # (container, key): the value is container[key]


class Run:
    """The state of one ``apply``: the document, its positional index, filters and clock."""

    __slots__ = ("document", "filters", "inserting", "matched", "merges", "modified", "now")

    def __init__(
        self,
        document: dict[str, Any],
        now: datetime.datetime,
        inserting: bool,
        matched: str | None,
        filters: Mapping[str, Matcher],
        merges: dict[tuple[int, int], Node],
    ) -> None:
        self.document = document
        self.now = now
        self.inserting = inserting
        self.matched = matched
        self.filters = filters
        self.merges = merges
        self.modified = False

    def merge(self, left: Node, right: Node, path: list[str]) -> Node:
        key = (id(left), id(right))
        merged = self.merges.get(key)
        if merged is None:
            merged = self.merges[key] = merge(left, right, path)
        return merged


def _apply_node(
    node: Node, run: Run, location: Location, taken: list[str], create: list[str]
) -> None:
    if isinstance(node, ObjectNode):
        apply_object(node, run, location, taken, create)
    elif isinstance(node, ArrayNode):
        _apply_array(node, run, location, taken, create)
    elif isinstance(node, Rename):
        _apply_rename(node, run, location, taken, create)
    else:
        _apply_leaf(node, run, location, taken, create)


def apply_object(
    node: ObjectNode, run: Run, location: Location, taken: list[str], create: list[str]
) -> None:
    """``UpdateObjectNode::apply``: children in path order, the positional one at its index."""
    positional, matched = node.positional, run.matched
    if positional is not None and matched is None:
        raise fail(
            "The positional operator did not find the match needed from the query.", BAD_VALUE
        )
    for name, child in node.children:
        if positional is not None and matched is not None:
            if name == matched:
                merged = run.merge(positional, child, [*taken, *create, matched])
                location = _apply_child(merged, name, run, location, taken, create)
                positional = None
                continue
            if matched < name:
                location = _apply_child(positional, matched, run, location, taken, create)
                positional = None
        location = _apply_child(child, name, run, location, taken, create)
    if positional is not None and matched is not None:
        _apply_child(positional, matched, run, location, taken, create)


def _child_key(value: Any, field: str) -> Any:
    """The key of ``value``'s child named ``field`` (an index for an array), or None."""
    if type(value) is dict:
        return field if field in value else None
    if type(value) is list:
        index = array_index(field)
        return index if index is not None and index < len(value) else None
    return None


def _apply_child(
    child: Node,
    field: str,
    run: Run,
    location: Location,
    taken: list[str],
    create: list[str],
) -> Location:
    """The server's ``applyChild``; returns the parent's location, advanced past created parts."""
    before = len(taken)
    key = None if create else _child_key(location[0][location[1]], field)
    if key is not None:
        taken.append(field)
        _apply_node(child, run, (location[0][location[1]], key), taken, create)
    else:
        create.append(field)
        _apply_node(child, run, location, taken, create)
    if create:
        create.pop()
    else:
        taken.pop()
    if len(taken) > before:
        for part in taken[before:]:
            value = location[0][location[1]]
            location = (value, _child_key(value, part))
    elif create:
        value = location[0][location[1]]
        key = _child_key(value, create[0])
        if key is not None:
            location = (value, key)
            taken.append(create[0])
            for part in create[1:]:
                value = location[0][location[1]]
                location = (value, _child_key(value, part))
                taken.append(part)
            create.clear()
    return location


def _apply_array(
    node: ArrayNode, run: Run, location: Location, taken: list[str], create: list[str]
) -> None:
    """``UpdateArrayNode::apply``: filters are matched first, then each element is updated."""
    if create:
        raise fail(
            f"The path '{'.'.join([*taken, *create])}' must exist in the document in order to "
            "apply array updates.",
            BAD_VALUE,
        )
    array = location[0][location[1]]
    if type(array) is not list:
        raise fail(
            f"Cannot apply array updates to non-array element '{'.'.join(taken)}' of type "
            f"{type_name(array)}",
            BAD_VALUE,
        )
    plan: list[tuple[int, list[Node]]] = []
    for i, element in enumerate(array):
        nodes = [
            child for name, child in node.children if not name or run.filters[name]({name: element})
        ]
        if nodes:
            plan.append((i, nodes))
    for i, nodes in plan:
        taken.append(str(i))
        merged = nodes[0]
        for other in nodes[1:]:
            merged = run.merge(merged, other, list(taken))
        _apply_node(merged, run, (array, i), taken, [])
        taken.pop()


def _check_created(run: Run, taken: list[str], create: list[str]) -> None:
    """Storage and immutability checks of a newly created path."""
    if not run.inserting and not taken and create[0].startswith("$"):
        raise fail(
            f"The dollar ($) prefixed field '{create[0]}' in '{create[0]}' is not allowed in "
            "the context of an update's replacement document. Consider using an aggregation "
            "pipeline with $replaceWith.",
            DOLLAR_PREFIXED_FIELD_NAME,
        )
    if taken and taken[0] == "_id":
        raise fail(
            f"Updating the path '{'.'.join(taken)}' would modify the immutable field '_id'",
            IMMUTABLE_FIELD,
        )


def _check_immutable(path: list[str]) -> None:
    if path[0] == "_id":
        raise fail(
            f"Performing an update on the path '{'.'.join(path)}' would modify the immutable "
            "field '_id'",
            IMMUTABLE_FIELD,
        )


def _create(element: Any, parts: list[str], value: Any, taken: list[str]) -> None:
    """``pathsupport::createPathAt``: documents along ``parts``, an array padded with nulls."""
    for part in reversed(parts[1:]):
        value = {part: value}
    if type(element) is dict:
        element[parts[0]] = value
        return
    index = array_index(parts[0]) if type(element) is list else None
    if index is None:
        raise fail(
            f"Cannot create field '{parts[0]}' in element '{'.'.join(taken)}' of type "
            f"{type_name(element)}",
            PATH_NOT_VIABLE,
        )
    if index - len(element) > _MAX_PADDING:
        raise fail(f"can't backfill more than {_MAX_PADDING} elements", _CANNOT_BACKFILL_ARRAY)
    element.extend([None] * (index - len(element)))
    element.append(value)


def _apply_leaf(
    leaf: Leaf, run: Run, location: Location, taken: list[str], create: list[str]
) -> None:
    """``ModifierNode::apply``: create the field, or update (or remove) the existing one."""
    if (leaf.insert_only and not run.inserting) or isinstance(leaf, Placeholder):
        return
    container, key = location
    if create:
        element = container[key]
        if not leaf.creates:
            viable = type(element) is dict or (
                type(element) is list and array_index(create[0]) is not None
            )
            if not viable and not leaf.non_viable_ok:
                raise fail(
                    f"Cannot use the part ({create[0]}) of ({'.'.join([*taken, *create])}) to "
                    f"traverse the element of type {type_name(element)}",
                    PATH_NOT_VIABLE,
                )
            return
        _create(element, create, leaf.new_value(run.now), taken)
        _check_created(run, taken, create)
        run.modified = True
        return
    if leaf.unsets:
        _check_immutable(taken)
        if type(container) is list:
            container[key] = None  # $unset of an array element leaves a null
        else:
            del container[key]
        run.modified = True
        return
    result = leaf.update(container[key], ".".join(taken), run.now)
    if result is NOOP:
        return
    _check_immutable(taken)
    container[key] = result
    run.modified = True


def _apply_rename(
    node: Rename, run: Run, location: Location, taken: list[str], create: list[str]
) -> None:
    """``RenameNode::apply``: a ``$set`` of the destination, then an ``$unset`` of the source."""
    source = node.source.split(".")
    parent: Any = None
    key: Any = None
    current: Any = run.document
    arrays: list[str] = []
    for i, part in enumerate(source):
        index = array_index(part)
        if type(current) is dict:
            if part not in current:
                return  # nothing to rename: a no-op
            parent, key, current = current, part, current[part]
        elif type(current) is list and index is not None:
            if index >= len(current):
                return
            arrays.append(source[i - 1])
            parent, key, current = current, index, current[index]
        else:
            raise fail(
                f"cannot use the part ({source[i - 1]} of {node.source}) to traverse the "
                f"element of type {type_name(current)}",
                PATH_NOT_VIABLE,
            )
    if arrays:
        raise fail(
            f"The source field cannot be an array element, '{node.source}' has an array field "
            f"called '{arrays[-1]}'",
            BAD_VALUE,
        )
    value: Any = run.document
    chain = [value]
    for part in taken:
        value = value[_child_key(value, part)]
        chain.append(value)
    ancestors = list(zip(taken, chain[1:], strict=True))
    if not create:
        ancestors = ancestors[:-1]
    for name, ancestor in reversed(ancestors):
        if type(ancestor) is list:
            raise fail(
                f"The destination field cannot be an array element, '{node.path}' has an "
                f"array field called '{name}'",
                BAD_VALUE,
            )
    container, slot = location
    if create:
        _create(container[slot], create, current, taken)
        _check_created(run, taken, create)
    else:
        _check_immutable(taken)
        container[slot] = current
    _check_immutable(source)
    del parent[key]
    run.modified = True
