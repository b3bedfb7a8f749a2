"""MongoDB's update operators, applied in the process with the server's own semantics.

Identity fields are stored encrypted, so the server cannot apply ``$set``, ``$inc``, ``$push`` …
to them: the proxy reads the document, applies the update here and writes the result back, and
an upsert's new document is built here too. The application must not be able to tell, so this
module follows the server's update system (MongoDB 5.0 and later) rather than a simplified
model: an update is parsed once into the server's tree of ``UpdateObjectNode``/``UpdateArrayNode``
with one leaf per operator and path, with the same validation and error codes; it is applied
the way the server applies it, children in path order (so new fields are appended in
lexicographic order, array indexes in numeric order), the positional ``$`` resolved from the
query, ``$[]`` and ``$[<id>]`` from the array filters, and the server's no-op rule deciding
``nModified``. Errors never quote a value of the document or of the update.

This module is the public surface and the parse; the tree is built in ``_update_tree``, applied
in ``_update_apply``, its leaves live in ``_update_ops`` and ``_update_array_ops``, and the
upsert seed in ``_upsert``.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bson.regex import Regex

from privata_mongo.core.failures import (
    BAD_VALUE,
    FAILED_TO_PARSE,
    IMMUTABLE_FIELD,
    OperationFailed,
)
from privata_mongo.core.mql._bson_types import type_name
from privata_mongo.core.mql._update_apply import Run, apply_object
from privata_mongo.core.mql._update_ops import Placeholder, Rename
from privata_mongo.core.mql._update_tree import (
    OPERATORS,
    Node,
    ObjectNode,
    check_path,
    finish,
    make_leaf,
    place,
)
from privata_mongo.core.mql._update_values import (
    DOLLAR_PREFIXED_FIELD_NAME,
    copy_value,
    fail,
)
from privata_mongo.core.mql._upsert import upsert_seed
from privata_mongo.core.mql.match import Matcher, compile_filter
from privata_mongo.core.mql.values import equal

__all__ = ["Applied", "CompiledUpdate", "compile_update", "replace_document", "upsert_seed"]

_INVALID_ID_FIELD: Final = 53  # ErrorCodes::InvalidIdField
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
    root = ObjectNode()
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
                place(root, Placeholder(op, path), path, identifiers)
                fields.add(path.split(".", 1)[0])
                if not isinstance(argument, str):
                    raise fail("The 'to' field for $rename must be a string", BAD_VALUE)
                check_path(argument)
                place(root, Rename(op, argument, path), argument, identifiers)
                fields.add(argument.split(".", 1)[0])
            else:
                check_path(path)
                place(root, make_leaf(op, path, argument), path, identifiers)
                fields.add(path.split(".", 1)[0])
    finish(root)
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


# ---- applying: array filters, the positional $, the inserted document ----------------------


class CompiledUpdate:
    """An operator update parsed once; ``apply`` runs it on one document at a time."""

    __slots__ = ("_filters", "_identifiers", "_merges", "_positional", "_query", "_root", "fields")

    def __init__(
        self,
        root: ObjectNode,
        fields: frozenset[str],
        identifiers: tuple[tuple[str, str], ...],
        positional: bool,
    ) -> None:
        self._root = root
        self._positional = positional
        self.fields = fields
        """Top-level field names the update may write (both sides of a ``$rename``)."""
        self._identifiers = identifiers
        self._merges: dict[tuple[int, int], Node] = {}
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
        run = Run(copy_value(document), now, inserting, matched, filters, self._merges)
        holder = [run.document]
        apply_object(self._root, run, (holder, 0), [], [])
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


def _inserted(document: dict[str, Any]) -> dict[str, Any]:
    """An upsert's document: ``_id`` first (``ensureIdFieldIsFirst``) and valid for storage."""
    if "_id" not in document:
        return document
    identifier = document["_id"]
    if isinstance(identifier, (list, tuple, Regex, re.Pattern)):
        raise fail(f"The '_id' value cannot be of type {type_name(identifier)}", _INVALID_ID_FIELD)
    if isinstance(identifier, dict) and any(str(key).startswith("$") for key in identifier):
        raise fail("_id fields may not contain '$'-prefixed fields", DOLLAR_PREFIXED_FIELD_NAME)
    if next(iter(document)) == "_id":
        return document
    return {"_id": identifier, **{k: v for k, v in document.items() if k != "_id"}}


# ---- replacements --------------------------------------------------------------------------


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
                DOLLAR_PREFIXED_FIELD_NAME,
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
