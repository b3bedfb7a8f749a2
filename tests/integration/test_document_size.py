"""Documents past the server's 16 MiB limit fail as natively, and nothing of them is stored.

The compat suite compares the single-document cases with native runs on FerretDB
(``compat_suite/mongoengine/test_commands.py``); here, on every backend: the halves, the
server's per-document rule for ``insert_many`` and updates, and that no half is left behind.
"""

from __future__ import annotations

from typing import Any

import mongoengine as me
import pytest
from pymongo.errors import BulkWriteError, DocumentTooLarge, WriteError

from compat_suite.requirements import requires
from privata_mongo.core.limits import BSON_OBJECT_TOO_LARGE, DOCUMENT_GREW_TOO_LARGE

NINE_MIB = "x" * (9 * 1024 * 1024)
ONE_MIB = "x" * (1024 * 1024)


def _patient() -> Any:
    class SizedPatient(me.Document):
        first_name = me.StringField()
        notes = me.StringField()
        meta = {"collection": "sized_patient"}

    return SizedPatient


def _counts(connected: Any) -> tuple[int, int]:
    return (
        connected["sized_patient"].count_documents({}),
        connected["sized_patient__identity"].count_documents({}),
    )


def test_a_document_whose_halves_fit_but_not_the_whole_is_refused(connected: Any) -> None:
    patient = _patient()
    patient(first_name="Ada", notes="small").save()
    with pytest.raises(DocumentTooLarge, match="BSON document too large"):
        patient(first_name=NINE_MIB, notes=NINE_MIB).save()
    assert _counts(connected) == (1, 1)


def test_insert_many_fails_the_oversized_document_alone(connected: Any) -> None:
    patient = _patient()
    collection = patient._get_collection()
    documents = [{"first_name": "A"}, {"first_name": NINE_MIB, "notes": NINE_MIB}, {"notes": "c"}]
    with pytest.raises(BulkWriteError) as caught:
        collection.insert_many([dict(d) for d in documents])
    assert [e["code"] for e in caught.value.details["writeErrors"]] == [BSON_OBJECT_TOO_LARGE]
    assert caught.value.details["nInserted"] == 1  # ordered: the first document only
    assert _counts(connected) == (1, 1)
    with pytest.raises(BulkWriteError) as unordered:
        collection.insert_many([dict(d) for d in documents], ordered=False)
    assert unordered.value.details["nInserted"] == 2
    assert _counts(connected) == (3, 3)


def test_an_update_growing_a_document_past_the_limit_fails_before_any_write(
    connected: Any,
) -> None:
    patient = _patient()
    ada = patient(first_name="Ada", notes=NINE_MIB).save()
    with pytest.raises(WriteError) as caught:
        patient._get_collection().update_one({"_id": ada.id}, {"$set": {"first_name": NINE_MIB}})
    assert caught.value.code == DOCUMENT_GREW_TOO_LARGE
    assert patient.objects.get(id=ada.id).first_name == "Ada"
    eight = "x" * (8 * 1024 * 1024)
    with pytest.raises(WriteError) as replaced:  # past the server's limit, within the driver's
        patient._get_collection().replace_one(
            {"_id": ada.id}, {"first_name": eight, "notes": eight + "x" * 1000}
        )
    assert replaced.value.code == DOCUMENT_GREW_TOO_LARGE
    assert patient.objects.get(id=ada.id).first_name == "Ada"


@requires("document_sizes")
def test_an_update_of_clinical_fields_taking_both_halves_past_the_limit_fails_unwritten(
    connected: Any,
) -> None:
    patient = _patient()
    # each half below the limit, and the whole document too, by less than what is added below
    ada = patient(first_name=ONE_MIB, notes="x" * (15 * 1024 * 1024 - 4096)).save()
    collection = patient._get_collection()
    with pytest.raises(WriteError) as caught:
        collection.update_one({"_id": ada.id}, {"$set": {"ward": "y" * 8192}})
    assert caught.value.code == DOCUMENT_GREW_TOO_LARGE
    with pytest.raises(WriteError):
        collection.update_many({}, {"$set": {"ward": "y" * 8192}})
    assert "ward" not in connected["sized_patient"].find_one({"_id": ada.id})
    collection.update_one({"_id": ada.id}, {"$set": {"ward": "A"}})  # small enough: stored
    assert connected["sized_patient"].find_one({"_id": ada.id})["ward"] == "A"
