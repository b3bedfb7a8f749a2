"""Split a ``$group`` over identity values into a server part and a merge in the process.

The server cannot group on values it does not hold, but it holds the pseudonym that stands for
them, and a data subject's identity values are the same in every one of their documents. So
the group is split the way a sharded cluster splits it (``DocumentSourceGroup``'s shard and
merge parts): the server computes *partial groups*, one per pseudonym and value of the key's
clinical parts, with partial accumulators (a sum, a count, a minimum ...); the process maps
each pseudonym to its identity values, in batches, and merges the partial groups that fall
into the same group. What grows with the documents stays on the server; the process holds one
entry per group, and reads identity rows once per batch of partial groups.

An accumulator merges when it decomposes: ``$sum``, ``$count``, ``$avg`` (as a sum and a count
of numbers), ``$min``, ``$max``, ``$push``, ``$addToSet``, and ``$first``/``$last`` when a
``$sort`` on clinical fields before the group defines the order (each partial group also
reports its first or last sort key). Over clinical fields any expression runs on the server;
over identity fields only a field path can be merged (the value times the partial group's
document count). Anything else is refused, naming the field and the remedy.

Merged ``$push`` arrays hold the elements of the partial groups one partial group after the
other, as a sharded cluster concatenates its shards' arrays: the same elements as natively,
not necessarily in the collection's natural order. Groups come out in order of first
appearance of their partial groups (MongoDB does not define the order of ``$group``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from privata_mongo.core.mql.group_merge import (
    GroupTable,
    Merge,
    average,
    first_or_last,
    identity_value,
    min_or_max,
    pushed,
    total,
)
from privata_mongo.core.mql.reads import expression_reads, plain_path, validate_field_name
from privata_mongo.core.mql.values import MISSING
from privata_mongo.core.schema import PSEUDONYM_FIELD, ModelSchema, top_field
from privata_mongo.errors import UnsupportedQuery

__all__ = ["GroupSplit", "groups_by_subject", "split_group", "subject_of"]

_DECOMPOSABLE = ("$sum", "$avg", "$min", "$max", "$push", "$addToSet", "$first", "$last")


class _Exposure(Protocol):
    def source(self, schema: ModelSchema, path: str) -> str | None: ...


# -- the group key ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Const:
    value: Any


@dataclass(frozen=True, slots=True)
class _Identity:
    path: str


@dataclass(frozen=True, slots=True)
class _Clinical:
    name: str


@dataclass(frozen=True, slots=True)
class _Object:
    fields: tuple[tuple[str, _Key], ...]


_Key = _Const | _Identity | _Clinical | _Object


def _evaluate(key: _Key, partial: Mapping[str, Any], identity: Mapping[str, Any] | None) -> Any:
    """The value of one part of the key for one partial group (``MISSING`` when missing)."""
    if isinstance(key, _Const):
        return key.value
    if isinstance(key, _Clinical):
        return partial.get(key.name, MISSING)
    if isinstance(key, _Identity):
        return identity_value(identity, key.path, MISSING)
    out: dict[str, Any] = {}
    for name, part in key.fields:
        value = _evaluate(part, partial, identity)
        if value is not MISSING:
            out[name] = value
    return out


# -- the split --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupSplit:
    """A ``$group`` split into the server's partial groups and the merge that finishes them.

    Attributes:
        stage: the ``$group`` stage the server runs instead of the application's.
        key: how a partial group's key and identity values give the group's ``_id``.
        outputs: each output field with the merge that computes it.
        identity_fields: the identity fields the merge reads.
        projection: what to read of each identity row.
    """

    stage: Mapping[str, Any]
    key: _Key
    outputs: tuple[tuple[str, Callable[[], Merge]], ...]
    identity_fields: frozenset[str]
    projection: Mapping[str, Any]

    def table(self) -> GroupTable:
        """An empty set of merged groups."""
        return GroupTable([name for name, _ in self.outputs], [m for _, m in self.outputs])

    def merge(
        self,
        table: GroupTable,
        partials: Sequence[Mapping[str, Any]],
        identities: Mapping[str, Mapping[str, Any]],
    ) -> None:
        """Fold one batch of partial groups into ``table`` (``identities`` by pseudonym)."""
        for partial in partials:
            key = partial.get("_id")
            parts = key if isinstance(key, Mapping) else {}
            identity = identities.get(str(subject_of(partial)))
            value = _evaluate(self.key, parts, identity)
            table.add(None if value is MISSING else value, partial, identity)


def groups_by_subject(pipeline: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a clinical pipeline ends in partial groups, each one data subject's documents."""
    if not pipeline or not isinstance(pipeline[-1].get("$group"), Mapping):
        return False
    key = pipeline[-1]["$group"].get("_id")
    link = f"${PSEUDONYM_FIELD}"
    return key == link or (isinstance(key, Mapping) and key.get(PSEUDONYM_FIELD) == link)


