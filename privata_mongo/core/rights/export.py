"""Streaming writers of a subject's data (GDPR Art. 15 and 20): JSON, CSV in a zip, XML.

A writer is told the parts of an export in order — a model's section, its documents batch by
batch, the processing record — and writes each to a binary file at once, so the memory an
export needs is one batch of documents, not the subject's whole record. The standard library
writes every format (``json``, ``csv`` and ``zipfile``, ``xml.sax.saxutils``); values the
formats cannot carry natively (ids, dates, binary) are written in MongoDB's relaxed Extended
JSON.
"""

from __future__ import annotations

import abc
import csv
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from typing import IO, Any
from xml.sax.saxutils import XMLGenerator
from xml.sax.xmlreader import AttributesImpl

from bson import json_util

from privata_mongo.core.rights.storage import Storage

__all__ = ["FORMATS", "Writer", "writer"]

_JSON = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED, tz_aware=False)

FORMATS = ("json", "csv", "xml")
"""The export formats ``write`` knows."""


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data (Extended JSON for ids, dates and binary)."""
    return json.loads(json_util.dumps(value, json_options=_JSON))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json_util.dumps(value, json_options=_JSON)


class Writer(abc.ABC):
    """The parts of an export, written as they come: ``section``, ``documents``…, ``finish``.

    ``counts`` holds the documents written per model.
    """

    def __init__(self, out: IO[bytes], subject: str) -> None:
        self.out = out
        self.subject = subject
        self.counts: dict[str, int] = {}
        self.storage: Storage | None = None
        self._model = ""

    def stored(self, storage: Storage) -> None:
        """Say where each part is stored (``core.rights.storage``); written by ``finish``."""
        self.storage = storage

    def section(self, model: str, columns: Sequence[str]) -> None:
        """Start the section of ``model``; ``columns`` are its declared fields in order."""
        self._model = model
        self.counts[model] = 0

    def documents(self, batch: Sequence[Mapping[str, Any]]) -> None:
        """Write a batch of the current model's documents."""
        for document in batch:
            self._document(document)
            self.counts[self._model] += 1

    @abc.abstractmethod
    def _document(self, document: Mapping[str, Any]) -> None:
        """Write one document of the current model (each format its own way)."""

    @abc.abstractmethod
    def finish(self, processing: Sequence[Mapping[str, Any]]) -> None:
        """Write the processing record and close the export."""


class _Json(Writer):
    def __init__(self, out: IO[bytes], subject: str) -> None:
        super().__init__(out, subject)
        out.write(b'{"subject": ' + json.dumps(subject).encode() + b', "models": {')
        self._open = False

    def _close(self) -> None:
        if self._open:
            self.out.write(b"]")

    def section(self, model: str, columns: Sequence[str]) -> None:
        self._close()
        comma = b", " if self.counts else b""
        super().section(model, columns)
        self.out.write(comma + json.dumps(model).encode() + b": [")
        self._open = True

    def _document(self, document: Mapping[str, Any]) -> None:
        comma = b", " if self.counts[self._model] else b""
        self.out.write(comma + json.dumps(_plain(document)).encode())

    def finish(self, processing: Sequence[Mapping[str, Any]]) -> None:
        self._close()
        self.out.write(b'}, "processing": ' + json.dumps(_plain(list(processing))).encode())
        if self.storage is not None:
            self.out.write(b', "storage": ' + json.dumps(self.storage.document()).encode())
        self.out.write(b"}")


_STORAGE = ("part", "model", "region", "stored_in", "master_key")
_PROCESSING = ("at", "actor", "purpose", "legal_basis", "operation", "model", "fields", "outcome")


