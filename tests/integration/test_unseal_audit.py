"""Every path that decrypts is audited: ``unseal_row`` and ``unseal_row_async`` leave a record."""

from __future__ import annotations

from typing import Any

import pytest
from mongomock.store import ServerStore

import privata_mongo
import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from privata_mongo import access_context
from privata_mongo.audit import audit_collection, chain_key_async, verify
from privata_mongo.embedded import AsyncMockClient
from privata_mongo.encryption import unseal_row, unseal_row_async
from privata_mongo.errors import (
    AuditUnavailable,
    ConfigurationError,
    MissingAccessContext,
)
from privata_mongo.testing.audit import ListAuditSink


@pytest.fixture
def settings() -> Any:
    saved = privata_mongo.config.current()
    yield
    privata_mongo.config._current = saved


def _saved_row(connected: Any) -> dict[str, Any]:
    class UnsealPatient(pm.Document):
        first_name = pm.StringField()
        email = pm.StringField()
        meta = {"collection": "unseal_patient"}

    with access_context(actor="dr.lee"):
        UnsealPatient(first_name="Ada", email="ada@x.org").save()
    row: dict[str, Any] = connected["unseal_patient__identity"].find_one({})
    return row


def test_unseal_row_leaves_an_audit_record_before_returning(connected: Any) -> None:
    row = _saved_row(connected)
    with access_context(actor="ops.kim", purpose="support", request_id="t-1"):
        plain = unseal_row(connected, row)
    assert plain == {"first_name": "Ada", "email": "ada@x.org"}
    trail = audit_collection(connected)
    (record,) = trail.find({"operation": "unseal"})
    assert (record["actor"], record["purpose"], record["request_id"]) == (
        "ops.kim",
        "support",
        "t-1",
    )
    assert (record["subjects"], record["fields"], record["count"]) == (
        [row["_id"]],
        ["email", "first_name"],
        1,
    )
    assert "Ada" not in str(record)
    assert "ada@x.org" not in str(record)
    assert verify(trail).ok


@pytest.mark.usefixtures("settings")
def test_unseal_row_returns_nothing_when_the_record_cannot_be_stored(connected: Any) -> None:
    row = _saved_row(connected)
    sink = ListAuditSink()
    privata_mongo.configure(audit_sink=sink)
    sink.fail = OSError("audit store down")
    with access_context(actor="ops.kim"), pytest.raises(AuditUnavailable) as caught:
        unseal_row(connected, row)
    assert "Ada" not in str(caught.value)
    privata_mongo.configure(audit_strict=True)
    sink.fail = None
    with pytest.raises(MissingAccessContext):
        unseal_row(connected, row)  # strict mode: who unseals must be declared
    assert sink.records == []


def test_unseal_row_needs_a_database_to_record_in(connected: Any) -> None:
    row = _saved_row(connected)
    with pytest.raises(ConfigurationError, match="pass the database"):
        unseal_row(connected.client, row)  # a client without a default database


@pytest.mark.usefixtures("settings")
async def test_unseal_row_async_leaves_an_audit_record() -> None:
    class UnsealMember(pb.Document):
        first_name: str
        email: str

        class Settings:
            name = "unseal_members"

    sink = ListAuditSink()
    privata_mongo.configure(audit_sink=sink)
    database = AsyncMockClient(ServerStore())["unseal"]
    await pb.init_beanie(database=database, document_models=[UnsealMember])
    with access_context(actor="dr.lee"):
        await UnsealMember(first_name="Ada", email="ada@x.org").insert()
    row = await database["unseal_members__identity"].find_one({})
    with access_context(actor="ops.kim", purpose="support"):
        plain = await unseal_row_async(database, row)
    assert plain == {"first_name": "Ada", "email": "ada@x.org"}
    assert [(r["operation"], r["actor"], r["subjects"]) for r in sink.records] == [
        ("create", "dr.lee", [row["_id"]]),
        ("unseal", "ops.kim", [row["_id"]]),
    ]
    assert verify(sink, key=await chain_key_async(database.client)).ok


async def test_unseal_row_async_refuses_a_sync_connection_it_could_not_record_for(
    connected: Any,
) -> None:
    row = _saved_row(connected)
    with access_context(actor="ops.kim"), pytest.raises(ConfigurationError, match="unseal_row"):
        await unseal_row_async(pm.get_db(), row)
    assert audit_collection(connected).count_documents({"operation": "unseal"}) == 0
