"""An opt-in content scanner: likely identifiers in free text, found before a migration.

Classification reads field names (``core.safe_harbor``); a clinical note such as "seen by
Dr. Smith, call 212-555-0142" holds identifiers under a name (``notes``) no rule can flag. Run
``scan`` over a sample of the documents an application already stores, before switching its
imports, and it reports which fields hold what kind of identifier, with the HIPAA Safe Harbor
category of each, and how often: **never a value**. A field it reports is a candidate for
``pii=True`` (or for redaction at the source); a field it does not report is not proven clean.

Two engines, the same report:

* ``presidio``: Microsoft Presidio's pattern recognisers (phone through ``phonenumbers``,
  IP, US SSN, credit card with its checksum, date, IBAN, medical licence),
  used without an NLP model: no spaCy model is loaded or downloaded. Installed with the
  ``scan`` extra (``pip install privata-mongo[scan]``).
* ``patterns``: a small built-in set (e-mail, phone, IPv4, US SSN, card numbers with the Luhn
  check, dates, URLs, ``MRN`` followed by digits), always available.

``engine="auto"`` takes Presidio when it is installed. Both engines use the built-in e-mail,
URL and MRN patterns: Presidio's e-mail and URL recognisers validate domains with
``tldextract``, which fetches the public suffix list over the network, and a scan must run
where the data is, offline.
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from privata_mongo.core.safe_harbor import RULES
from privata_mongo.errors import ConfigurationError

__all__ = ["Finding", "ScanReport", "scan"]

Engine = Literal["auto", "presidio", "patterns"]

_LETTER: Final = {
    "EMAIL_ADDRESS": "F",
    "PHONE_NUMBER": "D",
    "IP_ADDRESS": "O",
    "US_SSN": "G",
    "CREDIT_CARD": "J",
    "IBAN_CODE": "J",
    "DATE_TIME": "C",
    "URL": "N",
    "MEDICAL_LICENSE": "K",
    "MRN": "H",
}
_CITATION: Final = {rule.letter: rule.citation for rule in RULES}

# Each pattern is linear in practice: no nested quantifiers, bounded repeats.
_PATTERNS: Final = {
    "EMAIL_ADDRESS": re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}"),
    "PHONE_NUMBER": re.compile(
        r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]\d{3,4}[ .-]\d{3,4}(?!\w)"
    ),
    "IP_ADDRESS": re.compile(
        r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}"
        r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
    ),
    "US_SSN": re.compile(r"(?<!\d)(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!\d)"),
    "CREDIT_CARD": re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)"),
    "DATE_TIME": re.compile(
        r"(?<!\d)(?:\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|\d{4}-\d{2}-\d{2})(?!\d)"
        r"|\b\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]{0,6}\.? \d{4}\b"
        r"|\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]{0,6}\.? \d{1,2},? \d{4}\b",
        re.IGNORECASE,
    ),
}
_ALWAYS: Final = {
    "EMAIL_ADDRESS": _PATTERNS.pop("EMAIL_ADDRESS"),
    "URL": re.compile(r"\b(?:https?://|www\.)[^\s<>\"']{2,2048}", re.IGNORECASE),
    "MRN": re.compile(r"\bMRN\b[\s:#.-]{0,3}[A-Z]{0,3}\d{4,12}\b", re.IGNORECASE),
}
_GENERIC: Final = {"DATE_TIME": 1, "PHONE_NUMBER": 2}
"""Entities whose patterns also match more specific ones' values: they lose a tie."""
_PRESIDIO_RECOGNIZERS: Final = (
    "PhoneRecognizer",
    "IpRecognizer",
    "UsSsnRecognizer",
    "CreditCardRecognizer",
    "DateRecognizer",
    "IbanRecognizer",
    "MedicalLicenseRecognizer",
)

Span = tuple[int, int, str]
Detector = Callable[[str], list[Span]]
"""The occurrences found in one text: start, end and entity type."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One kind of identifier found in one field of the sample; it carries no value.

    Attributes:
        field: the dotted path (list positions collapsed: ``notes.text``).
        entity: what was found (``EMAIL_ADDRESS``, ``PHONE_NUMBER`` …, Presidio's names).
        safe_harbor: the Safe Harbor paragraph, ``A`` to ``R``.
        rule: the paragraph, cited.
        documents: sampled documents with at least one occurrence in this field.
        occurrences: occurrences in all the sampled documents.
    """

    field: str
    entity: str
    safe_harbor: str
    rule: str
    documents: int
    occurrences: int


