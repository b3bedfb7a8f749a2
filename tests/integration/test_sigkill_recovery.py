"""A writer killed with SIGKILL between its identity and clinical inserts leaves nothing behind.

A child process creates a document through the facade and kills itself (``SIGKILL``: no
``finally``, no compensation) right after the identity insert reached the server. What it leaves
is an identity row no clinical row links to, its data key, and the intent the create stored
before writing. ``privata_mongo.recovery.sweep`` in the parent finds the intent, removes the row
and the key, and appends the record the child never could. The child needs a server of its own
process, so this runs against a real server (FerretDB, MongoDB).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from typing import Any

import mongoengine as me

import privata_mongo.mongoengine as pm
from compat_suite.requirements import requires
from privata_mongo.config import current
from privata_mongo.recovery import sweep
from testkit.backends import Backend

CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    import pymongo
    import privata_mongo.mongoengine as pm
    from privata_mongo.testing.faults import FaultPlan, faulty_client_class

    uri, db, collection, vault = sys.argv[1:5]
    import privata_mongo
    privata_mongo.configure(key_vault_namespace=vault)  # the parent's key vault
    plan = FaultPlan()
    pm.connect(db=db, host=uri, mongo_client_class=faulty_client_class(pymongo.MongoClient, plan),
               uuidRepresentation="standard")

    class Patient(pm.Document):
        first_name = pm.StringField()
        email = pm.StringField()
        visits = pm.IntField(default=0)
        meta = {"collection": collection}

    Patient(first_name="Cy", email="cy@example.org").save()  # indexes and index key made
    identity = collection + "__identity"
    plan.arm()
    def kill_after_identity_insert(name, method, run, plan=plan, call=plan.call):
        result = call(name, method, run)
        if name == identity and method == "insert_many":
            print(json.dumps([c.method for c in plan.calls]), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    plan.call = kill_after_identity_insert
    Patient(first_name="Ada", email="ada@example.org", visits=1).save()
    print("not killed", flush=True)
    """
)


@requires("forked_processes")
def test_a_writer_killed_after_its_identity_insert_is_rolled_back_by_the_sweep(
    backend: Backend,
) -> None:
    assert backend.uri is not None, "needs a server shared by two processes"
    db, collection = backend.db_name, f"killed_{uuid.uuid4().hex[:6]}"
    namespace = current().key_vault_namespace
    vault_db, _, vault_name = namespace.partition(".")
    child = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", CHILD, backend.uri, db, collection, namespace],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=False,
    )
    assert child.returncode == -9, child.stderr[-2000:]
    assert json.loads(child.stdout.splitlines()[-1])[-1] == "insert_many"
    raw = backend.client()
    try:
        data = raw[db]
        identity = data[f"{collection}__identity"]
        linked = {r["_pseudonym"] for r in data[collection].find()}
        orphans = [r["_id"] for r in identity.find() if r["_id"] not in linked]
        assert len(orphans) == 1  # what SIGKILL leaves
        (intent,) = list(data["privata_audit.pending"].find())
        assert intent["subjects"] == orphans
        vault = raw[vault_db][vault_name]
        assert vault.count_documents({"keyAltNames": orphans[0]}) == 1

        pm.connect(db=db, alias="sweeper", **backend.mongoengine_settings())
        try:
            report = sweep(pm.get_db("sweeper"), older_than=0)
        finally:
            me.disconnect("sweeper")
        assert (report.intents_resolved, report.orphans_removed) == (1, 1)
        assert identity.count_documents({"_id": orphans[0]}) == 0
        assert vault.count_documents({"keyAltNames": orphans[0]}) == 0
        assert data["privata_audit.pending"].count_documents({}) == 0
        records: list[Any] = list(data["privata_audit"].find({"subjects": orphans[0]}))
        assert [(r["operation"], r["outcome"]) for r in records] == [
            ("create", "recovered:rolled_back")
        ]
        assert {r["_pseudonym"] for r in data[collection].find()} == set(identity.distinct("_id"))
    finally:
        raw.close()
