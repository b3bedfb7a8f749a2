"""Migrate 100,000 plaintext documents on FerretDB, killed half-way and resumed, then leave.

1. Start FerretDB (``testkit.ferretdb``), insert N plaintext documents of a patient model
   (identity: name, email, phone; clinical: ward, blood type, visits, a nested record), and
   keep the SHA-256 of each stored document's raw BSON.
2. ``privata-mongo migrate --into stress_patient__split`` (``--mode into``, the default) or
   ``privata-mongo migrate`` in place (``--mode in-place``) in a subprocess, its progress
   display captured (``COLUMNS=100``); SIGKILL when about half the documents are migrated;
   the state is counted.
3. ``privata-mongo migrate`` again (resumes), then ``migrate verify --sample S``: counts,
   duplicates and sampled joins against the source.
4. ``--mode into``: ``privata-mongo migrate swap`` (the source becomes the backup
   ``stress_patient__plaintext``), the backup compared byte for byte with the source, then
   ``privata-mongo unmigrate --into stress_patient__restored``; ``--mode in-place``:
   ``privata-mongo unmigrate``. Every restored document's raw BSON is compared with the
   source's.

    python stress/migrate_100k.py [--documents 100000] [--batch-size 500] [--sample 1000]

Prints a JSON report on stdout, writes it to ``--out``/``--name``.json and the captured
terminal screen (the last frame of each command's progress display under its command line)
to ``--name``.svg and ``--name``.txt.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
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
INTO = NAME + "__split"
RESTORED = NAME + "__restored"
CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SGR = re.compile(r"\x1b\[[0-9;]*m")


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


def _raw_digests(db: Any, name: str = NAME) -> dict[Any, str]:
    options = db.codec_options.with_options(document_class=RawBSONDocument)
    collection = db.get_collection(name).with_options(codec_options=options)
    return {d["_id"]: hashlib.sha256(d.raw).hexdigest() for d in collection.find({})}


def _frames(path: Path) -> list[str]:
    """The frames of a live progress display captured from a terminal stream, colours kept."""
    text = path.read_text(encoding="utf-8", errors="replace")
    # cursor movements go; colours (SGR) stay for the rendered screen
    text = CSI.sub(lambda m: m.group(0) if SGR.fullmatch(m.group(0)) else "", text)
    return [f.rstrip() for f in re.split(r"[\r\n]", text) if SGR.sub("", f).strip()]


def _screen(path: Path) -> str:
    """The last frame of a live progress display, as plain text."""
    frames = _frames(path)
    return SGR.sub("", frames[-1]) if frames else ""


def _render(session: list[tuple[str, Path | None, str]], out: Path) -> None:
    """The terminal screen of the run: each command line, its last frame, what followed."""
    from rich.console import Console
    from rich.text import Text

    console = Console(record=True, width=110, force_terminal=True, file=io.StringIO())
    for command, screen, after in session:
        console.print(Text("$ ", style="bold green") + Text(command))
        frames = _frames(screen) if screen is not None else []
        if frames:
            console.print(Text.from_ansi(frames[-1]))
        if after:
            console.print(after, markup=False, highlight=False)
    console.save_svg(
        str(out.with_suffix(".svg")), title="privata-mongo migrate --into", clear=False
    )
    console.save_text(str(out.with_suffix(".txt")))


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


def _counts(db: Any, vault: Any, name: str = NAME) -> dict[str, int]:
    """The state of a collection, from one pass over its links (a filtered count scans on
    FerretDB, and its ``distinct`` is quadratic): rows, links, pseudonyms linked twice."""
    keys = [n for d in vault.find({}, {"keyAltNames": 1}) for n in d.get("keyAltNames", ())]
    links = [d.get("_pseudonym") for d in db[name].find({}, {"_pseudonym": 1})]
    linked = [p for p in links if p is not None]
    return {
        "plaintext": len(links) - len(linked),
        "migrated": len(linked),
        "linked_twice": len(linked) - len(set(linked)),
        "identity_rows": db[name + "__identity"].estimated_document_count(),
        "subject_keys": sum(1 for n in keys if is_pseudonym(n)),
        "ledger": db[NAME + "__migration"].estimated_document_count(),
    }


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _run(
    args: list[str], env: dict[str, str], work: Path, screen: Path
) -> tuple[int, float, dict[str, Any]]:
    """Run a command to its end: its exit code, seconds and JSON report."""
    started = time.monotonic()
    process = _cli(args, env, work, screen)
    out, _ = process.communicate()
    seconds = round(time.monotonic() - started, 1)
    try:
        document = json.loads(out)
    except json.JSONDecodeError:
        document = {"stdout": out}
    return process.returncode, seconds, document


def main() -> None:
    """Run the scenario and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--kill-at", type=float, default=0.5)
    parser.add_argument("--mode", choices=("into", "in-place"), default="into")
    parser.add_argument("--out", type=Path, default=Path("stress/results"))
    parser.add_argument("--name", default="migrate_100k")
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    into = options.mode == "into"
    report: dict[str, Any] = {
        "mode": options.mode,
        "documents": options.documents,
        "batch_size": options.batch_size,
        "cpus": os.cpu_count(),
        "load_average_at_start": _load(),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    session: list[tuple[str, Path | None, str]] = []
    screens = options.out  # the raw streams (*.screen) are not kept in the repository
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
        del documents
        report["insert_seconds"] = round(time.monotonic() - started, 1)
        source = _raw_digests(db)
        model = [
            "--models",
            "stress_models:StressPatient",
            "--uri",
            "$URI",
            "--db",
            "stress_migrate",
        ]
        batch = ["--batch-size", str(options.batch_size)]
        target = ["--into", INTO] if into else []
        written = INTO if into else NAME

        def real(args: list[str]) -> list[str]:
            return [server.uri if a == "$URI" else a for a in args]

        def shown(args: list[str]) -> str:
            return " ".join(["privata-mongo", *(a for a in args if a != "--json")])

        migrate_args = ["migrate", *model, *batch, *target]
        started = time.monotonic()
        first = _cli(real(migrate_args), env, work, screens / "migrate_killed.screen")
        goal = int(options.documents * options.kill_at)
        while first.poll() is None:
            # a count from metadata (a filtered count scans on FerretDB); in place, the identity
            # rows are written just before their batch's clinical rows
            probe = written if into else NAME + "__identity"
            if db[probe].estimated_document_count() >= goal:
                os.killpg(first.pid, signal.SIGKILL)
                break
            time.sleep(0.2)
        first.wait()
        report["killed"] = {
            "returncode": first.returncode,
            "after_seconds": round(time.monotonic() - started, 1),
            **_counts(db, vault, written),
        }
        session.append((shown(migrate_args), screens / "migrate_killed.screen", "Killed"))

        code, seconds, done = _run(
            real([*migrate_args, "--json"]), env, work, screens / "migrate.screen"
        )
        report["resumed"] = {
            "returncode": code,
            "seconds": seconds,
            "report": done.get("models", [done])[0],
            **_counts(db, vault, written),
        }
        session.append((shown(migrate_args), screens / "migrate.screen", ""))
        report["migrate_seconds"] = round(report["killed"]["after_seconds"] + seconds, 1)
        report["migrate_rate"] = round(options.documents / report["migrate_seconds"], 1)
        report["duplicates"] = report["resumed"]["linked_twice"]

        verify_args = ["migrate", "verify", *model, *target, "--sample", str(options.sample)]
        code, seconds, checked = _run(
            real([*verify_args, "--json"]), env, work, screens / "verify.screen"
        )
        report["verify"] = {"returncode": code, "seconds": seconds, **checked["models"][0]}
        session.append((shown(verify_args), None, _verify_line(report["verify"])))

        if into:
            swap_args = ["migrate", "swap", *model, *target, "--sample", str(options.sample)]
            code, seconds, swapped = _run(
                real([*swap_args, "--json"]), env, work, screens / "swap.screen"
            )
            report["swap"] = {"returncode": code, "seconds": seconds, **swapped["models"][0]}
            report["after_swap"] = _counts(db, vault, NAME)
            backup = _raw_digests(db, NAME + "__plaintext")
            report["backup_byte_identical"] = backup == source
            session.append(
                (shown(swap_args), None, f"swapped: {NAME} (split), {NAME}__plaintext (backup)")
            )
            leave_args = ["unmigrate", *model, *batch, "--into", RESTORED]
        else:
            leave_args = ["unmigrate", *model, *batch]
        code, seconds, left = _run(
            real([*leave_args, "--json"]), env, work, screens / "unmigrate.screen"
        )
        report["unmigrate"] = {
            "returncode": code,
            "seconds": seconds,
            "report": left["models"][0],
            **_counts(db, vault, NAME),
        }
        session.append((shown(leave_args), screens / "unmigrate.screen", ""))
        after = _raw_digests(db, RESTORED if into else NAME)
        report["byte_identical"] = after == source
        report["byte_compared"] = len(source)
        report["byte_differences"] = sum(1 for k, v in source.items() if after.get(k) != v)
        client.close()
    for name in ("migrate_killed", "migrate", "unmigrate"):
        report[f"screen_{name}"] = _screen(screens / f"{name}.screen")
    report["load_average_at_end"] = _load()
    _render(session, options.out / options.name)
    (options.out / f"{options.name}.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))


def _verify_line(verify: dict[str, Any]) -> str:
    return (
        f"ok={verify.get('ok')} source={verify.get('source')} migrated={verify.get('migrated')} "
        f"identity_rows={verify.get('identity_rows')} duplicates={verify.get('duplicates')} "
        f"missing={verify.get('missing')} sampled={verify.get('sampled')} "
        f"mismatched={verify.get('mismatched')}"
    )


if __name__ == "__main__":
    main()
