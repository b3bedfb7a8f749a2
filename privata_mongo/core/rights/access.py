"""The flows of access (Art. 15), portability (Art. 20) and rectification (Art. 16).

Each flow is a generator over the requests below, answered by the facade that runs it (one
sync, one async), so both share every rule: how a subject is found, which documents belong to
it (``datamap.walk``), what is read in which batches, and what is recorded. Every flow records
its operation (``access``, ``export``, ``rectify``) per model before anything is handed over
or after the change is made, with the model, the subject's pseudonym and field names, never a
value.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as attribute
from typing import Any

from privata_mongo.core.ops import Op
from privata_mongo.core.rights.datamap import DataMap, Lookup, SubjectMap, walk
from privata_mongo.core.rights.export import Writer
from privata_mongo.core.rights.storage import Storage, Where
from privata_mongo.errors import UnknownSubject

__all__ = [
    "ACCESS",
    "EXPORT",
    "RECTIFY",
    "Access",
    "History",
    "Read",
    "Record",
    "Rectify",
    "Request",
    "Subject",
    "access",
    "export",
    "locate",
    "rectify",
]

ACCESS = "access"
EXPORT = "export"
RECTIFY = "rectify"
"""The audited operation names of the rights in this module."""


@dataclass(frozen=True, slots=True)
class Subject:
    """A data subject, named one of three ways.

    Attributes:
        pseudonym: the subject's pseudonym (``pseu_`` + 32 hex).
        model: a model holding the subject's identity (with ``id`` or ``field``).
        id: the app id of a subject document of ``model``.
        field: a searchable identity field of ``model`` (found through the blind index).
        value: the value of ``field``; never written to a message or a record.
    """

    pseudonym: str | None = None
    model: str | None = None
    id: Any = None
    field: str | None = None
    value: Any = attribute(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Read(Op[list[dict[str, Any]]]):
    """Request: the documents of ``model`` with these ids, decrypted, in native shape."""

    model: str
    ids: Sequence[Any]


@dataclass(frozen=True, slots=True)
class FindSubject(Op[str | None]):
    """Request: the pseudonym of the first document of ``model`` matching ``filter``."""

    model: str
    filter: Mapping[str, Any] = attribute(repr=False)


@dataclass(frozen=True, slots=True)
class History(Op[list[dict[str, Any]]]):
    """Request: the audit records naming ``pseudonym``, oldest first (the processing record)."""

    pseudonym: str


@dataclass(frozen=True, slots=True)
class Record(Op[None]):
    """Statement: append the audit record of a right exercised on one model (fail closed)."""

    operation: str
    model: str
    pseudonym: str
    fields: frozenset[str]
    count: int


@dataclass(frozen=True, slots=True)
class Rectify(Op[None]):
    """Request: change fields of one document through the ODM's own validation and save."""

    model: str
    id: Any
    changes: Mapping[str, Any] = attribute(repr=False)


Request = Lookup | Read | FindSubject | History | Record | Rectify
"""Everything the flows of this module ask their facade for."""


@dataclass(frozen=True, slots=True)
class Access:
    """Everything held about one subject (Art. 15): documents by model, and their processing.

    Attributes:
        pseudonym: the subject.
        documents: model name to its documents, decrypted, with native field names.
        processing: the audit records naming the subject (who, when, why, on what basis).
        storage: where each part is stored: the subject's region, the key vault and master
            key of its data key, each model's identity and clinical collections
            (``core.rights.storage``).
        missing_regions: the regions left out of a partial answer (``partial_results``):
            documents whose identity data is held there come without their identity fields.
            Empty when the answer is whole.
    """

    pseudonym: str
    documents: Mapping[str, list[dict[str, Any]]]
    processing: list[dict[str, Any]]
    storage: Storage | None = None
    missing_regions: tuple[str, ...] = ()


_PROCESSING_KEYS = (
    "at",
    "actor",
    "purpose",
    "legal_basis",
    "operation",
    "model",
    "fields",
    "outcome",
)


