"""The before/after pair (``examples/before_after``): one app, only its imports rewritten.

The app in ``before/`` is plain mongoengine with its own tests on mongomock. This copies it,
runs ``privata-mongo codemod`` (the installed entry point) on the copy, and checks that the
result is ``after/`` byte for byte, that every changed line is an import line, that the app's
own tests pass, unchanged, in a fresh interpreter in both states, and that only the rewritten
app stores its patients split (identity apart, encrypted).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "before_after"
IGNORED = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".privata", "*.xml")
IDENTITY = {"first_name", "last_name", "email", "phone"}  # the ones STORED gives
NATIVE_IMPORT = re.compile(r"(import|from) mongoengine(\s|\.|$)")
FACADE_IMPORT = re.compile(r"(import|from) privata_mongo\.mongoengine(\s|\.|$)")

STORED = """
import functools, json
import mongomock
from mongomock.store import ServerStore
from clinic.models import Patient
from clinic import service
import clinic.models as models

store = ServerStore()
models.mongoengine.connect(
    "clinic",
    mongo_client_class=functools.partial(mongomock.MongoClient, _store=store),
    uuidRepresentation="standard",
)
service.register("Ada", "Lovelace", "ada@example.org", phone="+44 20 0000")
assert service.by_email("ada@example.org").phone == "+44 20 0000"
raw = mongomock.MongoClient(_store=store)["clinic"]
print(json.dumps({
    "fields": sorted(raw["patient"].find_one()),
    "collections": sorted(raw.list_collection_names()),
}))
"""


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def _env(app: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST_") and k not in ("PYTHONPATH", "PRIVATA_KEY_VAULT")
    }
    return env | {"PYTHONPATH": str(app)}


def _own_tests(app: Path) -> dict[str, str]:
    """The app's own tests run in a fresh interpreter: outcome by test name."""
    report = app / "report.xml"
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "pytest",
            "clinic/tests",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
        ],
        cwd=app,
        env=_env(app),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 - our own report
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[case.get("name", "?")] = "failed" if failed else "passed"
    return outcomes


def _stored(app: Path) -> dict[str, list[str]]:
    """What the app stores for one patient, read raw."""
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", STORED],
        cwd=app,
        env=_env(app),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_codemod_turns_before_into_after_and_both_pass_their_own_tests(tmp_path: Path) -> None:
    before = tmp_path / "before"
    after = tmp_path / "after"
    shutil.copytree(EXAMPLE / "before", before, ignore=IGNORED)
    shutil.copytree(EXAMPLE / "before", after, ignore=IGNORED)
    codemod = subprocess.run(  # noqa: S603 - the project's own entry point
        [str(Path(sys.executable).with_name("privata-mongo")), "codemod", str(after), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert codemod.returncode == 0, codemod.stderr
    rewrite = json.loads(codemod.stdout)
    assert (rewrite["files_changed"], rewrite["lines_changed"]) == (4, 6)

    assert _files(after) == _files(EXAMPLE / "after")  # the committed pair is the codemod's
    old_files, new_files = _files(before), _files(after)
    assert old_files.keys() == new_files.keys()
    changed = 0
    for name, old in old_files.items():
        old_lines, new_lines = old.splitlines(), new_files[name].splitlines()
        assert len(old_lines) == len(new_lines), name
        matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            assert tag == "replace", (name, tag)
            for was, now in zip(old_lines[i1:i2], new_lines[j1:j2], strict=True):
                assert NATIVE_IMPORT.match(was), (name, was)
                assert FACADE_IMPORT.match(now), (name, now)
                changed += 1
    assert changed == 6

    native = _own_tests(before)
    wrapped = _own_tests(after)
    assert len(native) >= 12
    assert set(native.values()) == {"passed"}
    assert wrapped == native

    plain = _stored(before)
    split = _stored(after)
    assert set(plain["fields"]) >= IDENTITY
    assert "patient__identity" not in plain["collections"]
    assert IDENTITY.isdisjoint(split["fields"])
    assert "_pseudonym" in split["fields"]
    assert "patient__identity" in split["collections"]
