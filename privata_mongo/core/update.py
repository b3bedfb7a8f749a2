"""MongoDB's update operators, applied in the process with the server's own semantics.

Identity fields are stored encrypted, so the server cannot apply ``$set``, ``$inc``, ``$push`` …
to them: the proxy reads the document, applies the update here and writes the result back, and
an upsert's new document is built here too. The application must not be able to tell, so this
module follows the server's update system (MongoDB 5.0 and later) rather than a simplified
model: an update is parsed once into the server's tree of ``UpdateObjectNode``/``UpdateArrayNode``
with one leaf per operator and path (leaves live in ``_update_ops``), with the same validation
and error codes; it is applied the way the server applies it, children in path order (so new
fields are appended in lexicographic order, array indexes in numeric order), the positional
``$`` resolved from the query, ``$[]`` and ``$[<id>]`` from the array filters, and the server's
no-op rule deciding ``nModified``. Errors never quote a value of the document or of the update.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bson.regex import Regex

from privata_mongo.core._update_ops import (
    NOOP,
    OPERATORS,
    Leaf,
    Placeholder,
    Rename,
    array_index,
    copy_value,
    fail,
    make_leaf,
    path_compare,
    type_name,
)
from privata_mongo.core.failures import (
    BAD_VALUE,
    CONFLICTING_UPDATE_OPERATORS,
    FAILED_TO_PARSE,
    IMMUTABLE_FIELD,
    PATH_NOT_VIABLE,
    OperationFailed,
)
from privata_mongo.core.match import Matcher, compile_filter
from privata_mongo.core.values import equal

__all__ = ["Applied", "CompiledUpdate", "compile_update", "replace_document", "upsert_seed"]

_DOLLAR_PREFIXED_FIELD_NAME: Final = 52  # ErrorCodes::DollarPrefixedFieldName
_INVALID_ID_FIELD: Final = 53  # ErrorCodes::InvalidIdField
_NOT_SINGLE_VALUE_FIELD: Final = 54  # ErrorCodes::NotSingleValueField
_EMPTY_FIELD_NAME: Final = 56  # ErrorCodes::EmptyFieldName
_CANNOT_BACKFILL_ARRAY: Final = 34  # ErrorCodes::CannotBackfillArray
_MAX_PADDING: Final = 1_500_000  # pathsupport::kMaxPaddingAllowed
_PLACEHOLDER: Final = re.compile(r"[a-z][a-zA-Z0-9]*")


@dataclass(frozen=True, slots=True)
class Applied:
    """The result of applying an update to one document."""

    document: dict[str, Any]
    modified: bool
    """Whether the server would count the document in ``nModified`` (False for a no-op).

    For an upsert's insert it says whether the update changed the seed; the server reports
    ``nModified`` 0 for an insert whatever this is.
    """


class _Object:
    """``UpdateObjectNode``: children by field name, plus the positional ``$`` child."""

    __slots__ = ("children", "index", "positional")

    def __init__(self) -> None:
        self.index: dict[str, _Node] = {}
        self.children: list[tuple[str, _Node]] = []
        self.positional: _Node | None = None

    def get(self, name: str) -> _Node | None:
        return self.positional if name == "$" else self.index.get(name)

    def put(self, name: str, child: _Node) -> None:
        if name == "$":
            self.positional = child
        else:
            self.index[name] = child


class _Array:
    """``UpdateArrayNode``: children by array filter identifier (``""`` for ``$[]``)."""

    __slots__ = ("children", "index")

    def __init__(self) -> None:
        self.index: dict[str, _Node] = {}
        self.children: list[tuple[str, _Node]] = []

    def get(self, name: str) -> _Node | None:
        return self.index.get(name)

    def put(self, name: str, child: _Node) -> None:
        self.index[name] = child


_Node = _Object | _Array | Leaf
_Inner = _Object | _Array
_Location = tuple[Any, Any]  # (container, key): the value is container[key]
_by_path = functools.cmp_to_key(path_compare)


def _finish(node: _Node) -> None:
    """Order every node's children as the server's ``std::map`` does, once."""
    if isinstance(node, (_Object, _Array)):
        node.children = sorted(node.index.items(), key=lambda item: _by_path(item[0]))
        for _, child in node.children:
            _finish(child)
        if isinstance(node, _Object) and node.positional is not None:
            _finish(node.positional)


def _is_identifier(part: str) -> bool:
    return len(part) >= 3 and part.startswith("$[") and part.endswith("]")


# ---- parsing -------------------------------------------------------------------------------


def compile_update(update: Mapping[str, Any]) -> CompiledUpdate:
    """Parse and validate an operator update once, as the server does.

    Raises:
        WriteFailed: the update is malformed, with the server's code: 9 for an unknown modifier,
            a non-document operand, a replacement document or a pipeline (not handled here),
            40 for conflicting paths, 56 for empty field names, 2 or 14 for bad arguments.
    """
    if not isinstance(update, Mapping):
        raise fail(
            "An update pipeline (a list of stages) is not applied in the process", FAILED_TO_PARSE
        )
    first = next(iter(update), None)
    if not isinstance(first, str) or not first.startswith("$"):
        raise fail(
            "A replacement document is not an operator update: use replace_document()",
            FAILED_TO_PARSE,
        )
    root = _Object()
    fields: set[str] = set()
    identifiers: list[tuple[str, str]] = []
    for op, operand in update.items():
        if op not in OPERATORS:
            raise fail(
                f"Unknown modifier: {op}. Expected a valid update modifier or pipeline-style "
                "update specified as an array",
                FAILED_TO_PARSE,
            )
        if not isinstance(operand, Mapping):
            raise fail(
                f"Modifiers operate on fields but we found type {type_name(operand)} instead. "
                f"For example: {{$mod: {{<field>: ...}}}} not {{{op}: ...}}",
                FAILED_TO_PARSE,
            )
        for path, argument in operand.items():
            if not isinstance(path, str):
                raise TypeError("update paths must be strings")
            if op == "$rename":
                _parse(root, Placeholder(op, path), path, identifiers)
                fields.add(path.split(".", 1)[0])
                if not isinstance(argument, str):
                    raise fail("The 'to' field for $rename must be a string", BAD_VALUE)
                _check_path(argument)
                _parse(root, Rename(op, argument, path), argument, identifiers)
                fields.add(argument.split(".", 1)[0])
            else:
                _check_path(path)
                _parse(root, make_leaf(op, path, argument), path, identifiers)
                fields.add(path.split(".", 1)[0])
    _finish(root)
    positional = any(".$." in f".{path}." for path in _paths(update))
    return CompiledUpdate(root, frozenset(fields), tuple(identifiers), positional)


def _paths(update: Mapping[str, Any]) -> list[str]:
    """Every path an update names (both sides of a ``$rename``)."""
    return [
        path
        for op, operand in update.items()
        for key, target in operand.items()
        for path in ((key, target) if op == "$rename" else (key,))
    ]


def _check_path(path: str) -> list[str]:
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


def _parse(root: _Object, leaf: Leaf, path: str, identifiers: list[tuple[str, str]]) -> None:
    """``UpdateObjectNode::parseAndMerge``: place ``leaf`` in the tree, checking conflicts."""
    parts = _check_path(path)
    current: _Inner = root
    for i, part in enumerate(parts):
        name = part
        if _is_identifier(part):
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
        wants_array = _is_identifier(parts[i + 1])
        if child is None:
            child = _Array() if wants_array else _Object()
            current.put(name, child)
        elif not isinstance(child, _Array if wants_array else _Object):
            raise _conflict(path, ".".join(parts[: i + 1]))
        current = child


def _conflict(path: str, at: str) -> Exception:
    return fail(
        f"Updating the path '{path}' would create a conflict at '{at}'",
        CONFLICTING_UPDATE_OPERATORS,
    )


def _merge(left: _Node, right: _Node, path: list[str]) -> _Node:
    """``UpdateNode::createUpdateNodeByMerging``: two updates that reach one array element."""
    merged: _Inner
    if isinstance(left, _Object) and isinstance(right, _Object):
        merged = _Object()
        if left.positional is not None and right.positional is not None:
            merged.positional = _merge(left.positional, right.positional, [*path, "$"])
        else:
            merged.positional = left.positional or right.positional
        _merge_children(merged, left, right, path, wrap=False)
    elif isinstance(left, _Array) and isinstance(right, _Array):
        merged = _Array()
        _merge_children(merged, left, right, path, wrap=True)
    else:
        raise fail(f"Update created a conflict at '{'.'.join(path)}'", CONFLICTING_UPDATE_OPERATORS)
    return merged


def _merge_children(
    merged: _Inner, left: _Inner, right: _Inner, path: list[str], wrap: bool
) -> None:
    """``createUpdateNodeMapByMerging``: children of one side are kept, shared ones merged."""
    for name in {**left.index, **right.index}:
        mine, theirs = left.index.get(name), right.index.get(name)
        if mine is None or theirs is None:
            merged.index[name] = theirs if mine is None else mine  # type: ignore[assignment]
        else:
            step = f"$[{name}]" if wrap else name
            merged.index[name] = _merge(mine, theirs, [*path, step])
    merged.children = sorted(merged.index.items(), key=lambda item: _by_path(item[0]))


# ---- applying ------------------------------------------------------------------------------


class _Run:
    """The state of one ``apply``: the document, its positional index, filters and clock."""

    __slots__ = ("document", "filters", "inserting", "matched", "merges", "modified", "now")

    def __init__(
        self,
        document: dict[str, Any],
        now: datetime.datetime,
        inserting: bool,
        matched: str | None,
        filters: Mapping[str, Matcher],
        merges: dict[tuple[int, int], _Node],
    ) -> None:
        self.document = document
        self.now = now
        self.inserting = inserting
        self.matched = matched
        self.filters = filters
        self.merges = merges
        self.modified = False

    def merge(self, left: _Node, right: _Node, path: list[str]) -> _Node:
        key = (id(left), id(right))
        merged = self.merges.get(key)
        if merged is None:
            merged = self.merges[key] = _merge(left, right, path)
        return merged


class CompiledUpdate:
    """An operator update parsed once; ``apply`` runs it on one document at a time."""

    __slots__ = ("_filters", "_identifiers", "_merges", "_positional", "_query", "_root", "fields")

    def __init__(
        self,
        root: _Object,
        fields: frozenset[str],
        identifiers: tuple[tuple[str, str], ...],
        positional: bool,
    ) -> None:
        self._root = root
        self._positional = positional
        self.fields = fields
        """Top-level field names the update may write (both sides of a ``$rename``)."""
        self._identifiers = identifiers
        self._merges: dict[tuple[int, int], _Node] = {}
        self._filters: tuple[Any, dict[str, Matcher]] | None = None
        self._query: tuple[Any, Matcher] | None = None

    def apply(
        self,
        document: Mapping[str, Any],
        *,
        now: datetime.datetime,
        inserting: bool = False,
        array_filters: Sequence[Mapping[str, Any]] | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> Applied:
        """Apply the update to a copy of ``document``, as the server would.

        Args:
            document: the current document (left untouched).
            now: the time ``$currentDate`` writes (the core never reads the clock).
            inserting: the document is an upsert's seed (``$setOnInsert`` applies, ``_id`` is
                moved first and validated).
            array_filters: the ``arrayFilters`` option, for ``$[<identifier>]``.
            query: the update's filter, which decides the positional ``$``.

        Raises:
            WriteFailed: the server would reject the update for this document (path not
                viable 28, type mismatch 14, immutable ``_id`` 66, conflict 40 …).
        """
        filters = self._array_filters(array_filters)
        matched = None
        if self._positional and query is not None and not inserting:
            index = self._matcher(query).positional(document)
            matched = None if index is None else str(index)
        run = _Run(copy_value(document), now, inserting, matched, filters, self._merges)
        holder = [run.document]
        _apply_object(self._root, run, (holder, 0), [], [])
        result = run.document
        if inserting:
            result = _inserted(result)
        return Applied(result, run.modified)

    def _matcher(self, query: Mapping[str, Any]) -> Matcher:
        if self._query is None or self._query[0] is not query:
            self._query = (query, compile_filter(query))
        return self._query[1]

    def _array_filters(self, raw: Sequence[Mapping[str, Any]] | None) -> dict[str, Matcher]:
        """Parse ``arrayFilters`` (cached for the same list) and check them against the update."""
        if self._filters is not None and self._filters[0] is raw:
            return self._filters[1]
        filters: dict[str, Matcher] = {}
        for spec in raw or ():
            name = _placeholder(spec)
            try:
                matcher = compile_filter(spec)
            except OperationFailed as failure:
                raise fail(
                    f"Error parsing array filter :: caused by :: {failure.message}", failure.code
                ) from None
            if name in filters:
                raise fail(
                    f"Found multiple array filters with the same top-level field name {name}",
                    FAILED_TO_PARSE,
                )
            filters[name] = matcher
        used = {name for name, _ in self._identifiers}
        for name, path in self._identifiers:
            if name not in filters:
                raise fail(
                    f"No array filter found for identifier '{name}' in path '{path}'", BAD_VALUE
                )
        for name in filters:
            if name not in used:
                raise fail(
                    f"The array filter for identifier '{name}' was not used in the update",
                    FAILED_TO_PARSE,
                )
        self._filters = (raw, filters)
        return filters


def _placeholder(spec: Any) -> str:
    """``ExpressionWithPlaceholder``: the one top-level field name of an array filter."""
    if not isinstance(spec, Mapping):
        raise fail("Each array filter must be an object", FAILED_TO_PARSE)
    names: list[str] = []

    def collect(filter: Mapping[str, Any]) -> None:
        for key, value in filter.items():
            if key in ("$and", "$or", "$nor") and isinstance(value, (list, tuple)):
                for clause in value:
                    if isinstance(clause, Mapping):
                        collect(clause)
            elif not key.startswith("$"):
                name = key.split(".", 1)[0]
                if name not in names:
                    names.append(name)

    collect(spec)
    if not names:
        raise fail(
            "Cannot use an expression without a top-level field name in arrayFilters",
            FAILED_TO_PARSE,
        )
    if len(names) > 1:
        raise fail(
            f"Expected a single top-level field name, found '{names[0]}' and '{names[1]}'",
            FAILED_TO_PARSE,
        )
    if not _PLACEHOLDER.fullmatch(names[0]):
        raise fail(
            "The top-level field name must be an alphanumeric string beginning with a "
            f"lowercase letter, found '{names[0]}'",
            BAD_VALUE,
        )
    return names[0]


def _apply_node(
    node: _Node, run: _Run, location: _Location, taken: list[str], create: list[str]
) -> None:
    if isinstance(node, _Object):
        _apply_object(node, run, location, taken, create)
    elif isinstance(node, _Array):
        _apply_array(node, run, location, taken, create)
    elif isinstance(node, Rename):
        _apply_rename(node, run, location, taken, create)
    else:
        _apply_leaf(node, run, location, taken, create)


def _apply_object(
    node: _Object, run: _Run, location: _Location, taken: list[str], create: list[str]
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
    child: _Node,
    field: str,
    run: _Run,
    location: _Location,
    taken: list[str],
    create: list[str],
) -> _Location:
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
    node: _Array, run: _Run, location: _Location, taken: list[str], create: list[str]
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
    plan: list[tuple[int, list[_Node]]] = []
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


def _check_created(run: _Run, taken: list[str], create: list[str]) -> None:
    """Storage and immutability checks of a newly created path."""
    if not run.inserting and not taken and create[0].startswith("$"):
        raise fail(
            f"The dollar ($) prefixed field '{create[0]}' in '{create[0]}' is not allowed in "
            "the context of an update's replacement document. Consider using an aggregation "
            "pipeline with $replaceWith.",
            _DOLLAR_PREFIXED_FIELD_NAME,
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
    leaf: Leaf, run: _Run, location: _Location, taken: list[str], create: list[str]
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
    node: Rename, run: _Run, location: _Location, taken: list[str], create: list[str]
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


def _inserted(document: dict[str, Any]) -> dict[str, Any]:
    """An upsert's document: ``_id`` first (``ensureIdFieldIsFirst``) and valid for storage."""
    if "_id" not in document:
        return document
    identifier = document["_id"]
    if isinstance(identifier, (list, tuple, Regex, re.Pattern)):
        raise fail(f"The '_id' value cannot be of type {type_name(identifier)}", _INVALID_ID_FIELD)
    if isinstance(identifier, dict) and any(str(key).startswith("$") for key in identifier):
        raise fail("_id fields may not contain '$'-prefixed fields", _DOLLAR_PREFIXED_FIELD_NAME)
    if next(iter(document)) == "_id":
        return document
    return {"_id": identifier, **{k: v for k, v in document.items() if k != "_id"}}