def _processing(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The processing record: each audit record's who, when, why and what (names only)."""
    return [{k: r.get(k) for k in _PROCESSING_KEYS} for r in records]


def locate(data_map: DataMap, subject: Subject) -> Generator[Any, Any, str]:
    """The pseudonym of ``subject``.

    Raises:
        UnknownSubject: no document matches, the model is unknown or not split, or the
            field is not a searchable identity field.
    """
    if subject.pseudonym is not None:
        return subject.pseudonym
    if subject.model is None:
        raise UnknownSubject("name a subject by pseudonym, or by model with id= or field=")
    try:
        entry = data_map.model(subject.model)
    except KeyError:
        raise UnknownSubject(f"{subject.model} is not a registered model") from None
    if not entry.split:
        raise UnknownSubject(f"{entry.name} holds no identity fields: name a model that does")
    if subject.field is not None:
        if subject.field not in entry.searchable:
            raise UnknownSubject(
                f"{entry.name}.{subject.field} is not a searchable identity field "
                f"(searchable: {', '.join(entry.searchable) or 'none'}); declare it "
                "searchable=True or name the subject by id"
            )
        query: Mapping[str, Any] = {subject.field: subject.value}
        how = f"{entry.name}.{subject.field}"
    else:
        query = {"_id": subject.id}
        how = f"{entry.name} id"
    pseudonym = yield from FindSubject(entry.name, query)
    if pseudonym is None:
        raise UnknownSubject(f"no data subject found by {how} (the value is not shown)")
    return pseudonym


def _mapped(data_map: DataMap, subject: Subject) -> Generator[Any, Any, SubjectMap]:
    pseudonym = yield from locate(data_map, subject)
    found = yield from walk(data_map, pseudonym)
    if not found.documents:
        raise UnknownSubject("no document belongs to this data subject")
    return found


def _chunks(ids: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _fields(data_map: DataMap, model: str, documents: Sequence[Mapping[str, Any]]) -> set[str]:
    identity = set(data_map.model(model).identity_fields)
    return {k for d in documents for k in d if k in identity}


def access(
    data_map: DataMap, subject: Subject, *, batch: int = 1000
) -> Generator[Any, Any, Access]:
    """Everything held about ``subject``; one ``access`` record per model before returning."""
    found = yield from _mapped(data_map, subject)
    documents: dict[str, list[dict[str, Any]]] = {}
    for model, ids in found.documents.items():
        held: list[dict[str, Any]] = []
        for chunk in _chunks(ids, batch):
            held.extend((yield from Read(model, chunk)))
        documents[model] = held
    storage = yield from Where(found.pseudonym, tuple(documents))
    history = yield from History(found.pseudonym)
    for model, held in documents.items():
        fields = frozenset(_fields(data_map, model, held))
        yield Record(ACCESS, model, found.pseudonym, fields, len(held))
    return Access(found.pseudonym, documents, _processing(history), storage)


def export(
    data_map: DataMap, subject: Subject, writer: Writer, *, batch: int = 1000
) -> Generator[Any, Any, dict[str, int]]:
    """Write everything held about ``subject`` to ``writer``, batch by batch.

    The ``export`` records (per model, with every identity field it declares) are appended
    before the first document is written, so an export the audit cannot record never starts.
    """
    found = yield from _mapped(data_map, subject)
    for model, ids in found.documents.items():
        fields = frozenset(data_map.model(model).identity_fields)
        yield Record(EXPORT, model, found.pseudonym, fields, len(ids))
    for model, ids in found.documents.items():
        entry = data_map.model(model)
        writer.section(model, ("_id", *entry.identity_fields, *entry.clinical_fields))
        for chunk in _chunks(ids, batch):
            writer.documents((yield from Read(model, chunk)))
    storage = yield from Where(found.pseudonym, tuple(found.documents))
    if storage.region is not None:
        # A deployment without regions keeps the export's shape (``docs/residency.md``).
        writer.stored(storage)
    history = yield from History(found.pseudonym)
    writer.finish(_processing(history))
    return dict(writer.counts)


def rectify(
    data_map: DataMap, subject: Subject, model: str, changes: Mapping[str, Any], id: Any = None
) -> Generator[Any, Any, Any]:
    """Change fields of the subject's document of ``model``; returns the document's id.

    ``id`` is needed only when the subject has more than one document of ``model``. The
    ``rectify`` record names the fields changed, never their values.

    Raises:
        UnknownSubject: the subject has no document of ``model`` (or not the one named), or
            several and no ``id`` says which.
    """
    pseudonym = yield from locate(data_map, subject)
    try:
        entry = data_map.model(model)
    except KeyError:
        raise UnknownSubject(f"{model} is not a registered model") from None
    own = yield from Lookup(entry.name, {"_pseudonym": pseudonym}, raw=True)
    if id is None:
        if len(own) != 1:
            raise UnknownSubject(
                f"the subject has {len(own)} documents of {entry.name}: pass id= to name one"
            )
        id = own[0]
    elif id not in own:
        raise UnknownSubject(f"that {entry.name} document does not belong to the subject")
    yield Rectify(entry.name, id, changes)
    yield Record(RECTIFY, entry.name, pseudonym, frozenset(changes), 1)
    return id
