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


Settings = Annotated[
    str | None,
    typer.Option(
        "--settings",
        help="A module to import first, which configures privata (regions=...).",
        show_default=False,
    ),
]


def _vault(client: Any) -> Any:
    from privata_mongo.config import current

    database, _, name = current().key_vault_namespace.partition(".")
    return client[database][name]


def _configured(settings: str | None) -> None:
    """Import the ``--settings`` module: where an application configures its regions."""
    if settings is None:
        return
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path.cwd()))
    try:
        importlib.import_module(settings)
    except ImportError as error:
        raise typer.BadParameter(
            f"cannot import {settings!r}: {error}", param_hint="--settings"
        ) from None
    finally:
        sys.path.pop(0)


def _vaults(client: Any) -> list[tuple[str | None, Any]]:
    """The base key vault and each configured region's (``docs/residency.md``), by region."""
    from privata_mongo.config import current
    from privata_mongo.runtime.keys import real_client

    found: list[tuple[str | None, Any]] = [(None, _vault(client))]
    for name, region in (current().regions or {}).items():
        database, _, collection = region.key_vault_namespace.partition(".")
        owner = real_client(region.key_vault_client or region.identity_client)
        found.append((name, owner[database][collection]))
    return found


@keys_app.command("status")
def keys_status(
    uri: Uri = None,
    key_vault: KeyVault = None,
    settings: Settings = None,
    json_output: Json = False,
) -> None:
    """What the key vaults hold: keys per subject, shredded subjects, the library's own keys.

    One row per vault: the base one, and each region's when ``--settings`` configures regions.
    """
    from privata_mongo.core.pseudonym import is_pseudonym

    output = Output(json_output)
    target = Target.of(uri, None)
    target.key_vault(key_vault)
    _configured(settings)
    rows: list[dict[str, Any]] = []
    with refusals(output), target.connect() as client:
        for region, vault in _vaults(client):
            names = [
                n for d in vault.find({}, {"keyAltNames": 1}) for n in d.get("keyAltNames", ())
            ]
            shredded = vault.database[f"{vault.name}.tombstones"].count_documents({})
            subjects = sum(1 for n in names if is_pseudonym(n))
            rows.append(
                {
                    "region": region,
                    "vault": vault.full_name,
                    "keys": len(names),
                    "subject_keys": subjects,
                    "library_keys": len(names) - subjects,
                    "shredded_subjects": shredded,
                }
            )
    table = Table(
        "region", "key vault", "keys", "per subject", "library's own", "shredded subjects"
    )
    for row in rows:
        table.add_row(
            row["region"] or "",
            row["vault"],
            str(row["keys"]),
            str(row["subject_keys"]),
            str(row["library_keys"]),
            str(row["shredded_subjects"]),
        )
    document = {**rows[0], "regions": rows[1:]} if len(rows) > 1 else rows[0]
    output.result(document, table)


def _listed(region: str | None, vault: Any) -> list[dict[str, Any]]:
    """Every key of one vault, live, restored or shredded (no key material is read)."""
    from privata_mongo.adapters.key_vault import tombstones_of

    erased = {
        d["_id"]: d.get("shreddedAt")
        for d in tombstones_of(vault).find({}, {"_id": 1, "shreddedAt": 1})
    }
    projection = {"keyAltNames": 1, "creationDate": 1, "masterKey.provider": 1}
    keys = [
        {
            "name": name,
            "region": region,
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
        {
            "name": n,
            "region": region,
            "created": None,
            "provider": None,
            "status": "shredded",
            "shredded_at": at,
        }
        for n, at in erased.items()
        if n not in live
    )
    return keys


@keys_app.command("list")
def keys_list(
    uri: Uri = None,
    key_vault: KeyVault = None,
    status: Annotated[
        str, typer.Option("--status", help="live, shredded, restored or all.")
    ] = "all",
    settings: Settings = None,
    json_output: Json = False,
) -> None:
    """Every data key: name (a pseudonym or the library's own), region, creation, provider, status.

    A key is ``live``, ``shredded`` (only its tombstone is left: the subject was erased) or
    ``restored`` (a tombstone and the key: a backup brought the key back, and
    ``rights replay-erasures`` shreds it again). Key material is never read. With regions
    (configured by the ``--settings`` module), every region's vault is listed too, each key
    with its region (empty: the base vault).
    """
    wanted = ("live", "shredded", "restored")
    if status not in (*wanted, "all"):
        raise typer.BadParameter(f"one of {', '.join(wanted)} or all", param_hint="--status")
    output = Output(json_output)
    target = Target.of(uri, None)
    target.key_vault(key_vault)
    _configured(settings)
    with refusals(output), target.connect() as client:
        vaults = _vaults(client)
        keys = [k for region, vault in vaults for k in _listed(region, vault)]
        names = {region: vault.full_name for region, vault in vaults}
    keys.sort(key=lambda k: (k["created"] or k["shredded_at"] or datetime.datetime.min, k["name"]))
    if status != "all":
        keys = [k for k in keys if k["status"] == status]
    table = Table(
        Column("key", no_wrap=True), "region", "created", "master key", "status", "shredded at"
    )
    for k in keys:
        table.add_row(
            k["name"],
            k["region"] or "",
            k["created"].isoformat(timespec="seconds") if k["created"] else "",
            k["provider"] or "",
            k["status"],
            k["shredded_at"].isoformat(timespec="seconds") if k["shredded_at"] else "",
        )
    document: dict[str, Any] = {"vault": names[None], "keys": keys}
    if len(vaults) > 1:
        document["region_vaults"] = {r: n for r, n in names.items() if r is not None}
    output.result(document, table)


@keys_app.command("rotate")
def keys_rotate(
    new_key_env: Annotated[
        str, typer.Option("--new-key-env", help="Environment variable holding the new master key.")
    ] = "PRIVATA_NEW_MASTER_KEY",
    uri: Uri = None,
    key_vault: KeyVault = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="Rotate this region's master key (its vault's keys)."),
    ] = None,
    settings: Settings = None,
    json_output: Json = False,
) -> None:
    """Re-wrap every data key under a new local master key (documents are not re-encrypted).

    The keys are read from the environment, never from the command line (which other users of
    the machine can see): the current one from PRIVATA_MASTER_KEY (with --region, the
    region's PRIVATA_MASTER_KEY_<REGION>), the new one from --new-key-env. Each region's
    master key is rotated on its own (``docs/residency.md``).
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
    _configured(settings)
    variable = "PRIVATA_MASTER_KEY"
    if region is not None:
        from privata_mongo.config import current
        from privata_mongo.runtime.keys import region_key_env

        chosen = (current().regions or {}).get(region)
        variable = region_key_env(region, chosen) if chosen else variable
    with refusals(output), target.connect() as client:
        count = rotate_master_key(client, new_key, region=region)
    output.result(
        {"rewrapped": count, "region": region},
        f"re-wrapped {count} keys; set {variable} to the new key in every process",
    )
