"""Wire commands per request of the load mix, wrapped and native, on FerretDB.

``python -m stress.load.commands``: each app (in its own interpreter, so the native twin never
shares a process with privata) serves the mix's requests in-process through httpx's ASGI
transport, on a FerretDB of its own, with a ``pymongo.monitoring`` listener registered before
the app opens its client. After a warm-up pass (index creation, the first data keys), one
pass counts the commands each request sends, reads and writes apart: on FerretDB's SQLite
handler the writes serialise on one database lock, which is where the load levels wait.
Results: ``stress/results/load-commands.{json,md}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "stress" / "results"
WRITES = frozenset({"insert", "update", "delete", "findAndModify", "createIndexes"})
KINDS = ("create", "read", "list", "by_email", "update", "update_identity", "visit", "delete")
HEADERS = {
    "X-Actor": "front-desk",
    "X-Purpose": "treatment",
    "X-Legal-Basis": "art9-2h",
    "X-Request-Id": "commands",
}


async def _count(module: str) -> dict[str, dict[str, int]]:
    """Commands per kind of request, for the app of ``module`` (run in this process)."""
    import httpx
    from asgi_lifespan import LifespanManager
    from pymongo import monitoring

    from stress.load.mix import new_patient

    seen: Counter[str] = Counter()

    class Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            seen[event.command_name] += 1

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

        def failed(self, event: monitoring.CommandFailedEvent) -> None: ...

    monitoring.register(Listener())
    app = __import__(module, fromlist=["app"]).app  # unprofiled
    out: dict[str, dict[str, int]] = {}
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:

            async def call(kind: str, method: str, path: str, body: Any = None) -> Any:
                seen.clear()
                response = await client.request(method, path, json=body, headers=HEADERS)
                response.raise_for_status()
                counts = dict(seen)
                out[kind] = {
                    "reads": sum(n for c, n in counts.items() if c not in WRITES),
                    "writes": sum(n for c, n in counts.items() if c in WRITES),
                    **counts,
                }
                return response.json() if response.status_code != 204 else None

            for _ in range(2):  # the second pass is the one kept
                body = new_patient()
                patient = (await call("create", "POST", "/patients", body))["id"]
                await call("read", "GET", f"/patients/{patient}")
                await call("list", "GET", "/patients?limit=20")
                await call("by_email", "GET", f"/patients?email={body['email']}")
                await call("update", "PATCH", f"/patients/{patient}", {"allergies": ["latex"]})
                phone = {"phone": "+44 20 1234 0000"}
                await call("update_identity", "PATCH", f"/patients/{patient}", phone)
                visit = {"at": "2026-12-01T10:00:00Z", "reason": "check-up"}
                await call("visit", "POST", f"/patients/{patient}/visits", visit)
                await call("delete", "DELETE", f"/patients/{patient}")
    return out


def _child(module: str) -> None:
    print(json.dumps(asyncio.run(_count(module))))


def main() -> None:
    from privata_mongo.encryption import MASTER_KEY_ENV, new_master_key
    from stress.load.run import APPS
    from stress.odm.run import commit
    from testkit.ferretdb import start_ferretdb

    result: dict[str, Any] = {"commit": commit(), "targets": {}}
    for target, app in APPS.items():
        with (
            tempfile.TemporaryDirectory(prefix="load-commands-") as state,
            start_ferretdb(Path(state)) as server,
        ):
            env = os.environ | {"MONGODB_URI": server.uri + "clinic"}
            env.setdefault(MASTER_KEY_ENV, new_master_key())
            done = subprocess.run(  # noqa: S603 - this interpreter, our module
                [sys.executable, "-m", "stress.load.commands", "--child", app.split(":")[0]],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            result["targets"][target] = json.loads(done.stdout.strip().splitlines()[-1])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load-commands.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "load-commands.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict[str, Any]) -> str:
    """Reads and writes per request, native → wrapped, and the wrapped commands by name."""
    native, wrapped = result["targets"]["native"], result["targets"]["wrapped"]
    lines = [
        "# Wire commands per request (FerretDB)",
        "",
        f"Commit `{result['commit']['commit'][:12]}`. One request of each kind after a warm-up "
        "pass; writes are insert, update, delete, findAndModify (and createIndexes).",
        "",
        "| request | native reads | native writes | wrapped reads | wrapped writes | wrapped "
        "commands |",
        "|---|---|---|---|---|---|",
    ]
    for kind in KINDS:
        n, w = native.get(kind, {}), wrapped.get(kind, {})
        names = ", ".join(f"{c} {k}" for k, c in sorted(w.items()) if k not in ("reads", "writes"))
        lines.append(
            f"| {kind} | {n.get('reads', '-')} | {n.get('writes', '-')} | {w.get('reads', '-')} "
            f"| {w.get('writes', '-')} | {names} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2])
    else:
        main()
