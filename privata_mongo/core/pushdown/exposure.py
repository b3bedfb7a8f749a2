"""What the documents of a pipeline hold of identity values, stage after stage.

On the server a document of a split collection is its clinical row: the identity values are
elsewhere, and the pseudonym stands for them. An ``Exposure`` says which identity values the
*logical* document would hold at one point of a pipeline, and under which names, so that they
can be joined in when the documents come out (or read where a later stage needs them).

The stages that reshape documents one at a time change it without needing the values:
including or excluding an identity field (``$project``, ``$unset``), overwriting it
(``$set: {first_name: "x"}``), or copying it under another name (``$project``/``$set``:
``{city: "$address.city"}``). ``reshape`` gives the server's part of such a stage (its clinical
part, with the pseudonym kept) and the exposure after it; a stage that *computes* from identity
values has no server part, and ``reshape`` answers ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from privata_mongo.core.mql.reads import expression_reads, plain_path
from privata_mongo.core.schema import PSEUDONYM_FIELD, ModelSchema, Side, top_field

__all__ = ["NOTHING", "Exposure", "Reshaped", "reshape", "unwind_paths"]


@dataclass(frozen=True, slots=True)
class Exposure:
    """Which identity values the documents at one point of a pipeline would hold, and where.

    Attributes:
        fields: identity fields still present under their own name (``None``: all of them).
        removed: identity fields removed or overwritten by a stage since.
        renames: ``(name, source)``: the top-level field ``name`` holds the identity value at
            ``source`` (a copy made by ``$project``/``$set``: ``{city: "$address.city"}``).
    """

    fields: frozenset[str] | None = None
    removed: frozenset[str] = frozenset()
    renames: tuple[tuple[str, str], ...] = ()

    def source(self, schema: ModelSchema, path: str) -> str | None:
        """The identity path ``path`` reads, or ``None`` when the server holds its value."""
        top, _, rest = path.partition(".")
        for name, source in self.renames:
            if name == top:
                return f"{source}.{rest}" if rest else source
        if top in self.removed or schema.side_of(top) is not Side.IDENTITY:
            return None
        if self.fields is not None and top not in self.fields:
            return None
        return path

    def sources(self, schema: ModelSchema, paths: set[str] | frozenset[str]) -> dict[str, str]:
        """The paths among ``paths`` that read identity values, with their identity source."""
        found = {path: self.source(schema, path) for path in paths}
        return {path: source for path, source in found.items() if source is not None}

    @property
    def empty(self) -> bool:
        """Whether nothing needs joining."""
        return self.fields is not None and not self.fields and not self.renames

    def exposed(self, name: str) -> bool:
        """Whether the identity field ``name`` is joined under its own name."""
        if name in self.removed or any(n == name for n, _ in self.renames):
            return False
        return self.fields is None or name in self.fields

    def projection(self) -> dict[str, Any] | None:
        """The identity fields to read for the join (``None``: every field)."""
        if self.fields is None:
            return None
        tops = set(self.fields) | {top_field(s) for _, s in self.renames}
        return dict.fromkeys(sorted(tops), 1)

    def without(self, names: set[str]) -> Exposure:
        """The exposure once ``names`` (top-level) are removed or overwritten."""
        if not names:
            return self
        return Exposure(
            self.fields,
            self.removed | frozenset(names),
            tuple((n, s) for n, s in self.renames if n not in names),
        )


NOTHING = Exposure(fields=frozenset())
"""Documents that hold no identity value (after a ``$group``, a ``$count`` …)."""


@dataclass(frozen=True, slots=True)
class Reshaped:
    """A reshaping stage split into the server's part and the exposure after it.

    Attributes:
        stage: what the server runs (``None``: nothing is left for it).
        exposure: what the documents hold afterwards.
        written: top-level fields the stage writes or removes (``None``: it may drop any).
        copied: identity paths copied under another name.
    """

    stage: Mapping[str, Any] | None
    exposure: Exposure
    written: frozenset[str] | None = frozenset()
    copied: frozenset[str] = frozenset()


@dataclass
class _Parts:
    server: dict[str, Any] = field(default_factory=dict)
    renames: list[tuple[str, str]] = field(default_factory=list)
    written: set[str] = field(default_factory=set)


def reshape(schema: ModelSchema, exposure: Exposure, name: str, spec: Any) -> Reshaped | None:
    """Split ``{name: spec}`` (``$project``, ``$set``/``$addFields``, ``$unset``, ``$unwind``).

    Returns ``None`` when the stage computes from identity values (the process must run it).
    A malformed specification goes to the server unchanged, which reports it in its own words.
    """
    if name == "$project":
        return _project(schema, exposure, spec)
    if name in ("$set", "$addFields"):
        return _add_fields(schema, exposure, name, spec)
    if name == "$unset":
        return _unset(schema, exposure, spec)
    return _unwind(schema, exposure, spec)


def _copy(schema: ModelSchema, exposure: Exposure, key: str, value: Any) -> str | bool | None:
    """For a computed field: ``False`` if clinical, the identity source if a plain copy."""
    reads = expression_reads(value)
    if reads is not None and not exposure.sources(schema, reads):
        return False
    path = plain_path(value)
    source = exposure.source(schema, path) if path is not None else None
    if source is None or "." in key or key == "_id":
        return None
    return source


def _inclusion(spec: Mapping[str, Any]) -> bool:
    """Whether a ``$project`` specification is an inclusion (else an exclusion)."""
    for key, value in spec.items():
        if isinstance(value, (bool, int, float)):
            if key == "_id":
                continue
            return bool(value)
        return True
    return False


def _project(schema: ModelSchema, exposure: Exposure, spec: Any) -> Reshaped | None:
    if not isinstance(spec, Mapping) or not spec:
        return Reshaped({"$project": spec}, exposure)
    inclusion = _inclusion(spec)
    parts = _Parts()
    kept: set[str] = set()
    for key, value in ((str(k), v) for k, v in spec.items()):
        flag = isinstance(value, (bool, int, float))
        if flag and (key == "_id" or exposure.source(schema, key) is None):
            parts.server[key] = value
            continue
        if flag:
            if "." in key or bool(value) != inclusion:
                return None  # a sub-path, or a bad mix the engine reports as the server does
            kept.add(key)
            continue
        copied = _copy(schema, exposure, key, value)
        if copied is None:
            return None
        if copied is False:
            parts.server[key] = value
        else:
            parts.renames.append((key, str(copied)))
    if not inclusion:
        written = frozenset(kept | {top_field(k) for k in parts.server})
        stage = {"$project": parts.server} if parts.server else None
        return Reshaped(stage, exposure.without(kept), written)
    carried = tuple((n, s) for n, s in exposure.renames if n in kept)
    fields = frozenset(k for k in kept if exposure.exposed(k))
    after = Exposure(fields, frozenset(), (*carried, *parts.renames))
    if not after.empty:
        parts.server[PSEUDONYM_FIELD] = 1
    return Reshaped({"$project": parts.server}, after, None, frozenset(s for _, s in parts.renames))


def _add_fields(schema: ModelSchema, exposure: Exposure, name: str, spec: Any) -> Reshaped | None:
    if not isinstance(spec, Mapping) or not spec:
        return Reshaped({name: spec}, exposure)
    parts = _Parts()
    for key, value in ((str(k), v) for k, v in spec.items()):
        copied = _copy(schema, exposure, key, value)
        if copied is None:
            return None
        if copied is False:
            if "." in key and exposure.source(schema, key) is not None:
                return None  # writes into an identity document
            parts.server[key] = value
        else:
            parts.renames.append((key, str(copied)))
        parts.written.add(top_field(key))
    after = exposure.without(parts.written)
    after = Exposure(after.fields, after.removed, (*after.renames, *parts.renames))
    return Reshaped(
        {name: parts.server} if parts.server else None,
        after,
        frozenset(parts.written),
        frozenset(s for _, s in parts.renames),
    )


def _unset(schema: ModelSchema, exposure: Exposure, spec: Any) -> Reshaped | None:
    names = [spec] if isinstance(spec, str) else spec
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return Reshaped({"$unset": spec}, exposure)
    server: list[str] = []
    removed: set[str] = set()
    for path in names:
        if exposure.source(schema, path) is None:
            server.append(path)
        elif "." in path:
            return None
        else:
            removed.add(path)
    stage = {"$unset": spec if server == names else server} if server else None
    written = removed | {top_field(p) for p in server}
    return Reshaped(stage, exposure.without(removed), frozenset(written))


def unwind_paths(spec: Any) -> tuple[str | None, str | None]:
    """The path an ``$unwind`` unwinds and the field its array index goes to (if any)."""
    if isinstance(spec, str):
        return (spec[1:] if spec.startswith("$") else None), None
    if isinstance(spec, Mapping) and isinstance(spec.get("path"), str):
        path = spec["path"]
        index = spec.get("includeArrayIndex")
        return (path[1:] if path.startswith("$") else None), (
            index if isinstance(index, str) else None
        )
    return None, None


def _unwind(schema: ModelSchema, exposure: Exposure, spec: Any) -> Reshaped | None:
    path, index = unwind_paths(spec)
    if path is not None and exposure.source(schema, path) is not None:
        return None
    written = {top_field(p) for p in (path, index) if p is not None}
    after = exposure.without({top_field(index)}) if index is not None else exposure
    return Reshaped({"$unwind": spec}, after, frozenset(written))