def subject_of(partial: Mapping[str, Any]) -> str | None:
    """The pseudonym of a partial group: its ``_id``, or the ``_pseudonym`` in it."""
    key = partial.get("_id")
    if isinstance(key, Mapping):
        key = key.get(PSEUDONYM_FIELD)
    return key if isinstance(key, str) else None


@dataclass
class _Builder:
    """Collects the partial accumulators of one split, reusing identical ones."""

    schema: ModelSchema
    exposure: _Exposure
    index: int
    order: tuple[tuple[str, int], ...] | None
    key_parts: dict[str, Any] = field(default_factory=dict)
    partials: dict[str, tuple[str, Any]] = field(default_factory=dict)
    identity: set[str] = field(default_factory=set)

    def refuse(self, what: str, remedy: str, name: str | None = None) -> UnsupportedQuery:
        model = self.schema.model
        fields = ", ".join(sorted(self.identity)) or None
        return UnsupportedQuery(
            f"{model}: pipeline stage {self.index} ($group) {what}; {remedy}",
            model=model,
            field=fields or name,
        )

    def partial(self, spec: Any) -> str:
        """The name of the server-side accumulator ``spec`` in the partial groups."""
        canonical = repr(spec)
        if canonical not in self.partials:
            self.partials[canonical] = (f"p{len(self.partials)}", spec)
        return self.partials[canonical][0]

    def source(self, value: Any) -> str | None:
        """The identity path an operand reads when it is a field path to an identity value."""
        path = plain_path(value)
        found = self.exposure.source(self.schema, path) if path is not None else None
        if found is not None:
            self.identity.add(top_field(found))
        return found

    def reads_identity(self, value: Any) -> bool:
        reads = expression_reads(value)
        if reads is None:
            return True
        return any(self.exposure.source(self.schema, p) is not None for p in reads)

    def key(self, spec: Any, top: bool) -> _Key:
        source = self.source(spec)
        if source is not None:
            return _Identity(source)
        if isinstance(spec, Mapping) and spec and not str(next(iter(spec))).startswith("$"):
            for name in spec:
                validate_field_name(str(name))  # as the server parses an object expression
            return _Object(tuple((str(k), self.key(v, top=False)) for k, v in spec.items()))
        if self.reads_identity(spec):
            raise self.refuse(
                "computes its _id from identity fields, which the server cannot read",
                "group on the field itself ({_id: '$field'}) and compute from the groups in "
                "the application",
            )
        constant = not isinstance(spec, (str, Mapping, list)) or (
            isinstance(spec, str) and not spec.startswith("$")
        )
        if top and (constant or (isinstance(spec, Mapping) and not spec)):
            return _Const(spec)
        name = f"k{len(self.key_parts)}"
        self.key_parts[name] = spec
        return _Clinical(name)

    def output(self, name: str, spec: Any) -> Callable[[], Merge] | None:
        """The merge of one output field; ``None`` when the server should report it as bad."""
        if not (isinstance(spec, Mapping) and len(spec) == 1):
            return None
        ((operator, argument),) = spec.items()
        if operator == "$count" and isinstance(argument, Mapping) and not argument:
            operator, argument = "$sum", 1
        if operator not in _DECOMPOSABLE:
            if not str(operator).startswith("$"):
                return None
            raise self.refuse(
                f"computes '{name}' with {operator}, which cannot be merged from partial groups",
                "use $sum, $count, $avg, $min, $max, $push, $addToSet (or $first/$last after a "
                "$sort), or group on clinical fields only",
                name,
            )
        source = self.source(argument)
        if source is None and self.reads_identity(argument):
            raise self.refuse(
                f"computes '{name}' from identity fields with an expression; only a field path "
                "to an identity field can be merged",
                "accumulate the field itself and compute in the application",
                name,
            )
        keys: list[str] = []
        if operator in ("$first", "$last"):
            if self.order is None:
                raise self.refuse(
                    f"takes {operator} for '{name}' over documents in no defined order",
                    "put a $sort on clinical fields before the $group, or use $min/$max",
                    name,
                )
            keys = [self.partial({operator: f"${path}"}) for path, _ in self.order]
        if source is not None:
            count = self.partial({"$sum": 1})
            return _identity_merge(operator, source, count, keys, self.order)
        return _server_merge(self, operator, argument, keys)


