"""The export of one data subject (GDPR Art. 20): files, sizes, time and peak memory.

A subject with three models: the patient (identity fields, encrypted), its encounters and the
observations of each encounter (clinical only, found through the references), ``--count``
clinical documents in all, beside as many documents of another patient that must not be
exported. Each format is written to a file on disk; peak memory is what ``tracemalloc`` saw
allocated by Python during the export (the documents are streamed, so it should stay flat as
the count grows). The data map's walk is run once first, to show its round trips (one lookup
per edge, level and chunk of ``LOOKUP_CHUNK`` ids) and the memory its ids take.

    python stress/bench_export.py                     # mongomock, 1,000 documents
    python stress/bench_export.py 100000 --formats json
    python stress/bench_export.py 1000 --ferretdb     # a FerretDB of its own (scripts/ferretdb.sh)
    python stress/bench_export.py --uri mongodb://127.0.0.1:27017/   # a server (FerretDB, MongoDB)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import tempfile
import time
import tracemalloc
import uuid
import zipfile
from pathlib import Path
from typing import Any

import mongoengine as me
import mongomock
from mongomock.store import ServerStore

import privata_mongo.mongoengine as pm
from privata_mongo import Rights, access_context
from privata_mongo.core.rights.datamap import LOOKUP_CHUNK
from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
from privata_mongo.rights import Subject

# Run as `python stress/bench_export.py` from a checkout: the test kit sits beside privata_mongo.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def models() -> tuple[Any, Any, Any]:
    class ExportPatient(pm.Document):
        first_name = pm.StringField()
        email = pm.StringField(searchable=True)
        blood_type = pm.StringField()

    class ExportEncounter(pm.Document):
        patient = pm.ReferenceField(ExportPatient)
        reason = pm.StringField()
        at = pm.DateTimeField()

    class ExportObservation(pm.Document):
        encounter = pm.ReferenceField(ExportEncounter)
        code = pm.StringField()
        value = pm.FloatField()

    return ExportPatient, ExportEncounter, ExportObservation


def populate(count: int, classes: tuple[Any, Any, Any]) -> Any:
    import datetime

    patient_cls, encounter_cls, observation_cls = classes
    subject = None
    for name in ("Ann", "Bob"):
        patient = patient_cls(first_name=name, email=f"{name.lower()}@example.org").save()
        subject = subject or patient
        encounters = encounter_cls._get_collection()
        observations = observation_cls._get_collection()
        when = datetime.datetime(2026, 1, 1)
        half = count // 2
        for start in range(0, half, 1000):
            rows = [
                {"patient": patient.id, "reason": f"visit {i}", "at": when}
                for i in range(start, min(start + 1000, half))
            ]
            ids = encounters.insert_many(rows).inserted_ids
            observations.insert_many(
                [
                    {"encounter": i, "code": "8867-4", "value": 72.0 + n % 10}
                    for n, i in enumerate(ids)
                ]
            )
    return subject


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "count", type=int, nargs="?", default=1000, help="clinical documents of the subject"
    )
    parser.add_argument("--count", type=int, dest="count_option", help="the same, as an option")
    parser.add_argument("--uri", help="a server to run against (default: mongomock)")
    parser.add_argument("--ferretdb", action="store_true", help="start a FerretDB of its own")
    parser.add_argument("--formats", default="json,csv,xml")
    args = parser.parse_args()
    count = args.count_option or args.count
    with contextlib.ExitStack() as stack:
        uri = args.uri
        if args.ferretdb:
            from testkit.ferretdb import start_ferretdb

            folder = stack.enter_context(tempfile.TemporaryDirectory())
            uri = stack.enter_context(start_ferretdb(Path(folder))).uri
        run(count, uri, args.formats.split(","))


def _walk(rights: Rights, subject: Subject) -> None:
    """The walk alone: its round trips, its time and the memory its ids take."""
    tracemalloc.start()
    started = time.perf_counter()
    found = rights.map(subject)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"map  {found.count:>7,} documents, depth {found.depth}, {found.lookups} lookups "
        f"(chunks of {LOOKUP_CHUNK:,} ids)  {elapsed:6.2f} s  peak {peak / 2**20:6.1f} MiB"
    )


def run(count: int, uri: str | None, formats: list[str]) -> None:
    """Populate, export in each format, drop the database."""
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    db = f"bench_{uuid.uuid4().hex[:8]}"
    if uri is None:
        client_class = functools.partial(mongomock.MongoClient, _store=ServerStore())
        pm.connect(db, mongo_client_class=client_class, uuidRepresentation="standard")
    else:
        pm.connect(db, host=uri, uuidRepresentation="standard")
    classes = models()
    try:
        with access_context(actor="bench", purpose="portability", legal_basis="GDPR Art. 20"):
            started = time.perf_counter()
            patient = populate(count, classes)
            print(
                f"populated {2 * count:,} clinical documents on {uri or 'mongomock'} "
                f"in {time.perf_counter() - started:.1f} s"
            )
            rights = Rights(classes)
            subject = Subject(model="ExportPatient", id=patient.id)
            _walk(rights, subject)
            with tempfile.TemporaryDirectory() as folder:
                for fmt in formats:
                    path = Path(folder) / f"export.{'zip' if fmt == 'csv' else fmt}"
                    tracemalloc.start()
                    started = time.perf_counter()
                    with path.open("wb") as out:
                        counts = rights.export(subject, out, format=fmt)
                    elapsed = time.perf_counter() - started
                    _, peak = tracemalloc.get_traced_memory()
                    tracemalloc.stop()
                    files = [path.name]
                    if fmt == "csv":
                        with zipfile.ZipFile(path) as archive:
                            files = [
                                f"{i.filename} ({i.file_size:,} B)" for i in archive.infolist()
                            ]
                    size, mib = path.stat().st_size, peak / 2**20
                    print(
                        f"{fmt:4} {sum(counts.values()):>7,} documents {counts} "
                        f"{size:>12,} B  {elapsed:6.2f} s  peak {mib:6.1f} MiB"
                    )
                    print(f"     files: {', '.join(files)}")
    finally:
        pm.get_connection().drop_database(db)
        me.disconnect()


if __name__ == "__main__":
    main()
