"""Which fields are identity data, decided by explicit, explainable rules.

Precedence, most specific first: an explicit marker on the field (``StringField(pii=True)``),
the model's ``privacy`` meta, the configured mapping (``"Patient.nickname"`` before
``"nickname"``), a classified field nested inside an embedded document, and finally the name
defaults: one rule per HIPAA Safe Harbor identifier category (``core.safe_harbor``:
``first_name``, ``zip_code``, ``*_phone``, ``mrn``, ``person:name`` …). Every decision records
its rule (and a name default its Safe Harbor paragraph) so that ``privata_mongo.explain(Model)``
can tell an auditor why a field is or is not treated as PII.

Classification is per top-level field: an embedded document that contains a classified field
is stored whole on the identity side. Over-classifying costs query speed; under-classifying
leaks personal data, so the nested rule errs on the side of privacy.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from privata_mongo.core.rights.policy import erasure_policy, retention_policy
from privata_mongo.core.safe_harbor import RULES, Entry, entries, is_person_model
from privata_mongo.core.schema import (
    Decision,
    FieldSpec,
    ModelSchema,
    ModelSpec,
    Rule,
    normalise_name,
)
from privata_mongo.errors import ConfigurationError

__all__ = [
    "DEFAULT_PII_NAMES",
    "DEFAULT_SEARCHABLE_NAMES",
    "Policy",
    "compile_schema",
    "normalise_name",
]

DEFAULT_PII_NAMES: frozenset[str] = frozenset(name for rule in RULES for name in rule.names)
"""Name default entries, one rule per HIPAA Safe Harbor category (``core.safe_harbor``): exact
names (compared normalised), ``*_phone`` (the last word of a name) and ``person:name`` (only in
a model that describes a person)."""

DEFAULT_SEARCHABLE_NAMES: frozenset[str] = frozenset(
    name for rule in RULES if rule.searchable for name in rule.names
)
"""Identity fields that get a blind index by default (same entry forms): identifiers people
are looked up by (phone, e-mail, SSN, MRN, plan, account, licence, device and IP numbers).
Names, addresses and birth dates do not, because equal blind index terms reveal equal values,
and those values repeat across people."""

logger = logging.getLogger(__name__)

_RESERVED = frozenset({"_id", "_cls"})
_EXPLICIT = frozenset({Rule.MARKER, Rule.META})
_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()
KEPT_CLINICAL = (
    "kept clinical, name default overridden; mark it pii=False to silence, "
    "or use a surrogate key to protect it"
)
"""The reason ``explain()`` gives for a primary key a name default would classify."""
_PRIVACY_KEYS = frozenset(
    {
        "enabled",
        "pii",
        "not_pii",
        "searchable",
        "not_searchable",
        "identity_collection",
        "scan_limit",
        "erasure",  # core.rights.policy: what an erasure does with the model's documents
        "retention",  # core.rights.policy: the model's retention period
    }
)


@dataclass(frozen=True, slots=True)
class Policy:
    """Process-wide classification settings (built from ``privata_mongo.configure``).

    Attributes:
        mapping: ``"Model.field"`` or ``"field"`` → whether it is identity data.
        name_defaults: name default entries (exact, ``*_word`` or ``person:name``; see
            ``core.safe_harbor``) classifying identity data by default.
        identity_suffix: appended to a collection's name to name its identity collection.
        scan_limit: default bound on identity rows read into the process by one query.
        searchable_defaults: identity field names that get a blind index unless a model says
            otherwise.
        sealed: identity rows are encrypted; compiled schemas say so.
    """

    mapping: Mapping[str, bool] = field(default_factory=dict)
    name_defaults: frozenset[str] = DEFAULT_PII_NAMES
    identity_suffix: str = "__identity"
    scan_limit: int = 10_000
    searchable_defaults: frozenset[str] = DEFAULT_SEARCHABLE_NAMES
    sealed: bool = False

    def undeclared_identity(self) -> frozenset[str]:
        """Normalised names that classify a field no model declares (dynamic fields).

        Only exact entries apply: an undeclared field has no model context, and its name is
        looked up, not parsed into words.
        """
        names = {e.exact for e in _entries(self.name_defaults) if e.exact and not e.person_only}
        for key, identity in self.mapping.items():
            if "." in key:
                continue  # model-specific entries name declared fields
            if identity:
                names.add(normalise_name(key))
            else:
                names.discard(normalise_name(key))
        return frozenset(names)

    def default_for(self, spec: FieldSpec, person: bool = False) -> bool:
        """Whether a name default applies to the field (by database or attribute name)."""
        return self.default_entry(spec, person) is not None

    def default_entry(self, spec: FieldSpec, person: bool = False) -> Entry | None:
        """The name default entry that classifies the field, if any (exact entries first).

        ``person``: the model describes a person, so ``person:`` entries apply too.
        """
        for entry in _entries(self.name_defaults):
            if entry.matches(spec.name, person) or entry.matches(spec.attribute, person):
                return entry
        return None


@functools.lru_cache(maxsize=64)
def _entries(names: frozenset[str]) -> tuple[Entry, ...]:
    return entries(names)


def _describes_person(spec: ModelSpec, policy: Policy) -> bool:
    """Whether ``person:`` entries apply to the model (see ``core.safe_harbor``)."""
    if is_person_model(spec.name):
        return True
    for f in spec.fields:
        entry = policy.default_entry(f)
        if entry is not None and entry.rule is not None and entry.rule.personal:
            return True
    return False


def compile_schema(specs: Sequence[ModelSpec], policy: Policy) -> ModelSchema:
    """Compile the classes stored in one collection into its privacy schema.

    Classes sharing a collection (inheritance) are merged: a field is identity data if any
    class classifies it so.

    Raises:
        ConfigurationError: a ``privacy`` meta is malformed or names unknown fields (its
            ``erasure`` and ``retention`` policies included: ``core.rights.policy``), or the
            primary key would be classified as identity data.
    """
    if not specs:
        raise ConfigurationError("compile_schema needs at least one model description")
    collection = specs[0].collection
    decisions: dict[str, Decision] = {}
    searchable: set[str] = set()
    identity_collection: str | None = None
    scan_limit = policy.scan_limit
    enabled = True
    dynamic = False
    for spec in specs:
        dynamic = dynamic or spec.dynamic
        privacy = _validated_privacy(spec)
        enabled = enabled and bool(privacy.get("enabled", True))
        identity_collection = privacy.get("identity_collection", identity_collection)
        scan_limit = int(privacy.get("scan_limit", scan_limit))
        for decision in _classify_model(spec, privacy, policy):
            known = decisions.get(decision.field)
            if known is None or (decision.identity and not known.identity):
                decisions[decision.field] = decision
        searchable.update(_searchable(spec, privacy, policy))
    ordered = tuple(decisions.values())
    identity = frozenset(d.field for d in ordered if d.identity) if enabled else frozenset()
    clinical = tuple(d.field for d in ordered if d.field not in identity)
    for spec in specs:  # the rights' policies fail at the model's first use, as the rest does
        erasure_policy(spec.name, spec.privacy)
        retention_policy(spec.name, spec.privacy, clinical, split=bool(identity))
    return ModelSchema(
        models=tuple(dict.fromkeys(s.name for s in specs)),
        collection=collection,
        identity_collection=identity_collection or f"{collection}{policy.identity_suffix}",
        decisions=ordered,
        identity_fields=identity,
        searchable=frozenset(searchable) & identity,
        rank={d.field: i for i, d in enumerate(ordered)},
        scan_limit=scan_limit,
        undeclared_identity=policy.undeclared_identity() if enabled else frozenset(),
        dynamic=dynamic,
        sealed=policy.sealed,
    )


def _validated_privacy(spec: ModelSpec) -> Mapping[str, Any]:
    privacy = spec.privacy
    if privacy is None:
        return {}
    if not isinstance(privacy, Mapping):
        raise ConfigurationError(
            f"{spec.name}: meta 'privacy' must be a mapping such as "
            "{'pii': ['nickname'], 'not_pii': ['email']}"
        )
    unknown = set(privacy) - _PRIVACY_KEYS
    if unknown:
        raise ConfigurationError(
            f"{spec.name}: unknown 'privacy' keys {sorted(unknown)}; "
            f"allowed: {sorted(_PRIVACY_KEYS)}"
        )
    names = {f.attribute for f in spec.fields} | {f.name for f in spec.fields}
    for key in ("pii", "not_pii", "searchable", "not_searchable"):
        listed = privacy.get(key, ())
        if isinstance(listed, str) or not isinstance(listed, Iterable):
            raise ConfigurationError(f"{spec.name}: privacy '{key}' must be a list of field names")
        missing = [n for n in listed if n not in names]
        if missing:
            raise ConfigurationError(
                f"{spec.name}: privacy '{key}' names fields the model does not have: {missing}"
            )
    both = set(privacy.get("pii", ())) & set(privacy.get("not_pii", ()))
    if both:
        raise ConfigurationError(
            f"{spec.name}: fields listed as both 'pii' and 'not_pii': {sorted(both)}"
        )
    limit = privacy.get("scan_limit", 1)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ConfigurationError(f"{spec.name}: privacy 'scan_limit' must be a positive integer")
    return privacy


def _classify_model(
    spec: ModelSpec, privacy: Mapping[str, Any], policy: Policy
) -> Iterable[Decision]:
    listed_pii = set(privacy.get("pii", ()))
    listed_not = set(privacy.get("not_pii", ()))
    person = _describes_person(spec, policy)
    for f in spec.fields:
        decision = _classify_field(spec.name, f, listed_pii, listed_not, policy, person)
        if decision.identity and (f.primary_key or f.name in _RESERVED):
            decision = _primary_key(spec.name, f, decision)
        yield decision


def _primary_key(model: str, f: FieldSpec, decision: Decision) -> Decision:
    """A primary key some rule would make identity data: refused if explicit, else clinical.

    The primary key is what applications, references and URLs see, so it cannot move to the
    identity collection. Tables keyed by e-mail are common, and a name default must never
    break a model: such a key stays clinical, as native, with one warning. Only an explicit
    declaration (a marker, the model's ``privacy`` meta or a mapping entry naming the model)
    is an error, because then someone asked for protection the layout cannot give.

    Raises:
        ConfigurationError: the primary key is explicitly declared identity data.
    """
    explicit = decision.rule in _EXPLICIT or (
        decision.rule is Rule.MAPPING and decision.reason.startswith(f"mapping entry '{model}.")
    )
    if explicit:
        raise ConfigurationError(
            f"{model}.{f.attribute}: the primary key cannot be identity data (it is what "
            f"applications and references see; declared by {decision.reason}); give the "
            "model a surrogate primary key and keep this value in an ordinary field marked "
            "pii=True"
        )
    with _warned_lock:
        first = (model, f.attribute) not in _warned
        _warned.add((model, f.attribute))
    if first:
        logger.warning(
            "%s.%s is the primary key and its name is a default identity name: it is stored "
            "clinical, as native (mark it pii=False to silence this, or use a surrogate "
            "primary key to protect it)",
            model,
            f.attribute,
        )
    return Decision(f.name, f.attribute, False, Rule.PRIMARY_KEY, KEPT_CLINICAL)


def _classify_field(
    model: str,
    f: FieldSpec,
    listed_pii: set[str],
    listed_not: set[str],
    policy: Policy,
    person: bool,
) -> Decision:
    def decide(identity: bool, rule: Rule, reason: str, letter: str | None = None) -> Decision:
        return Decision(f.name, f.attribute, identity, rule, reason, letter)

    reserved = f.name in _RESERVED or f.primary_key
    mapped = any(policy.mapping.get(key) for key in (f"{model}.{f.attribute}", f"{model}.{f.name}"))
    if (
        reserved
        and f.marker is not True
        and f.attribute not in listed_pii
        and f.name not in listed_pii
        and not mapped
    ) and (f.name == "_cls" or not policy.default_for(f, person)):
        return decide(False, Rule.RESERVED, "ids and class markers stay with the clinical data")
    if f.marker is not None:
        return decide(f.marker, Rule.MARKER, f"pii={f.marker} on the field")
    for names, identity in ((listed_pii, True), (listed_not, False)):
        if f.attribute in names or f.name in names:
            key = "pii" if identity else "not_pii"
            return decide(identity, Rule.META, f"listed in privacy '{key}'")
    for key in (f"{model}.{f.attribute}", f"{model}.{f.name}", f.attribute, f.name):
        if key in policy.mapping:
            return decide(bool(policy.mapping[key]), Rule.MAPPING, f"mapping entry '{key}'")
    nested = _nested_identity(f.children, policy, prefix=f.attribute)
    if nested is not None:
        return decide(True, Rule.NESTED, nested)
    entry = policy.default_entry(f, person)
    if entry is not None:
        reason = f"'{f.attribute}' is a default identity name"
        if entry.rule is None:
            return decide(True, Rule.NAME, reason)
        context = " in a model that describes a person" if entry.person_only else ""
        return decide(
            True, Rule.NAME, f"{reason}{context}: {entry.rule.citation}", entry.rule.letter
        )
    return decide(False, Rule.UNCLASSIFIED, "not marked, listed, mapped or a default name")


def _nested_identity(children: Sequence[FieldSpec], policy: Policy, prefix: str) -> str | None:
    """Explain the first classified field inside an embedded document, if any."""
    for child in children:
        path = f"{prefix}.{child.attribute}"
        if child.marker is True:
            return f"'{path}' is marked pii=True"
        if child.marker is False:
            continue
        deeper = _nested_identity(child.children, policy, path)
        if deeper is not None:
            return deeper
        entry = policy.default_entry(child)
        if entry is not None:
            cited = f" ({entry.rule.citation})" if entry.rule is not None else ""
            return f"'{path}' is a default identity name{cited}"
    return None


def _searchable(spec: ModelSpec, privacy: Mapping[str, Any], policy: Policy) -> set[str]:
    """Fields with a blind index, most specific rule first.

    Declared on the field or unique (a unique index needs terms), then the model's privacy
    ``searchable``/``not_searchable`` lists, then the default names.
    """
    listed = set(privacy.get("searchable", ()))
    unlisted = set(privacy.get("not_searchable", ()))
    defaults = _entries(policy.searchable_defaults)
    out: set[str] = set()
    for f in spec.fields:
        names = {f.name, f.attribute}
        declared = f.searchable or f.unique or bool(names & listed)
        # person context: only identity fields keep a blind index, and they were classified so
        default = not names & unlisted and any(e.matches(n, True) for e in defaults for n in names)
        if declared or default:
            out.add(f.name)
    return out
