"""Route each part of a query to the side that stores it: filters, sorts, updates, pipelines.

A logical filter may mention identity fields, clinical fields, or both, under any nesting of
``$and``/``$or``/``$nor``. The planner cuts out every maximal subtree that mentions identity
fields only (a *probe*) and leaves a clinical *template* in which each probe is replaced by a
placeholder. A flow resolves each probe to the set of pseudonyms whose identity rows satisfy it
and substitutes ``{"_pseudonym": {"$in": [...]}}``; the result is a purely clinical filter that
the server evaluates with its own native semantics, including sort, skip and limit.

Negations of equality (``$ne``, ``$nin``, ``$not``) become ``$nin`` over the *positive* probe,
whose pseudonym set is small, instead of a probe that would match almost every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from privata_mongo.core.identity import IdentityIndex, is_operator_document
from privata_mongo.core.mql.positions import check_positions
from privata_mongo.core.schema import PSEUDONYM_FIELD, ModelSchema, Side, top_field
from privata_mongo.errors import UnsupportedQuery

__all__ = [
    "FilterPlan",
    "Probe",
    "ProbeRef",
    "identity_references",
    "needs_process_sort",
    "plan_filter",
    "references_identity",
    "split_update",
    "substitute",
]

_LOGICAL = ("$and", "$or", "$nor")
_CLINICAL_ONLY_TOP = frozenset({"$comment", "$text"})
_BLIND_TOP = frozenset({"$where", "$function", "$accumulator"})


@dataclass(frozen=True, slots=True)
class Probe:
    """An identity-only subfilter, resolved by a flow into a set of pseudonyms.

    Attributes:
        filter: the subfilter over identity fields, in application terms.
        server: the part the identity collection evaluates (``{}`` = every row).
        process: the part evaluated in the process on decoded rows (``None`` = nothing).
        fields: the identity fields the probe reads (to fetch, to audit, to name in errors).
        narrowing: clinical conjuncts of the same ``$and`` that bound the candidate rows when
            the probe must be evaluated in the process.
    """

    filter: Mapping[str, Any]
    server: Mapping[str, Any]
    process: Mapping[str, Any] | None
    fields: frozenset[str]
    narrowing: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ProbeRef:
    """Placeholder for a probe's pseudonym set inside a template (``$in``, or ``$nin``)."""

    index: int
    negate: bool = False


@dataclass(frozen=True, slots=True)
class FilterPlan:
    """A clinical template plus the probes it waits for.

    ``pin``: conditions on clinical fields that every document the filter selects satisfies
    (those of its top-level conjunction, nested ``$and`` included), as ``(field, condition)``;
    the flows ask only the regions holding such documents for the probes
    (``core.flows.common.resolve``). Empty when unknown (a ``$match`` after a stage that
    changes the documents).
    """

    template: Mapping[str, Any]
    probes: tuple[Probe, ...]
    pin: tuple[tuple[str, Any], ...] = ()

    @property
    def identity_fields(self) -> frozenset[str]:
        """Every identity field the filter reads."""
        return frozenset().union(*(p.fields for p in self.probes))


def plan_filter(schema: ModelSchema, filter: Mapping[str, Any] | None) -> FilterPlan:
    """Plan ``filter`` over ``schema``'s split collection.

    Raises:
        OperationFailed: ``$where``, ``$expr`` or ``$text`` below the top level, which the
            server refuses (``core.mql.positions``): raised here, so none of their operands,
            which may hold identity values, is sent.
        UnsupportedQuery: the filter uses an operator that cannot see identity fields
            (``$where``, or ``$expr``/``$jsonSchema`` mentioning identity fields).
    """
    if filter is None:
        return FilterPlan({}, ())
    if not schema.enabled:
        return FilterPlan(filter, ())
    check_positions(filter)
    planner = _Planner(schema)
    template = planner.document(filter, root=True)
    probes = tuple(planner.probes)
    return FilterPlan(template, probes, _conjoined_conditions(schema, filter) if probes else ())


def _conjoined_conditions(schema: ModelSchema, filter: Mapping[str, Any]) -> tuple[Any, ...]:
    """The ``(field, condition)`` pairs on clinical fields that ``filter`` ANDs at its root."""
    found: list[tuple[str, Any]] = []
    for key, condition in filter.items():
        if key == "$and" and isinstance(condition, list):
            for child in condition:
                if isinstance(child, Mapping):
                    found.extend(_conjoined_conditions(schema, child))
        elif not key.startswith("$") and schema.side_of(key) is Side.CLINICAL:
            found.append((key, condition))
    return tuple(found)


def substitute(template: Any, sets: Sequence[Sequence[str]]) -> Any:
    """Replace every ``ProbeRef`` in ``template`` by its resolved pseudonym set."""
    if isinstance(template, ProbeRef):
        return {"$nin" if template.negate else "$in": list(sets[template.index])}
    if isinstance(template, Mapping):
        return {k: substitute(v, sets) for k, v in template.items()}
    if isinstance(template, list):
        return [substitute(v, sets) for v in template]
    return template