# ---- replacements and upsert seeds ---------------------------------------------------------


def replace_document(
    original: Mapping[str, Any] | None, replacement: Mapping[str, Any]
) -> dict[str, Any]:
    """The document a replacement-style update stores (``ObjectReplaceExecutor``).

    The original ``_id`` is kept and placed first; the replacement may repeat it but not
    change it.

    Raises:
        WriteFailed: a top-level ``$``-prefixed field (code 52), or an ``_id`` different from
            the original's (code 66), or an ``_id`` the server cannot store (code 53).
    """
    for key in replacement:
        if key.startswith("$"):
            raise fail(
                f"The dollar ($) prefixed field '{key}' in '{key}' is not allowed in the "
                "context of an update's replacement document. Consider using an aggregation "
                "pipeline with $replaceWith.",
                _DOLLAR_PREFIXED_FIELD_NAME,
            )
    document = copy_value(replacement)
    if original is not None and "_id" in original:
        identifier = original["_id"]
        if "_id" in document and not equal(document["_id"], identifier):
            raise fail(
                "After applying the update, the (immutable) field '_id' was found to have been "
                "altered",
                IMMUTABLE_FIELD,
            )
        document.pop("_id", None)
        return {"_id": copy_value(identifier), **document}
    return _inserted(document)