def _server_merge(
    builder: _Builder, operator: str, argument: Any, keys: list[str]
) -> Callable[[], Merge]:
    if operator == "$sum":
        return total(builder.partial({"$sum": argument}))
    if operator == "$avg":
        numeric = (
            1
            if isinstance(argument, (int, float)) and not isinstance(argument, bool)
            else {"$cond": [{"$isNumber": argument}, 1, 0]}
        )
        return average(builder.partial({"$sum": argument}), builder.partial({"$sum": numeric}))
    if operator in ("$min", "$max"):
        return min_or_max(builder.partial({operator: argument}), None, operator == "$min")
    if operator in ("$push", "$addToSet"):
        return pushed(builder.partial({operator: argument}), None, None, operator == "$addToSet")
    order = builder.order or ()
    return first_or_last(builder.partial({operator: argument}), None, keys, order, operator)


def _identity_merge(
    operator: str,
    source: str,
    count: str,
    keys: list[str],
    order: tuple[tuple[str, int], ...] | None,
) -> Callable[[], Merge]:
    if operator == "$sum":
        return total(None, source, count)
    if operator == "$avg":
        return average(None, count, source)
    if operator in ("$min", "$max"):
        return min_or_max(None, source, operator == "$min")
    if operator in ("$push", "$addToSet"):
        return pushed(None, source, count, operator == "$addToSet")
    return first_or_last(None, source, keys, order or (), operator)


def split_group(
    schema: ModelSchema,
    exposure: _Exposure,
    spec: Any,
    order: tuple[tuple[str, int], ...] | None,
    index: int,
) -> GroupSplit:
    """Split ``$group: spec``, whose key or accumulators read identity values.

    ``order`` is the clinical sort the documents arrive in (``None``: no defined order), and
    ``index`` the stage's position, for messages.

    Raises:
        UnsupportedQuery: the key computes from identity values, or an accumulator cannot be
            merged (an expression over identity fields, ``$first``/``$last`` in no defined
            order, an accumulator that does not decompose).
    """
    builder = _Builder(schema, exposure, index, order)
    if not isinstance(spec, Mapping) or "_id" not in spec:
        # Malformed: the server reports it in its own words.
        return GroupSplit({"$group": spec}, _Const(None), (), frozenset(), {})
    key = builder.key(spec["_id"], top=True)
    outputs: list[tuple[str, Callable[[], Merge]]] = []
    passed: dict[str, Any] = {}
    for name, accumulator in spec.items():
        if name == "_id":
            continue
        merge = builder.output(str(name), accumulator)
        if merge is None:
            passed[str(name)] = accumulator
        else:
            outputs.append((str(name), merge))
    # The pseudonym alone when the key has no clinical part: some servers (FerretDB 1.x) group
    # on a scalar several times faster than on a document.
    link = f"${PSEUDONYM_FIELD}"
    key_id = {PSEUDONYM_FIELD: link, **builder.key_parts} if builder.key_parts else link
    group: dict[str, Any] = {"_id": key_id}
    group.update(dict(builder.partials.values()))
    group.update(passed)
    fields = frozenset(builder.identity)
    projection = dict.fromkeys(sorted(fields), 1)
    return GroupSplit({"$group": group}, key, tuple(outputs), fields, projection)