def needs_process_sort(schema: ModelSchema, sort: Iterable[tuple[str, Any]]) -> bool:
    """Whether a sort reads an identity field, so it must run in the process."""
    return any(schema.side_of(path) is Side.IDENTITY for path, _ in sort)


def references_identity(schema: ModelSchema, value: Any) -> bool:
    """Whether an expression, pipeline or schema mentions an identity field anywhere.

    Conservative on purpose: a ``$group`` output *named* like an identity field counts too.
    """
    return bool(identity_references(schema, value))


def identity_references(schema: ModelSchema, value: Any) -> set[str]:
    """The identity fields an expression, pipeline or schema mentions (as field paths or keys)."""
    found: set[str] = set()
    if isinstance(value, str):
        path = value[1:]
        if value.startswith("$") and not value.startswith("$$") and _is_identity(schema, path):
            found.add(top_field(path))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and not key.startswith("$") and _is_identity(schema, key):
                found.add(top_field(key))
            found |= identity_references(schema, item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            found |= identity_references(schema, item)
    return found


def _is_identity(schema: ModelSchema, path: str) -> bool:
    return schema.side_of(path) is Side.IDENTITY


class _Planner:
    """One planning pass; collects probes as it rewrites the filter into a template."""

    def __init__(self, schema: ModelSchema) -> None:
        self.schema = schema
        self.index = IdentityIndex(schema)
        self.probes: list[Probe] = []

    # A "part" is (kind, value): kind "clinical" → value is a clinical filter document,
    # "identity" → an identity-only filter document (not yet a probe), "template" → a
    # clinical document that already contains probe placeholders.

    def document(self, filter: Mapping[str, Any], root: bool = False) -> dict[str, Any]:
        clinical: dict[str, Any] = {}
        identity: list[dict[str, Any]] = []
        negated: list[dict[str, Any]] = []
        mixed: list[dict[str, Any]] = []
        for key, condition in filter.items():
            kind, value = self.clause(key, condition)
            if kind == "clinical":
                clinical[key] = condition
            elif kind == "identity":
                identity.append(value)
            elif kind == "negated":
                negated.append(value)
            else:
                mixed.append(value)
        parts: list[dict[str, Any]] = []
        narrowing = dict(clinical) if root and clinical else None
        if identity:
            parts.append(self.probe(_conjunction(identity), narrowing=narrowing))
        parts.extend(self.probe(n, negate=True) for n in negated)
        parts.extend(mixed)
        if not parts:
            return clinical
        if len(parts) == 1 and PSEUDONYM_FIELD not in clinical and "$and" not in clinical:
            return {**clinical, **parts[0]}
        combined = list(parts)
        if "$and" in clinical:
            combined = [{"$and": clinical.pop("$and")}, *combined]
        return {**clinical, "$and": combined}

    def clause(self, key: str, condition: Any) -> tuple[str, dict[str, Any]]:
        if key in _LOGICAL:
            return self.logical(key, condition)
        if key in _BLIND_TOP:
            raise UnsupportedQuery(
                f"{self.schema.model}: {key} runs on the server, where identity fields are not "
                "visible; express the condition with query operators instead",
                model=self.schema.model,
            )
        if key.startswith("$"):
            if key in _CLINICAL_ONLY_TOP or not references_identity(self.schema, condition):
                return "clinical", {key: condition}
            raise UnsupportedQuery(
                f"{self.schema.model}: {key} mentions identity fields, which the server cannot "
                "read; use field operators on those fields instead",
                model=self.schema.model,
            )
        if self.schema.side_of(key) is Side.CLINICAL:
            return "clinical", {key: condition}
        return self.identity_clause(key, condition)

    def identity_clause(self, key: str, condition: Any) -> tuple[str, dict[str, Any]]:
        if is_operator_document(condition) and len(condition) == 1:
            ((op, operand),) = condition.items()
            if op == "$ne":
                return "negated", {key: operand}
            if op == "$nin":
                return "negated", {key: {"$in": operand}}
            if op == "$not" and is_operator_document(operand):
                return "negated", {key: operand}
        return "identity", {key: condition}

    def logical(self, op: str, children: Any) -> tuple[str, dict[str, Any]]:
        if not isinstance(children, list) or not children:
            # Let the server report the malformed filter in its own words.
            return "clinical", {op: children}
        kinds = [self.child_kind(c) for c in children]
        if all(k == "clinical" for k in kinds):
            return "clinical", {op: children}
        if all(k == "identity" for k in kinds):
            return "identity", {op: children}
        clinical = [c for c, k in zip(children, kinds, strict=False) if k == "clinical"]
        identity = [c for c, k in zip(children, kinds, strict=False) if k == "identity"]
        rest = [self.document(c) for c, k in zip(children, kinds, strict=False) if k == "mixed"]
        grouped: list[dict[str, Any]] = list(clinical)
        if identity:
            # $and and $nor keep their meaning when identity children are grouped with $and
            # / $or respectively; $or groups with $or.
            inner = "$and" if op == "$and" else "$or"
            grouped.append(self.probe(identity[0] if len(identity) == 1 else {inner: identity}))
        grouped.extend(rest)
        return "mixed", {op: grouped}

    def child_kind(self, child: Any) -> str:
        if not isinstance(child, Mapping):
            return "clinical"
        sides: set[str] = set()
        for key, condition in child.items():
            if key in _LOGICAL and isinstance(condition, list):
                sides.update(self.child_kind(c) for c in condition)
            elif key.startswith("$"):
                sides.add("mixed" if key in _BLIND_TOP else "clinical")
                if references_identity(self.schema, condition):
                    sides.add("mixed")
            else:
                sides.add("identity" if self.schema.side_of(key) is Side.IDENTITY else "clinical")
        if len(sides) == 1:
            return sides.pop()
        return "mixed"

    def probe(
        self,
        filter: dict[str, Any],
        negate: bool = False,
        narrowing: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        server, process = self.split_probe(filter)
        probe = Probe(
            filter=filter,
            server=server,
            process=process,
            fields=frozenset(_fields_of(filter)),
            narrowing=narrowing if process is not None else None,
        )
        self.probes.append(probe)
        return {PSEUDONYM_FIELD: ProbeRef(len(self.probes) - 1, negate)}

    def split_probe(
        self, filter: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Divide a probe into what the identity index can push down and what it cannot."""
        conjuncts = _conjuncts(filter)
        server: list[dict[str, Any]] = []
        process: list[dict[str, Any]] = []
        for conjunct in conjuncts:
            translated = self.translate(conjunct)
            if translated is None:
                process.append(conjunct)
            else:
                server.append(translated)
        return _conjunction(server), (_conjunction(process) if process else None)

    def translate(self, filter: Mapping[str, Any]) -> dict[str, Any] | None:
        """Push a whole identity subfilter down, or ``None`` if any leaf cannot be."""
        out: dict[str, Any] = {}
        for key, condition in filter.items():
            if key in _LOGICAL:
                if not isinstance(condition, list) or not condition:
                    return None
                children = [
                    self.translate(c) if isinstance(c, Mapping) else None for c in condition
                ]
                if any(c is None for c in children):
                    return None
                out[key] = children
                continue
            if key.startswith("$"):
                return None
            pushed = self.index.pushdown(key, condition)
            if pushed is None:
                return None
            out.update(pushed)
        return out


def _conjuncts(filter: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flatten a filter into the list of conditions that must all hold."""
    out: list[dict[str, Any]] = []
    for key, condition in filter.items():
        if key == "$and" and isinstance(condition, list) and condition:
            for child in condition:
                out.extend(_conjuncts(child))
        elif (
            not key.startswith("$")
            and is_operator_document(condition)
            and len(condition) > 1
            and "$regex" not in condition
            and "$options" not in condition
        ):
            out.extend({key: {op: v}} for op, v in condition.items())
        else:
            out.append({key: condition})
    return out


def _conjunction(parts: list[dict[str, Any]]) -> dict[str, Any]:
    if not parts:
        return {}
    if len(parts) == 1:
        return parts[0]
    merged: dict[str, Any] = {}
    for part in parts:
        if any(k in merged for k in part):
            return {"$and": parts}
        merged.update(part)
    return merged


def _fields_of(filter: Mapping[str, Any]) -> Iterable[str]:
    for key, condition in filter.items():
        if key in _LOGICAL and isinstance(condition, list):
            for child in condition:
                if isinstance(child, Mapping):
                    yield from _fields_of(child)
        elif not key.startswith("$"):
            yield top_field(key)


def split_update(
    schema: ModelSchema, update: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Divide an operator update into its identity part and its clinical part.

    Raises:
        UnsupportedQuery: a ``$rename`` moves a value between the two collections.
    """
    identity: dict[str, Any] = {}
    clinical: dict[str, Any] = {}
    for op, operand in update.items():
        if not isinstance(operand, Mapping):
            clinical[op] = operand  # malformed: the server reports it in its own words
            continue
        for path, value in operand.items():
            side = schema.side_of(path)
            if op == "$rename" and isinstance(value, str) and schema.side_of(value) is not side:
                raise UnsupportedQuery(
                    f"{schema.model}: $rename of '{path}' to '{value}' would move a value "
                    "between identity and clinical data; copy it with $set and $unset instead",
                    model=schema.model,
                    field=top_field(path),
                )
            target = identity if side is Side.IDENTITY else clinical
            target.setdefault(op, {})[path] = value
    return identity, clinical