class _Csv(Writer):
    """One CSV file per model in a zip (deflated), plus ``_processing.csv``."""

    def __init__(self, out: IO[bytes], subject: str) -> None:
        super().__init__(out, subject)
        self._zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
        self._raw: IO[bytes] | None = None
        self._text: io.TextIOWrapper | None = None
        self._columns: list[str] = []

    def _close(self) -> None:
        if self._text is not None:
            self._text.close()  # closes the member too
            self._text = self._raw = None

    def _open(self, name: str) -> Any:
        self._close()
        self._raw = self._zip.open(name, "w", force_zip64=True)
        self._text = io.TextIOWrapper(self._raw, encoding="utf-8", newline="")
        return csv.writer(self._text)

    def section(self, model: str, columns: Sequence[str]) -> None:
        super().section(model, columns)
        self._columns = list(columns)
        self._csv = self._open(f"{model}.csv")
        self._csv.writerow([*self._columns, "_extra"])

    def _document(self, document: Mapping[str, Any]) -> None:
        extra = {k: v for k, v in document.items() if k not in self._columns}
        row = [_cell(document.get(c)) for c in self._columns]
        self._csv.writerow([*row, _cell(extra) if extra else ""])

    def finish(self, processing: Sequence[Mapping[str, Any]]) -> None:
        writer = self._open("_processing.csv")
        writer.writerow(_PROCESSING)
        for record in processing:
            writer.writerow([_cell(record.get(n)) for n in _PROCESSING])
        self._close()
        if self.storage is not None:
            self._storage(self.storage)
        self._zip.writestr("_subject.txt", self.subject)
        self._zip.close()

    def _storage(self, storage: Storage) -> None:
        """``_storage.csv``: one row per part, with the store that holds it."""
        rows = self._open("_storage.csv")
        rows.writerow(_STORAGE)
        key = storage.key
        if key is not None:
            rows.writerow(["key", "", key.region or "", key.key_vault, key.master_key or ""])
        for model in storage.models:
            for part, at in (("identity", model.identity), ("clinical", model.clinical)):
                if at is not None:
                    where = f"{at.database}.{at.collection}"
                    rows.writerow([part, model.model, at.region or "", where, ""])
        self._close()


class _Xml(Writer):
    def __init__(self, out: IO[bytes], subject: str) -> None:
        super().__init__(out, subject)
        self._xml = XMLGenerator(out, encoding="utf-8", short_empty_elements=True)
        self._xml.startDocument()
        self._xml.startElement("export", AttributesImpl({"subject": subject}))
        self._open = False

    def _close(self) -> None:
        if self._open:
            self._xml.endElement("model")
            self._open = False

    def _value(self, name: str, value: Any) -> None:
        self._xml.startElement("field", AttributesImpl({"name": name}))
        if isinstance(value, Mapping):
            for key, item in value.items():
                self._value(str(key), item)
        elif isinstance(value, list):
            for item in value:
                self._value("item", item)
        else:
            self._xml.characters(_cell(value))
        self._xml.endElement("field")

    def section(self, model: str, columns: Sequence[str]) -> None:
        self._close()
        super().section(model, columns)
        self._xml.startElement("model", AttributesImpl({"name": model}))
        self._open = True

    def _document(self, document: Mapping[str, Any]) -> None:
        self._xml.startElement("document", AttributesImpl({}))
        for key, value in document.items():
            self._value(str(key), value)
        self._xml.endElement("document")

    def finish(self, processing: Sequence[Mapping[str, Any]]) -> None:
        self._close()
        self._xml.startElement("processing", AttributesImpl({}))
        for record in processing:
            self._xml.startElement("record", AttributesImpl({}))
            for name in _PROCESSING:
                self._value(name, record.get(name))
            self._xml.endElement("record")
        self._xml.endElement("processing")
        if self.storage is not None:
            self._xml.startElement("storage", AttributesImpl({}))
            for name, value in self.storage.document().items():
                self._value(name, value)
            self._xml.endElement("storage")
        self._xml.endElement("export")
        self._xml.endDocument()


_WRITERS: dict[str, type[Writer]] = {"json": _Json, "csv": _Csv, "xml": _Xml}


def writer(fmt: str, out: IO[bytes], subject: str) -> Writer:
    """The writer of format ``fmt`` (``FORMATS``) to the binary file ``out``.

    Raises:
        ValueError: an unknown format.
    """
    kind = _WRITERS.get(fmt)
    if kind is None:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    return kind(out, subject)
