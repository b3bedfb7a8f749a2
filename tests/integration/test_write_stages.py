"""``$out``/``$merge`` write what native would, through the wrapper, or are refused.

Neither test backend runs ``$merge`` natively (FerretDB has neither stage), so the semantics
are pinned here against what MongoDB's documentation specifies; ``$out`` is also compared with
native mongomock in ``compat_suite/mongoengine/test_commands.py``.
"""

from __future__ import annotations

from typing import Any

import mongoengine as me
import pytest
from pymongo.errors import DuplicateKeyError

from compat_suite.requirements import requires
from privata_mongo import UnsupportedQuery


def _models() -> tuple[Any, Any]:
    def fields(collection: str) -> dict[str, Any]:
        return {
            "first_name": me.StringField(),
            "email": me.StringField(),
            "ward": me.StringField(),
            "age": me.IntField(),
            "meta": {"collection": collection},
        }

    source = type("StagePatient", (me.Document,), fields("stage_patient"))
    target = type("StageArchive", (me.Document,), fields("stage_archive"))
    return source, target


def _seed(patient: Any) -> list[Any]:
    return [
        patient(first_name=name, email=f"{name}@x.org", ward=ward, age=age).save()
        for name, ward, age in (("Ada", "A", 36), ("Bob", "B", 40), ("Cy", "A", 50))
    ]


def _rows(model: Any) -> list[tuple[Any, ...]]:
    return sorted(((d.first_name, d.email, d.ward, d.age) for d in model.objects), key=repr)


def test_out_replaces_the_split_target_with_whole_documents(connected: Any) -> None:
    patient, archive = _models()
    _seed(patient)
    archive(first_name="Old", email="old@x.org").save()
    cursor = patient._get_collection().aggregate(
        [{"$match": {"ward": "A"}}, {"$out": "stage_archive"}]
    )
    assert list(cursor) == []
    assert _rows(archive) == [("Ada", "Ada@x.org", "A", 36), ("Cy", "Cy@x.org", "A", 50)]
    stored = connected["stage_archive"].find_one({"age": 36})
    assert "first_name" not in stored  # split on the way in
    assert connected["stage_archive__identity"].count_documents({}) == 2


def test_merge_follows_when_matched_and_when_not_matched(connected: Any) -> None:
    patient, archive = _models()
    ada, bob, _ = _seed(patient)
    collection = patient._get_collection()
    collection.aggregate([{"$match": {"first_name": "Ada"}}, {"$merge": "stage_archive"}])
    assert _rows(archive) == [("Ada", "Ada@x.org", "A", 36)]
    collection.aggregate(
        [{"$set": {"age": 99}}, {"$project": {"email": 0}}, {"$merge": {"into": "stage_archive"}}]
    )  # merge: Ada keeps her e-mail, the others come without one
    assert _rows(archive) == [
        ("Ada", "Ada@x.org", "A", 99),
        ("Bob", None, "B", 99),
        ("Cy", None, "A", 99),
    ]
    collection.aggregate(
        [
            {"$project": {"first_name": 1}},
            {
                "$merge": {
                    "into": "stage_archive",
                    "whenMatched": "replace",
                    "whenNotMatched": "discard",
                }
            },
        ]
    )
    assert _rows(archive) == [
        ("Ada", None, None, None),
        ("Bob", None, None, None),
        ("Cy", None, None, None),
    ]
    patient(first_name="Dee", email="dee@x.org").save()
    collection.aggregate([{"$merge": {"into": "stage_archive", "whenMatched": "keepExisting"}}])
    assert _rows(archive)[-1] == ("Dee", "dee@x.org", None, None)
    with pytest.raises(DuplicateKeyError):
        collection.aggregate([{"$merge": {"into": "stage_archive", "whenMatched": "fail"}}])
    assert archive.objects.get(id=bob.id).first_name == "Bob"
    assert archive.objects.get(id=ada.id).email is None


def test_writing_identity_values_into_an_unsplit_collection_is_refused(connected: Any) -> None:
    patient, _ = _models()
    _seed(patient)
    collection = patient._get_collection()
    with pytest.raises(UnsupportedQuery, match=r"\$out into 'plain_copy'.*decrypted"):
        collection.aggregate([{"$match": {"ward": "A"}}, {"$out": "plain_copy"}])
    with pytest.raises(UnsupportedQuery, match=r"\$merge"):
        collection.aggregate([{"$project": {"first_name": 1}}, {"$merge": "plain_copy"}])
    assert "plain_copy" not in connected.list_collection_names()
    with pytest.raises(UnsupportedQuery, match="whenMatched"):
        collection.aggregate(
            [{"$merge": {"into": "stage_archive", "whenMatched": [{"$set": {"age": 1}}]}}]
        )


@requires("out_stage")  # the server runs the first: its documents hold nothing to join
def test_documents_without_identity_values_reach_an_unsplit_collection(connected: Any) -> None:
    patient, _ = _models()
    _seed(patient)
    collection = patient._get_collection()
    collection.aggregate([{"$group": {"_id": "$ward", "n": {"$sum": 1}}}, {"$out": "ward_counts"}])
    assert sorted((d["_id"], d["n"]) for d in connected["ward_counts"].find()) == [
        ("A", 2),
        ("B", 1),
    ]
    collection.aggregate([{"$unset": ["first_name", "email"]}, {"$out": "ages"}])
    assert sorted(sorted(d) for d in connected["ages"].find())[0] == ["_id", "age", "ward"]


def test_a_plain_collection_writes_into_a_split_one_through_the_split(connected: Any) -> None:
    _, archive = _models()
    archive._get_db()["plain_source"].insert_many(
        [{"first_name": "Eve", "email": "eve@x.org", "age": 30}]
    )
    archive._get_db()["plain_source"].aggregate([{"$out": "stage_archive"}])
    assert _rows(archive) == [("Eve", "eve@x.org", None, 30)]
    assert "first_name" not in connected["stage_archive"].find_one()
