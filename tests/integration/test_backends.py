"""The test infrastructure itself: isolated databases per test, real servers that answer."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import mongoengine
import pytest

from compat_suite.requirements import requires
from testkit.backends import Backend
from testkit.ferretdb import FERRETDB_VERSION
from testkit.redis import command
from testkit.services import SCRIPTS_DIR

# backend name -> database names earlier tests of this session used on it
_used_db_names: dict[str, list[str]] = {}


@pytest.mark.parametrize("run", ["first", "second"])
def test_each_test_gets_a_fresh_database_that_is_dropped_after(backend: Backend, run: str) -> None:
    earlier = _used_db_names.setdefault(backend.name, [])
    assert backend.db_name not in earlier

    with backend.client() as client:
        assert client[backend.db_name].list_collection_names() == []
        # What an earlier test wrote is gone: a separate store (mongomock) or dropped (servers).
        assert not set(earlier) & set(client.list_database_names())

        client[backend.db_name]["marker"].insert_one({"run": run})
        assert client[backend.db_name]["marker"].count_documents({}) == 1

    earlier.append(backend.db_name)


def test_raw_client_sees_what_mongoengine_wrote(backend: Backend) -> None:
    alias = f"test_backends_{uuid.uuid4().hex[:8]}"

    class Person(mongoengine.Document):
        name = mongoengine.StringField(required=True)
        age = mongoengine.IntField()
        meta = {"db_alias": alias, "collection": "people"}

    mongoengine.connect(db=backend.db_name, alias=alias, **backend.mongoengine_settings())
    try:
        person = Person(name="Ada", age=36).save()
        with backend.client() as client:
            stored = client[backend.db_name]["people"].find_one({"_id": person.id})
            client[backend.db_name]["people"].insert_one({"name": "Grace", "age": 45})
        assert stored == {"_id": person.id, "name": "Ada", "age": 36}
        assert sorted(p.name for p in Person.objects.order_by("age")) == ["Ada", "Grace"]
    finally:
        mongoengine.disconnect(alias)


@requires("uuid_standard")
def test_uuid_fields_round_trip_in_standard_representation(backend: Backend) -> None:
    alias = f"test_backends_{uuid.uuid4().hex[:8]}"

    class Token(mongoengine.Document):
        ref = mongoengine.UUIDField(binary=True)
        meta = {"db_alias": alias, "collection": "tokens"}

    mongoengine.connect(db=backend.db_name, alias=alias, **backend.mongoengine_settings())
    try:
        ref = uuid.uuid4()
        token = Token(ref=ref).save()
        with backend.client() as client:
            stored = client[backend.db_name]["tokens"].find_one({"_id": token.id})
        assert stored is not None
        assert stored["ref"] == ref
        assert Token.objects(ref=ref).count() == 1
    finally:
        mongoengine.disconnect(alias)


@requires("hello_command")
def test_server_answers_hello_and_build_info(backend: Backend) -> None:
    with backend.client() as client:
        hello = client.admin.command("hello")
        build_info = client.admin.command("buildInfo")
    assert hello["ok"] == 1.0
    assert hello["isWritablePrimary"] is True
    assert build_info["version"].split(".")[0].isdigit()
    if backend.name == "ferretdb":
        assert build_info["ferretdbVersion"] == FERRETDB_VERSION


def test_redis_answers_ping_and_keeps_nothing_on_disk(redis_uri: str) -> None:
    assert redis_uri.startswith("redis://127.0.0.1:")
    assert command(redis_uri, "PING") == b"PONG"
    assert command(redis_uri, "SET", "k", "v") == b"OK"
    assert command(redis_uri, "GET", "k") == b"v"
    assert command(redis_uri, "DEL", "k") == 1
    assert command(redis_uri, "CONFIG", "GET", "save") == [b"save", b""]
    assert command(redis_uri, "CONFIG", "GET", "appendonly") == [b"appendonly", b"no"]


def test_ferretdb_install_without_go_fails_loudly(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    path_without_go = os.pathsep.join(
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not (Path(d) / "go").exists()
    )
    done = subprocess.run(  # noqa: S603 - our own script
        [bash, str(SCRIPTS_DIR / "ferretdb.sh"), "install"],
        env={**os.environ, "PATH": path_without_go, "PRIVATA_TOOLS_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "Go toolchain" in done.stderr
    assert not (tmp_path / "bin" / "ferretdb").exists()
