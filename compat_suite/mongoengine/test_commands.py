"""Raw database commands, ``$out``/``$merge`` and the server's own rules (order, limits, errors).

What an application sends past the ODM's query API — ``Database.command``, a pipeline ending in
a write stage — and what the server decides on its own (the order of ``distinct`` values, the
maximum document size, the details of a duplicate-key error) must look native too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from bson.son import SON

from compat_suite.harness import error_name, outcome, scenario
from compat_suite.mongoengine.models import Clinic, clinic, seed_clinic
from compat_suite.requirements import requires


@requires("distinct_order")
@scenario(clinic)
def test_distinct_values_come_in_the_servers_order(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    patient = m.Patient.objects
    return {
        "last_name": patient.distinct("last_name"),
        "email": patient.distinct("email"),
        "date_of_birth": patient.distinct("date_of_birth"),
        "aliases": patient.distinct("aliases"),
        "city": patient.distinct("address.city"),
        "blood_type": patient.distinct("blood_type"),
        "tags": patient.distinct("tags"),
    }


def _reply(reply: Mapping[str, Any]) -> dict[str, Any]:
    """A command's reply without what differs between runs (the database's name, cluster time)."""
    out = {k: v for k, v in reply.items() if k not in ("$clusterTime", "operationTime")}
    if isinstance(out.get("cursor"), Mapping):
        cursor = dict(out["cursor"])
        cursor["ns"] = str(cursor.get("ns", "")).split(".", 1)[-1]
        out["cursor"] = cursor
    return out


@requires("database_commands")
@scenario(clinic)
def test_read_commands_on_a_split_collection(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    db = m.Patient._get_db()
    name = m.Patient._get_collection_name()
    shown = {"_id": 0, "first_name": 1, "last_name": 1, "email": 1, "weight_kg": 1}
    return {
        "count": _reply(db.command("count", name, query={"last_name": "Lovelace"})),
        "count_all": _reply(db.command({"count": name})),
        "count_mixed": _reply(
            db.command("count", name, query={"weight_kg": 70, "first_name": {"$ne": "alan"}})
        ),
        "distinct": _reply(db.command("distinct", name, key="last_name")),
        "distinct_filtered": _reply(
            db.command(SON([("distinct", name), ("key", "email"), ("query", {"weight_kg": 70})]))
        ),
        "distinct_clinical": _reply(
            db.command("distinct", name, key="blood_type", query={"first_name": "Ada"})
        ),
        "find": _reply(
            db.command(
                "find", name, filter={"blood_type": "A+"}, projection=shown, sort={"weight_kg": 1}
            )
        ),
        "find_identity": _reply(
            db.command("find", name, filter={"email": "alan@example.org"}, projection=shown)
        ),
        "find_whole": [
            sorted(d) for d in db.command("find", name, limit=2)["cursor"]["firstBatch"]
        ],
        "aggregate": _reply(
            db.command(
                "aggregate",
                name,
                pipeline=[
                    {"$match": {"last_name": {"$in": ["Turing", "Hopper"]}}},
                    {"$sort": {"weight_kg": -1}},
                    {"$project": shown},
                ],
                cursor={},
            )
        ),
        "other_collection": _reply(
            db.command("count", m.Doctor._get_collection_name(), query={"speciality": "dx"})
        ),
        "admin": db.command("ping")["ok"],
    }


@requires("database_commands")
@scenario(clinic)
def test_write_commands_on_a_split_collection(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    db = m.Patient._get_db()
    name = m.Patient._get_collection_name()
    added = {"first_name": "Tim", "last_name": "Berners-Lee", "email": "tim@example.org"}
    return {
        "find_and_modify": _reply(
            db.command(
                SON(
                    [
                        ("findAndModify", name),
                        ("query", {"last_name": "Hopper"}),
                        ("update", {"$set": {"weight_kg": 59, "phone": "+1 9"}}),
                        ("new", True),
                    ]
                )
            )
        ),
        "find_and_modify_none": _reply(
            db.command(
                SON([("findAndModify", name), ("query", {"last_name": "Nobody"}), ("remove", True)])
            )
        ),
        "find_and_remove": _reply(
            db.command(
                SON(
                    [
                        ("findAndModify", name),
                        ("query", {"first_name": "Edsger"}),
                        ("remove", True),
                    ]
                )
            )
        ),
        "insert": _reply(db.command("insert", name, documents=[added])),
        "insert_duplicate": sorted(
            _reply(db.command("insert", name, documents=[added]))["writeErrors"][0]
        ),
        "update": _reply(
            db.command(
                "update",
                name,
                updates=[
                    {
                        "q": {"last_name": "Liskov"},
                        "u": {"$set": {"blood_type": "B-", "phone": "+1 7"}},
                    },
                    {"q": {"weight_kg": 70}, "u": {"$inc": {"weight_kg": 1}}, "multi": True},
                ],
            )
        ),
        "delete": _reply(
            db.command("delete", name, deletes=[{"q": {"last_name": "Turing"}, "limit": 1}])
        ),
        "after": sorted(
            (p.first_name, p.last_name, p.email, p.weight_kg, p.phone) for p in m.Patient.objects
        ),
        "app_document_unchanged": sorted(added),
    }


@dataclass(frozen=True)
class Badged:
    Member: Any


def badged(me: ModuleType) -> Badged:
    class Member(me.Document):
        first_name = me.StringField(required=True)
        email = me.EmailField(unique=True)
        badge = me.IntField(unique=True)
        weight_kg = me.IntField()

    return Badged(Member)


def _error(action: Callable[[], object], db_name: str) -> dict[str, Any]:
    """What an application can read of a write error: type, code, message and details."""
    try:
        action()
    except Exception as exc:
        details = getattr(exc, "details", None)
        return {
            "type": error_name(exc),
            "code": getattr(exc, "code", None),
            "message": str(exc).replace(db_name, "<db>"),
            "details": None
            if details is None
            else {k: str(v).replace(db_name, "<db>") for k, v in details.items()},
        }
    raise AssertionError("the write did not fail")


@scenario(badged)
def test_duplicate_key_errors_look_native(me: ModuleType, m: Badged) -> dict[str, Any]:
    m.Member(first_name="Ada", email="ada@example.org", badge=1).save()
    raw = m.Member._get_collection()
    db_name = raw.database.name
    return {
        "identity_save": _error(
            lambda: m.Member(first_name="Eve", email="ada@example.org", badge=2).save(), db_name
        ),
        "clinical_save": _error(
            lambda: m.Member(first_name="Bob", email="bob@example.org", badge=1).save(), db_name
        ),
        "identity_insert_one": _error(
            lambda: raw.insert_one({"first_name": "Eve", "email": "ada@example.org"}), db_name
        ),
        "clinical_insert_one": _error(
            lambda: raw.insert_one({"first_name": "Bob", "badge": 1}), db_name
        ),
        "clinical_update": _error(
            lambda: raw.update_one({"first_name": "Bob"}, {"$set": {"badge": 1}}, upsert=True),
            db_name,
        ),
        "stored": sorted((x.first_name, x.badge) for x in m.Member.objects),
    }


_NINE_MIB = "x" * (9 * 1024 * 1024)
_SEVENTEEN_MIB = "x" * (17 * 1024 * 1024)


@requires("document_size_limit")
@scenario(clinic)
def test_oversized_documents_are_refused_before_anything_is_written(
    me: ModuleType, m: Clinic
) -> dict[str, Any]:
    patients = seed_clinic(m)
    raw = m.Patient._get_collection()

    def patient(**fields: Any) -> Any:
        return m.Patient(first_name="Big", last_name="Doc", email="big@example.org", **fields)

    return {
        "clinical_too_large": outcome(lambda: patient(vitals={"blob": _SEVENTEEN_MIB}).save()),
        "identity_too_large": outcome(lambda: patient(aliases=[_SEVENTEEN_MIB]).save()),
        # each half below the limit, the document above it
        "halves_below_the_limit": outcome(
            lambda: patient(aliases=[_NINE_MIB], tags=[_NINE_MIB]).save()
        ),
        "raw_insert": outcome(
            lambda: (
                raw.insert_one({"last_name": _NINE_MIB, "vitals": {"blob": _NINE_MIB}}).acknowledged
            )
        ),
        "replace": outcome(
            lambda: (
                raw.replace_one(
                    {"_id": patients[0].id},
                    {"last_name": _NINE_MIB, "first_name": "A", "tags": [_NINE_MIB]},
                ).modified_count
            )
        ),
        "stored": sorted(((p.first_name, p.last_name) for p in m.Patient.objects), key=repr),
        "first_unchanged": m.Patient.objects(id=patients[0].id).first().last_name,
    }


@scenario(clinic)
def test_a_clinical_update_past_the_limit_fails_as_natively(
    me: ModuleType, m: Clinic
) -> dict[str, Any]:
    """An update of clinical fields that takes the whole document past 16 MiB.

    The clinical half alone stays below the limit: the server refuses it (17419) natively, so
    the wrapper must too; a backend that stores larger documents (FerretDB 1.x, mongomock)
    accepts it natively, and through the wrapper, which cannot measure there.
    """
    # identity and clinical halves below the limit, the whole document just below it too
    ada = m.Patient(
        first_name="Ada",
        last_name="Big",
        aliases=["a" * (1024 * 1024)],
        vitals={"blob": "v" * (15 * 1024 * 1024 - 8192)},
    ).save()
    raw = m.Patient._get_collection()

    def code(action: Callable[[], object]) -> Any:
        try:
            action()
        except Exception as exc:
            return error_name(exc), getattr(exc, "code", None)
        return None

    return {
        "update_one": code(
            lambda: raw.update_one({"_id": ada.id}, {"$set": {"tags": ["t" * 16384]}})
        ),
        "find_one_and_update": code(
            lambda: raw.find_one_and_update({"_id": ada.id}, {"$push": {"tags": "t" * 16384}})
        ),
        "small": raw.update_one({"_id": ada.id}, {"$set": {"weight_kg": 70}}).modified_count,
        "stored": [len(t) for t in m.Patient.objects.get(id=ada.id).tags],
    }


@requires("server_document_size_limit")
@scenario(clinic)
def test_the_server_refuses_documents_past_the_limit(me: ModuleType, m: Clinic) -> dict[str, Any]:
    patients = seed_clinic(m)
    raw = m.Patient._get_collection()

    def code(action: Callable[[], object]) -> Any:
        try:
            action()
        except Exception as exc:
            errors = (getattr(exc, "details", None) or {}).get("writeErrors")
            return error_name(exc), [e["code"] for e in errors] if errors else exc.code
        return None

    return {
        "insert_many": code(
            lambda: raw.insert_many([{"last_name": "Small"}, {"last_name": _SEVENTEEN_MIB}])
        ),
        "update_grows": code(
            lambda: raw.update_one(
                {"_id": patients[0].id},
                {"$set": {"last_name": _NINE_MIB, "vitals": {"blob": _NINE_MIB}}},
            )
        ),
        "stored": sorted(((p.first_name, p.last_name) for p in m.Patient.objects), key=repr),
    }


@dataclass(frozen=True)
class Archive:
    Patient: Any
    Archived: Any


def archive(me: ModuleType) -> Archive:
    def fields() -> dict[str, Any]:
        return {
            "first_name": me.StringField(required=True),
            "last_name": me.StringField(),
            "email": me.EmailField(),
            "weight_kg": me.IntField(),
            "ward": me.StringField(),
        }

    patient = type("Patient", (me.Document,), fields())
    archived = type("Archived", (me.Document,), fields())
    return Archive(patient, archived)


def _seed_archive(m: Archive) -> None:
    for first, last, kg, ward in (("Ada", "Lovelace", 61, "A"), ("Alan", "Turing", 70, "B")):
        m.Patient(
            first_name=first, last_name=last, email=f"{first}@x.org", weight_kg=kg, ward=ward
        ).save()
    m.Archived(first_name="Old", last_name="Entry", email="old@x.org", weight_kg=1).save()


def _archived(m: Archive) -> list[tuple[Any, ...]]:
    return sorted(
        ((a.first_name, a.last_name, a.email, a.weight_kg, a.ward) for a in m.Archived.objects),
        key=repr,
    )


@requires("out_stage")
@scenario(archive)
def test_out_into_a_split_collection_writes_whole_documents(
    me: ModuleType, m: Archive
) -> dict[str, Any]:
    _seed_archive(m)
    target = m.Archived._get_collection_name()
    # the cursor is not observed: mongomock returns the documents written, a server none
    list(m.Patient.objects.aggregate([{"$match": {"weight_kg": {"$gte": 60}}}, {"$out": target}]))
    whole = _archived(m)
    list(
        m.Patient.objects.aggregate(
            [{"$match": {"last_name": "Turing"}}, {"$project": {"ward": 0}}, {"$out": target}]
        )
    )
    return {
        "whole": whole,
        "projected": _archived(m),
        "by_identity": [a.first_name for a in m.Archived.objects(email="Alan@x.org")],
    }


@requires("merge_stage")
@scenario(archive)
def test_merge_into_a_split_collection(me: ModuleType, m: Archive) -> dict[str, Any]:
    _seed_archive(m)
    target = m.Archived._get_collection_name()
    list(m.Patient.objects.aggregate([{"$merge": {"into": target}}]))
    merged = _archived(m)
    list(
        m.Patient.objects.aggregate(
            [
                {"$match": {"first_name": "Ada"}},
                {"$set": {"weight_kg": 62, "last_name": "King"}},
                {"$project": {"ward": 0}},
                {"$merge": {"into": target, "whenMatched": "merge"}},
            ]
        )
    )
    updated = _archived(m)
    list(
        m.Patient.objects.aggregate(
            [
                {"$match": {"first_name": "Alan"}},
                {"$project": {"first_name": 1, "email": 1}},
                {"$merge": {"into": target, "whenMatched": "replace"}},
            ]
        )
    )
    return {"merged": merged, "updated": updated, "replaced": _archived(m)}
