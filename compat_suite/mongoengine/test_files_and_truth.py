"""What third-party code does with the handles mongoengine gives it: GridFS, truth tests.

Found by running graphene-mongo's own test suite with its imports rewritten by ``codemod``:
mongoengine's ``FileField`` hands ``get_db()`` to ``gridfs.GridFS``, which reads
``database.write_concern.acknowledged``. On mongomock that attribute is a sub-collection and
its truth value is ``True``; pymongo's collections refuse truth-value testing. A proxy answers
as the object it wraps does, whichever it is.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from mongomock import gridfs as mongomock_gridfs

from compat_suite.harness import scenario

mongomock_gridfs.enable_gridfs_integration()  # what mongomock users call for GridFS


@dataclass
class Files:
    """A patient with a scanned consent form (a FileField, stored in GridFS)."""

    Patient: Any


def files(me: ModuleType) -> Files:
    class Patient(me.Document):
        first_name = me.StringField()
        consent_form = me.FileField()
        meta = {"collection": "file_patient"}

    return Files(Patient)


def _truth(value: Any) -> Any:
    try:
        return bool(value)
    except NotImplementedError as error:
        return f"NotImplementedError: {error}"


@scenario(files)
def test_collections_and_databases_answer_truth_tests_as_natively(
    me: ModuleType, m: Files
) -> dict[str, Any]:
    db = me.get_db()
    return {
        "database": _truth(db),
        "collection": _truth(m.Patient._get_collection()),
        "by_name": _truth(db["file_patient"]),
        "attribute_collection": _truth(db.some_collection),
    }


@scenario(files)
def test_a_file_field_round_trips_through_gridfs(me: ModuleType, m: Files) -> dict[str, Any]:
    ann = m.Patient(first_name="Ann")
    ann.consent_form.put(io.BytesIO(b"%PDF-1.4 signed"), content_type="application/pdf")
    ann.save()
    found = m.Patient.objects.get(id=ann.id)
    return {
        "name": found.first_name,
        "content": found.consent_form.read(),
        "files": me.get_db()["fs.files"].count_documents({}),
    }
