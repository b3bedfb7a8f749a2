"""Migrate 100,000 plaintext documents on FerretDB, killed half-way and resumed, then leave.

1. Start FerretDB (``testkit.ferretdb``), insert N plaintext documents of a patient model
   (identity: name, email, phone; clinical: ward, blood type, visits, a nested record), and
   keep the SHA-256 of each stored document's raw BSON.
2. ``privata-mongo migrate`` in a subprocess, its progress display captured (``COLUMNS=100``);
   SIGKILL when about half the documents are migrated; the state is counted.
3. ``privata-mongo migrate`` again (resumes), then ``migrate verify --sample S``: counts,
   duplicates and sampled joins against the source checksums.
4. ``privata-mongo unmigrate`` (captured too), then every document's raw BSON compared with
   the source's.

    python stress/migrate_100k.py [--documents 100000] [--batch-size 500] [--sample 1000]

Prints a JSON report on stdout and writes the captured screens under ``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bson import ObjectId
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient

from privata_mongo.core.pseudonym import is_pseudonym
from privata_mongo.encryption import new_master_key
from testkit.ferretdb import start_ferretdb

MODELS = """
import privata_mongo.mongoengine as me


class StressPatient(me.Document):
    full_name = me.StringField()
    email = me.EmailField(searchable=True)
    phone = me.StringField(pii=True)
    ward = me.StringField()
    blood_type = me.StringField()
    visits = me.IntField()
    record = me.DictField()
    meta = {"collection": "stress_patient"}
"""
NAME = "stress_patient"
CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _documents(n: int) -> list[dict[str, Any]]:
    start = datetime.datetime(2020, 1, 1)
    return [
        {
            "_id": ObjectId(),
            "full_name": f"Patient Number {i}",
            "email": f"patient{i}@example.org",
            "phone": f"+44 20 7946 {i % 10000:04d}",
            "ward": f"W{i % 12}",
            "blood_type": ("A+", "A-", "B+", "O+", "O-", "AB+")[i % 6],
            "visits": i % 40,
            "record": {"admitted": start + datetime.timedelta(hours=i), "scores": [i % 7, 2.5]},
        }
        for i in range(n)
    ]


def _raw_digests(db: Any) -> dict[Any, str]:
    options = db.codec_options.with_options(document_class=RawBSONDocument)
    collection = db.get_collection(NAME).with_options(codec_options=options)
    return {d["_id"]: hashlib.sha256(d.raw).hexdigest() for d in collection.find({})}


def _screen(path: Path) -> str:
    """The last frame of a live progress display captured from a terminal stream."""
    text = CSI.sub("", path.read_text(encoding="utf-8", errors="replace"))
    frames = [f.rstrip() for f in re.split(r"[\r\n]", text) if f.strip()]
    return frames[-1] if frames else ""


def _cli(args: list[str], env: dict[str, str], cwd: Path, screen: Path) -> subprocess.Popen[str]:
    script = Path(sys.executable).with_name("privata-mongo")
    with screen.open("w") as err:
        return subprocess.Popen(  # noqa: S603 - the project's own entry point
            [str(script), *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )


def _counts(db: Any, vault: Any) -> dict[str, int]:
    keys = [n for d in vault.find({}, {"keyAltNames": 1}) for n in d.get("keyAltNames", ())]
    return {
        "plaintext": db[NAME].count_documents({"_pseudonym": {"$exists": False}}),
        "migrated": db[NAME].count_documents({"_pseudonym": {"$exists": True}}),
        "identity_rows": db[NAME + "__identity"].count_documents({}),
        "subject_keys": sum(1 for n in keys if is_pseudonym(n)),
        "ledger": db[NAME + "__migration"].count_documents({}),
    }


def main() -> None:
    """Run the scenario and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--kill-at", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=Path("stress/results"))
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"documents": options.documents, "batch_size": options.batch_size}
    with tempfile.TemporaryDirectory() as tmp, start_ferretdb(Path(tmp) / "ferretdb") as server:
        work = Path(tmp)
        (work / "stress_models.py").write_text(MODELS)
        env = {
            **os.environ,
            "PRIVATA_MASTER_KEY": new_master_key(),
            "COLUMNS": "100",
            "TTY_COMPATIBLE": "1",
            "TTY_INTERACTIVE": "1",
        }
        client: MongoClient[dict[str, Any]] = MongoClient(server.uri)
        db = client["stress_migrate"]
        vault = client["encryption"]["__keyVault"]
        started = time.monotonic()
        documents = _documents(options.documents)
        for start in range(0, len(documents), 5000):
            db[NAME].insert_many(documents[start : start + 5000], ordered=False)
        report["insert_seconds"] = round(time.monotonic() - started, 1)
        source = _raw_digests(db)
        common = ["--models", "stress_models:StressPatient", "--uri", server.uri]
        common += ["--db", "stress_migrate", "--batch-size", str(options.batch_size)]

        started = time.monotonic()
        first = _cli(["migrate", *common], env, work, options.out / "migrate_killed.screen")
        target = int(options.documents * options.kill_at)
        while first.poll() is None:
            # the identity rows' count is metadata (a filtered count scans on FerretDB); they
            # are written just before their batch's clinical rows
            if db[NAME + "__identity"].estimated_document_count() >= target:
                os.killpg(first.pid, signal.SIGKILL)
                break
            time.sleep(1.0)
        first.wait()
        report["killed"] = {
            "returncode": first.returncode,
            "after_seconds": round(time.monotonic() - started, 1),
            **_counts(db, vault),
        }

        started = time.monotonic()
        resumed = _cli(["migrate", *common, "--json"], env, work, options.out / "migrate.screen")
        out, _ = resumed.communicate()
        report["resumed"] = {
            "returncode": resumed.returncode,
            "seconds": round(time.monotonic() - started, 1),
            "report": json.loads(out)["models"][0],
            **_counts(db, vault),
        }
        pseudonyms = db[NAME].distinct("_pseudonym")
        report["duplicates"] = report["resumed"]["migrated"] - len(pseudonyms)

        verify_args = ["migrate", "verify", *common[:6], "--sample", str(options.sample), "--json"]
        checked = _cli(verify_args, env, work, options.out / "verify.screen")
        out, _ = checked.communicate()
        report["verify"] = {"returncode": checked.returncode, **json.loads(out)["models"][0]}

        started = time.monotonic()
        leaving = _cli(
            ["unmigrate", *common, "--json"], env, work, options.out / "unmigrate.screen"
        )
        out, _ = leaving.communicate()
        report["unmigrate"] = {
            "returncode": leaving.returncode,
            "seconds": round(time.monotonic() - started, 1),
            "report": json.loads(out)["models"][0],
            **_counts(db, vault),
        }
        after = _raw_digests(db)
        report["byte_identical"] = after == source
        report["byte_differences"] = sum(1 for k, v in source.items() if after.get(k) != v)
        client.close()
    for name in ("migrate_killed", "migrate", "unmigrate"):
        report[f"screen_{name}"] = _screen(options.out / f"{name}.screen")
    (options.out / "migrate_100k.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
