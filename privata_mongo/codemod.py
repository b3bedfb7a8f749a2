"""Rewrite an application's imports of mongoengine and Beanie to the privata facades.

The promise of the facades is that changing imports is the whole migration of the code, so the
change must be mechanical: every form of import is rewritten, nothing else is touched, and a
second run changes nothing. The rewrite works on libcst's concrete syntax tree, so formatting
and comments stay as they were.

- ``import mongoengine`` → ``import privata_mongo.mongoengine as mongoengine`` (the name the code
  uses stays bound to the same kind of object; submodules are reached through the facade);
- ``import mongoengine as me`` → ``import privata_mongo.mongoengine as me``;
- ``import mongoengine.fields`` → ``import privata_mongo.mongoengine as mongoengine`` (the code
  then reads ``mongoengine.fields``, which the facade serves as mongoengine's own module);
- ``from mongoengine import X`` and ``from mongoengine.queryset.visitor import Q`` →
  ``from privata_mongo.mongoengine… import …``.

The same for ``beanie``. Relative imports and other packages are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import libcst as cst

__all__ = ["FACADES", "Rewrite", "rewrite_source"]

FACADES: dict[str, str] = {
    "mongoengine": "privata_mongo.mongoengine",
    "beanie": "privata_mongo.beanie",
}
"""Native top-level package → the facade that replaces it."""


@dataclass(frozen=True, slots=True)
class Rewrite:
    """The rewritten source, and how many of its lines changed."""

    source: str
    lines_changed: int
    lines_scanned: int

    @property
    def changed(self) -> bool:
        """Whether the rewrite changed anything."""
        return self.lines_changed > 0


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    raise TypeError(f"not a dotted name: {type(node).__name__}")


def _expression(dotted: str) -> cst.Attribute | cst.Name:
    head, *rest = dotted.split(".")
    node: cst.Attribute | cst.Name = cst.Name(head)
    for part in rest:
        node = cst.Attribute(value=node, attr=cst.Name(part))
    return node


def _facade_of(dotted: str, facades: dict[str, str]) -> str | None:
    """``mongoengine.queryset`` → ``privata_mongo.mongoengine.queryset``; others → ``None``."""
    top, _, rest = dotted.partition(".")
    facade = facades.get(top)
    if facade is None:
        return None
    return f"{facade}.{rest}" if rest else facade


class _Imports(cst.CSTTransformer):
    def __init__(self, facades: dict[str, str]) -> None:
        super().__init__()
        self.facades = facades

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom:
        if updated_node.relative or updated_node.module is None:
            return updated_node
        target = _facade_of(_dotted(updated_node.module), self.facades)
        if target is None:
            return updated_node
        return updated_node.with_changes(module=_expression(target))

    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import) -> cst.Import:
        names: list[cst.ImportAlias] = []
        for alias in updated_node.names:
            dotted = _dotted(alias.name)
            target = _facade_of(dotted, self.facades)
            if target is None:
                names.append(alias)
                continue
            if alias.asname is not None:
                names.append(alias.with_changes(name=_expression(target)))
                continue
            # ``import mongoengine[.sub]`` binds ``mongoengine``: keep that name bound, to the
            # facade, which serves the submodules as attributes.
            top = dotted.partition(".")[0]
            bound = cst.AsName(name=cst.Name(top))
            names.append(alias.with_changes(name=_expression(self.facades[top]), asname=bound))
        return updated_node.with_changes(names=_unique(names))


def _unique(names: Sequence[cst.ImportAlias]) -> list[cst.ImportAlias]:
    """One alias per binding: ``import mongoengine, mongoengine.fields`` binds one name."""
    seen: set[tuple[str, str | None]] = set()
    out: list[cst.ImportAlias] = []
    for alias in names:
        asname = alias.asname
        bound = _dotted(asname.name) if asname and isinstance(asname.name, cst.Name) else None
        key = (_dotted(alias.name), bound)
        if key in seen:
            continue
        seen.add(key)
        out.append(alias)
    if out:
        out[-1] = out[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return out


def rewrite_source(source: str, facades: Iterable[str] = FACADES) -> Rewrite:
    """Rewrite the imports of ``source`` (a module's text) to the facades.

    Args:
        source: Python source code.
        facades: which native packages to rewrite (``"mongoengine"``, ``"beanie"``).

    Returns:
        The new source and the count of changed lines.

    Raises:
        libcst.ParserSyntaxError: ``source`` is not valid Python.
    """
    chosen = {name: FACADES[name] for name in facades}
    module = cst.parse_module(source)
    out = module.visit(_Imports(chosen)).code
    before, after = source.splitlines(), out.splitlines()
    changed = sum(1 for old, new in zip(before, after, strict=False) if old != new)
    changed += abs(len(before) - len(after))
    return Rewrite(out, changed, len(before))
