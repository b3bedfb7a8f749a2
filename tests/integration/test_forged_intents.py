"""Intents written to the journal without the chain key make the sweep delete nothing.

Someone with write access to ``<audit>.pending`` but without the master key can insert an
intent, change a stored one or copy a genuine MAC onto another subject: the sweep must refuse
each (counted ``intents_forged``, left in the journal, one record and a log line with no value)
and still resolve the genuine intents beside them.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest

import privata_mongo
import privata_mongo.mongoengine as pm
from privata_mongo.config import current
from privata_mongo.core.flows.recovery import FORGED_OUTCOME
from privata_mongo.recovery import sweep
from privata_mongo.testing.audit import ListAuditSink

JOURNAL = "privata_audit.pending"


@pytest.fixture
def sink() -> Iterator[ListAuditSink]:
    saved = current()
    sink = ListAuditSink()
    privata_mongo.configure(audit_sink=sink)
    yield sink
    privata_mongo.config._current = saved


def _models() -> tuple[Any, Any]:
    class ForgedPatient(pm.Document):
        first_name = pm.StringField()
        email = pm.StringField()
        diagnosis = pm.StringField()
        meta = {"collection": "forged_patient"}

    class ForgedVisitor(pm.Document):
        first_name = pm.StringField()
        ward = pm.StringField()
        meta = {"collection": "forged_visitor"}

    return ForgedPatient, ForgedVisitor


def _vault(raw: Any) -> Any:
    database, _, collection = current().key_vault_namespace.partition(".")
    return raw.client[database][collection]


def _pseudonym(raw: Any, collection: str, doc: Any) -> str:
    found: str = raw[collection].find_one({"_id": doc.id})["_pseudonym"]
    return found


def _intent(id: str, kind: str, collection: str, *subjects: str) -> dict[str, Any]:
    return {
        "_id": id,
        "at": datetime.datetime(2026, 1, 1),
        "actor": "mallory",
        "operation": kind,
        "kind": kind,
        "model": "ForgedPatient",
        "collection": collection,
        "subjects": list(subjects),
        "fields": ["email"],
    }


def test_forged_intents_delete_nothing_and_are_reported(
    connected: Any, sink: ListAuditSink, caplog: pytest.LogCaptureFixture
) -> None:
    Patient, Visitor = _models()
    ada = Patient(first_name="Ada", email="ada@example.org", diagnosis="flu").save()
    bo = Patient(first_name="Bo", email="bo@example.org", diagnosis="cold").save()
    vi = Visitor(first_name="Vi", ward="4b").save()
    sink.fail = OSError("audit server unreachable")
    Patient(first_name="Cy", email="cy@example.org").save()  # applied; its intent stays
    sink.fail = None
    (genuine,) = connected[JOURNAL].find()
    assert "mac" in genuine
    ada_p = _pseudonym(connected, "forged_patient", ada)
    bo_p = _pseudonym(connected, "forged_patient", bo)
    vi_p = _pseudonym(connected, "forged_visitor", vi)
    # Bo's clinical row gone: the state a forged create needs to delete his identity row
    connected["forged_patient"].delete_one({"_id": bo.id})
    forged = [
        # no MAC: would discard the key of a live subject of another model
        _intent("f1", "create", "forged_patient", vi_p),
        # a wrong MAC: would delete Bo's identity row
        _intent("f2", "create", "forged_patient", bo_p) | {"mac": "0" * 64},
        # a genuine MAC copied onto other subjects
        genuine | {"_id": "f3", "subjects": [ada_p, bo_p, vi_p]},
    ]
    connected[JOURNAL].insert_many(forged)
    identity_before = connected["forged_patient__identity"].count_documents({})
    keys_before = _vault(connected).count_documents({})
    with caplog.at_level("WARNING"):
        report = sweep(pm.get_db(), older_than=0)
    assert (report.intents_forged, report.intents_resolved) == (3, 1)
    assert connected["forged_patient__identity"].count_documents({}) == identity_before
    assert _vault(connected).count_documents({}) == keys_before
    assert _vault(connected).count_documents({"keyAltNames": vi_p}) == 1
    assert sorted(d["_id"] for d in connected[JOURNAL].find()) == ["f1", "f2", "f3"]
    refusals = [r for r in sink.records if r["outcome"] == FORGED_OUTCOME]
    assert [(r["count"], r["subjects"], r["actor"]) for r in refusals] == [
        (3, [], "privata:recovery")
    ]
    recovered = [r for r in sink.records if r["outcome"].startswith("recovered:")]
    assert [(r["operation"], r["outcome"]) for r in recovered] == [("create", "recovered:ok")]
    assert Visitor.objects.get(id=vi.id).first_name == "Vi"  # its key is still there
    for value in ("Ada", "ada@example.org", "Bo", "Vi", "mallory", ada_p, bo_p, vi_p):
        assert value not in caplog.text
        assert all(value not in repr(r) for r in refusals)
    assert "3 pending intent(s) refused" in caplog.text
