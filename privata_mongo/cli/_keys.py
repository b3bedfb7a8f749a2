"""``keys …``: the key vault and the master key.

The commands read key names, dates, providers and tombstones; none reads or prints key
material. Master keys come from the environment, never from the command line.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from privata_mongo.cli._app import Json, KeyVault, Uri, keys_app
from privata_mongo.cli._common import EXIT_REFUSED, Output, Target, refusals

__all__: list[str] = []


@keys_app.command("create-master")
def keys_create_master(json_output: Json = False) -> None:
    """Print a new local master key (96 random bytes, base64) for PRIVATA_MASTER_KEY."""
    from privata_mongo.runtime.keys import new_master_key

    key = new_master_key()
    Output(json_output).result({"master_key": key}, key)


def _vault(client: Any) -> Any:
    from privata_mongo.config import current

    database, _, name = current().key_vault_namespace.partition(".")
    return client[database][name]


@keys_app.command("status")
def keys_status(uri: Uri = None, key_vault: KeyVault = None, json_output: Json = False) -> None:
    """What the key vault holds: keys per subject, shredded subjects, the library's own keys."""
    from privata_mongo.core.pseudonym import is_pseudonym

    output = Output(json_output)
    target = Target.of(uri, None)
    target.key_vault(key_vault)
    with refusals(output), target.connect() as client:
        vault = _vault(client)
        names = [n for d in vault.find({}, {"keyAltNames": 1}) for n in d.get("keyAltNames", ())]
        shredded = vault.database[f"{vault.name}.tombstones"].count_documents({})
    subjects = sum(1 for n in names if is_pseudonym(n))
    document = {
        "vault": vault.full_name,
        "keys": len(names),
        "subject_keys": subjects,
        "library_keys": len(names) - subjects,
        "shredded_subjects": shredded,
    }
    table = Table("key vault", "keys", "per subject", "library's own", "shredded subjects")
    table.add_row(
        vault.full_name, str(len(names)), str(subjects), str(len(names) - subjects), str(shredded)
    )
    output.result(document, table)


@keys_app.command("list")
def keys_list(
    uri: Uri = None,
    key_vault: KeyVault = None,
    status: Annotated[
        str, typer.Option("--status", help="live, shredded, restored or all.")
    ] = "all",
    json_output: Json = False,
) -> None:
    """Every data key: name (a pseudonym or the library's own), creation, provider, status.

    A key is ``live``, ``shredded`` (only its tombstone is left: the subject was erased) or
    ``restored`` (a tombstone and the key: a backup brought the key back, and
    ``rights replay-erasures`` shreds it again). Key material is never read.
    """
    from privata_mongo.adapters.key_vault import tombstones_of

    wanted = ("live", "shredded", "restored")
    if status not in (*wanted, "all"):
        raise typer.BadParameter(f"one of {', '.join(wanted)} or all", param_hint="--status")
    output = Output(json_output)
    target = Target.of(uri, None)
    target.key_vault(key_vault)
    with refusals(output), target.connect() as client:
        vault = _vault(client)
        erased = {
            d["_id"]: d.get("shreddedAt")
            for d in tombstones_of(vault).find({}, {"_id": 1, "shreddedAt": 1})
        }
        projection = {"keyAltNames": 1, "creationDate": 1, "masterKey": 1}
        keys = [
            {
                "name": name,
                "created": d.get("creationDate"),
                "provider": (d.get("masterKey") or {}).get("provider"),
                "status": "restored" if name in erased else "live",
                "shredded_at": erased.get(name),
            }
            for d in vault.find({}, projection)
            for name in d.get("keyAltNames") or ["(unnamed)"]
        ]
    live = {k["name"] for k in keys}
    keys.extend(
        {"name": n, "created": None, "provider": None, "status": "shredded", "shredded_at": at}
        for n, at in erased.items()
        if n not in live
    )
    keys.sort(key=lambda k: (k["created"] or k["shredded_at"] or datetime.datetime.min, k["name"]))
    if status != "all":
        keys = [k for k in keys if k["status"] == status]
    table = Table(Column("key", no_wrap=True), "created", "master key", "status", "shredded at")
    for k in keys:
        table.add_row(
            k["name"],
            k["created"].isoformat(timespec="seconds") if k["created"] else "",
            k["provider"] or "",
            k["status"],
            k["shredded_at"].isoformat(timespec="seconds") if k["shredded_at"] else "",
        )
    output.result({"vault": vault.full_name, "keys": keys}, table)


@keys_app.command("rotate")
def keys_rotate(
    new_key_env: Annotated[
        str, typer.Option("--new-key-env", help="Environment variable holding the new master key.")
    ] = "PRIVATA_NEW_MASTER_KEY",
    uri: Uri = None,
    key_vault: KeyVault = None,
    json_output: Json = False,
) -> None:
    """Re-wrap every data key under a new local master key (documents are not re-encrypted).

    The keys are read from the environment, never from the command line (which other users of
    the machine can see): the current one from PRIVATA_MASTER_KEY, the new one from
    --new-key-env.
    """
    import os

    from privata_mongo.encryption import rotate_master_key

    output = Output(json_output)
    new_key = os.environ.get(new_key_env, "").strip()
    if not new_key:
        output.problem(
            f"put the new master key in ${new_key_env} (privata-mongo keys create-master makes one)"
        )
        raise typer.Exit(EXIT_REFUSED)
    target = Target.of(uri, None)
    target.key_vault(key_vault)
    with refusals(output), target.connect() as client:
        count = rotate_master_key(client, new_key)
    output.result(
        {"rewrapped": count},
        f"re-wrapped {count} keys; set PRIVATA_MASTER_KEY to the new key in every process",
    )