@dataclass(frozen=True, slots=True)
class ScanReport:
    """What ``scan`` found: fields, kinds and counts, never a value."""

    sampled: int
    engine: str
    findings: tuple[Finding, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields with at least one finding, in order of first finding."""
        return tuple(dict.fromkeys(f.field for f in self.findings))

    def __str__(self) -> str:
        head = f"scanned {self.sampled} documents ({self.engine})"
        if not self.findings:
            return f"{head}: no likely identifier found"
        lines = [
            f"  {f.field}: {f.entity} in {f.documents} document(s), {f.occurrences} time(s) "
            f"- {f.rule}"
            for f in self.findings
        ]
        return "\n".join([f"{head}:", *lines])


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _pattern_matches(text: str, table: Mapping[str, re.Pattern[str]]) -> list[Span]:
    found: list[Span] = []
    for entity, pattern in table.items():
        for match in pattern.finditer(text):
            if entity == "CREDIT_CARD" and not _luhn(re.sub(r"\D", "", match.group())):
                continue
            found.append((match.start(), match.end(), entity))
    return found


def _resolved(spans: list[Span]) -> list[str]:
    """One entity per stretch of text: the longest span wins an overlap.

    A card number is not also a phone number; Presidio's analyzer resolves its recognisers'
    conflicts the same way. Of two equal spans the more specific entity wins (an SSN over the
    phone number its digits also look like).
    """
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (s[0] - s[1], _GENERIC.get(s[2], 0), s[0])):
        if all(span[1] <= k[0] or span[0] >= k[1] for k in kept):
            kept.append(span)
    return [entity for _, _, entity in sorted(kept)]


def _patterns() -> Detector:
    table = {**_PATTERNS, **_ALWAYS}
    return lambda text: _pattern_matches(text, table)


def _presidio(min_score: float) -> Detector:
    from presidio_analyzer import predefined_recognizers  # an optional extra

    recognizers = [getattr(predefined_recognizers, name)() for name in _PRESIDIO_RECOGNIZERS]

    def detect(text: str) -> list[Span]:
        found: list[Span] = []
        for recognizer in recognizers:
            results = recognizer.analyze(text, recognizer.supported_entities, None)
            found.extend((r.start, r.end, r.entity_type) for r in results if r.score >= min_score)
        return found + _pattern_matches(text, _ALWAYS)

    return detect


def _strings(value: Any, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _strings(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item, path)


def _engine(engine: Engine, min_score: float) -> tuple[str, Detector]:
    installed = importlib.util.find_spec("presidio_analyzer") is not None
    if engine == "presidio" and not installed:
        raise ConfigurationError(
            "scan(engine='presidio') needs presidio-analyzer: pip install privata-mongo[scan], "
            "or use engine='patterns'"
        )
    if engine == "presidio" or (engine == "auto" and installed):
        return "presidio", _presidio(min_score)
    if engine in ("auto", "patterns"):
        return "patterns", _patterns()
    raise ConfigurationError(
        f"scan: engine must be 'auto', 'presidio' or 'patterns', not {engine!r}"
    )


def scan(
    documents: Iterable[Mapping[str, Any]],
    *,
    fields: Iterable[str] | None = None,
    engine: Engine = "auto",
    min_score: float = 0.4,
) -> ScanReport:
    """Report which fields of sample documents hold likely identifiers (never the values).

    Args:
        documents: a sample of stored documents, e.g. ``raw_db.visits.find().limit(1000)``
            on the collection before migration (the scanner reads strings only, nested
            documents and lists included).
        fields: top-level fields to scan (default: all but ``_id``).
        engine: ``presidio``, ``patterns`` or ``auto`` (Presidio when installed).
        min_score: the least Presidio score counted (its pattern scores without an NLP
            model's context words run from 0.4 for a phone number to 1.0 for an e-mail).

    Raises:
        ConfigurationError: ``engine`` is unknown, or ``presidio`` is asked for and not
            installed.
    """
    name, detect = _engine(engine, min_score)
    wanted = None if fields is None else set(fields)
    occurrences: Counter[tuple[str, str]] = Counter()
    holding: Counter[tuple[str, str]] = Counter()
    sampled = 0
    for document in documents:
        sampled += 1
        seen: set[tuple[str, str]] = set()
        for key, value in document.items():
            if key == "_id" or (wanted is not None and key not in wanted):
                continue
            for path, text in _strings(value, str(key)):
                for entity in _resolved(detect(text)):
                    occurrences[(path, entity)] += 1
                    seen.add((path, entity))
        holding.update(seen)
    findings = tuple(
        Finding(path, entity, _LETTER[entity], _CITATION[_LETTER[entity]], holding[key], count)
        for key, count in sorted(occurrences.items(), key=lambda item: (-holding[item[0]], item[0]))
        for path, entity in (key,)
    )
    return ScanReport(sampled, name, findings)