def upsert_seed(filter: Mapping[str, Any]) -> dict[str, Any]:
    """The document an upsert starts from: the filter's equality predicates.

    As the server's ``populateDocumentWithQueryFields`` after query optimization: top-level
    equalities, ``$eq``, ``$and`` clauses, a ``$or`` of one clause, a ``$in`` of one value and
    the values of ``$all`` count; dotted paths become embedded documents; fields are added in
    path order. Other operators contribute nothing.

    Raises:
        WriteFailed: two equalities on the same path or on a path and its prefix (code 54).
    """
    equalities: dict[str, Any] = {}
    _equalities(filter, equalities)
    document: dict[str, Any] = {}
    for path in sorted(equalities):
        parts = path.split(".")
        target = document
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = copy_value(equalities[path])
    return document


def _is_operator_document(value: Any) -> bool:
    if not isinstance(value, Mapping) or not value:
        return False
    first = next(iter(value))
    return (
        isinstance(first, str)
        and first.startswith("$")
        and not ("$ref" in value and "$id" in value)
    )


def _is_regex(value: Any) -> bool:
    return isinstance(value, (Regex, re.Pattern))


def _equalities(filter: Mapping[str, Any], found: dict[str, Any]) -> None:
    for key, value in filter.items():
        if key == "$and" or (key == "$or" and isinstance(value, (list, tuple)) and len(value) == 1):
            for clause in value if isinstance(value, (list, tuple)) else ():
                if isinstance(clause, Mapping):
                    _equalities(clause, found)
        elif key.startswith("$"):
            continue
        elif _is_operator_document(value):
            for op, argument in value.items():
                for item in _equal_values(op, argument):
                    _add_equality(key, item, found)
        elif not _is_regex(value):
            _add_equality(key, value, found)


def _equal_values(op: str, argument: Any) -> list[Any]:
    """The values an operator fixes a path to, after the server's query optimizations."""
    if op == "$eq":
        return [argument]
    if op == "$in" and isinstance(argument, (list, tuple)):
        distinct: list[Any] = []
        for item in argument:
            if _is_regex(item):
                return []
            if not any(equal(item, seen) for seen in distinct):
                distinct.append(item)
        return distinct if len(distinct) == 1 else []
    if op == "$all" and isinstance(argument, (list, tuple)):
        if argument and isinstance(argument[0], Mapping) and "$elemMatch" in argument[0]:
            return []
        return [item for item in argument if not _is_regex(item)]
    return []


def _add_equality(path: str, value: Any, found: dict[str, Any]) -> None:
    for other in found:
        if other == path:
            message = f"path '{path}' is matched twice"
        elif path.startswith(other + ".") or other.startswith(path + "."):
            longer, shorter = (path, other) if len(path) > len(other) else (other, path)
            message = f"both paths '{longer}' and '{shorter}' are matched"
        else:
            continue
        raise fail(f"cannot infer query fields to set, {message}", _NOT_SINGLE_VALUE_FIELD)
    found[path] = value
