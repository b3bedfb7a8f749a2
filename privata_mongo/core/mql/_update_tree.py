"""Internal. The server's update tree: an update parsed into nodes, one leaf per path.

The server does not apply an update operator by operator: ``UpdateObjectNode::parseAndMerge``
first places every ``{op: {path: argument}}`` into one tree (object nodes by field name, the
positional ``$`` as a child of its own, array nodes by array filter identifier, a leaf per
path), rejecting two operators on one path or on a path and its prefix (code 40), and the tree
is then applied children in ``path_compare`` order. Two branches that reach the same array
element (``$[]`` and ``$[<id>]``, or the positional ``$`` and an index) are merged at apply time
(``createUpdateNodeByMerging``). This module builds and merges that tree; ``update`` drives the
parse and ``_update_apply`` walks the tree over a document. The operator table (the server's
``modifier_table``) lives here too, since the parser is what turns an operator into a leaf.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

from privata_mongo.core.failures import BAD_VALUE, CONFLICTING_UPDATE_OPERATORS
from privata_mongo.core.mql._update_array_ops import ARRAY_LEAVES
from privata_mongo.core.mql._update_ops import VALUE_LEAVES, Leaf
from privata_mongo.core.mql._update_values import fail, is_identifier, path_compare

_EMPTY_FIELD_NAME: Final = 56  # ErrorCodes::EmptyFieldName

_LEAVES: Final[dict[str, Callable[[str, str, Any], Leaf]]] = {**VALUE_LEAVES, **ARRAY_LEAVES}

OPERATORS: Final = frozenset(_LEAVES) | {"$rename"}


def make_leaf(op: str, path: str, argument: Any) -> Leaf:
    """The leaf for ``{op: {path: argument}}``, validated as the server's ``init`` does."""
    return _LEAVES[op](op, path, argument)


class ObjectNode:
    """``UpdateObjectNode``: children by field name, plus the positional ``$`` child."""

    __slots__ = ("children", "index", "positional")

    def __init__(self) -> None:
        self.index: dict[str, Node] = {}
        self.children: list[tuple[str, Node]] = []
        self.positional: Node | None = None

    def get(self, name: str) -> Node | None:
        return self.positional if name == "$" else self.index.get(name)

    def put(self, name: str, child: Node) -> None:
        if name == "$":
            self.positional = child
        else:
            self.index[name] = child


class ArrayNode:
    """``UpdateArrayNode``: children by array filter identifier (``""`` for ``$[]``)."""

    __slots__ = ("children", "index")

    def __init__(self) -> None:
        self.index: dict[str, Node] = {}
        self.children: list[tuple[str, Node]] = []

    def get(self, name: str) -> Node | None:
        return self.index.get(name)

    def put(self, name: str, child: Node) -> None:
        self.index[name] = child


Node = ObjectNode | ArrayNode | Leaf
InnerNode = ObjectNode | ArrayNode
_by_path = functools.cmp_to_key(path_compare)


def finish(node: Node) -> None:
    """Order every node's children as the server's ``std::map`` does, once."""
    if isinstance(node, (ObjectNode, ArrayNode)):
        node.children = sorted(node.index.items(), key=lambda item: _by_path(item[0]))
        for _, child in node.children:
            finish(child)
        if isinstance(node, ObjectNode) and node.positional is not None:
            finish(node.positional)


def check_path(path: str) -> list[str]:
    """``fieldchecker::isUpdatable`` and the positional checks of ``parseAndMerge``."""
    if path == "":
        raise fail("An empty update path is not valid.", _EMPTY_FIELD_NAME)
    parts = path.split(".")
    if "" in parts:
        raise fail(
            f"The update path '{path}' contains an empty field name, which is not allowed.",
            _EMPTY_FIELD_NAME,
        )
    dollars = parts.count("$")
    if dollars > 1:
        raise fail(f"Too many positional (i.e. '$') elements found in path '{path}'", BAD_VALUE)
    if parts[0] == "$":
        raise fail(
            f"Cannot have positional (i.e. '$') element in the first position in path '{path}'",
            BAD_VALUE,
        )
    return parts


def place(root: ObjectNode, leaf: Leaf, path: str, identifiers: list[tuple[str, str]]) -> None:
    """``UpdateObjectNode::parseAndMerge``: place ``leaf`` in the tree, checking conflicts."""
    parts = check_path(path)
    current: InnerNode = root
    for i, part in enumerate(parts):
        name = part
        if is_identifier(part):
            if i == 0:
                raise fail(
                    "Cannot have array filter identifier (i.e. '$[<id>]') element in the first "
                    f"position in path '{path}'",
                    BAD_VALUE,
                )
            name = part[2:-1]
            if name:
                identifiers.append((name, path))
        child = current.get(name)
        if i == len(parts) - 1:
            if child is not None:
                raise _conflict(path, path)
            current.put(name, leaf)
            return
        wants_array = is_identifier(parts[i + 1])
        if child is None:
            child = ArrayNode() if wants_array else ObjectNode()
            current.put(name, child)
        elif not isinstance(child, ArrayNode if wants_array else ObjectNode):
            raise _conflict(path, ".".join(parts[: i + 1]))
        current = child


def _conflict(path: str, at: str) -> Exception:
    return fail(
        f"Updating the path '{path}' would create a conflict at '{at}'",
        CONFLICTING_UPDATE_OPERATORS,
    )


def merge(left: Node, right: Node, path: list[str]) -> Node:
    """``UpdateNode::createUpdateNodeByMerging``: two updates that reach one array element."""
    merged: InnerNode
    if isinstance(left, ObjectNode) and isinstance(right, ObjectNode):
        merged = ObjectNode()
        if left.positional is not None and right.positional is not None:
            merged.positional = merge(left.positional, right.positional, [*path, "$"])
        else:
            merged.positional = left.positional or right.positional
        _merge_children(merged, left, right, path, wrap=False)
    elif isinstance(left, ArrayNode) and isinstance(right, ArrayNode):
        merged = ArrayNode()
        _merge_children(merged, left, right, path, wrap=True)
    else:
        raise fail(f"Update created a conflict at '{'.'.join(path)}'", CONFLICTING_UPDATE_OPERATORS)
    return merged


def _merge_children(
    merged: InnerNode, left: InnerNode, right: InnerNode, path: list[str], wrap: bool
) -> None:
    """``createUpdateNodeMapByMerging``: children of one side are kept, shared ones merged."""
    for name in {**left.index, **right.index}:
        mine, theirs = left.index.get(name), right.index.get(name)
        if mine is None or theirs is None:
            merged.index[name] = theirs if mine is None else mine  # type: ignore[assignment]
        else:
            step = f"$[{name}]" if wrap else name
            merged.index[name] = merge(mine, theirs, [*path, step])
    merged.children = sorted(merged.index.items(), key=lambda item: _by_path(item[0]))
