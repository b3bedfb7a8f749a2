"""Erasure (GDPR Art. 17) and its replay after a backup restore, as flows.

The order of the steps is chosen so that a crash anywhere leaves something a re-run completes,
never an erasure nobody knows about:

1. the subject's data map is walked and its identity rows counted (reads only);
2. the erasure-log entry is written, *pending*, with the plan (the ids of the map, the policy
   of each model, whether a key exists) and who asked: from here on the erasure is known, and
   ``replay`` or a second ``erase`` completes it;
3. each model's policy is applied to its documents of the map (``core.rights.policy``):
   ``delete`` deletes them, the deepest level of the map first, ``pseudonymise`` keeps them
   (their ``_pseudonym`` joins no identity any more once steps 4 and 5 ran). The documents go
   before their identity rows, as every delete does (``flows.write.delete_rows``): no reader
   finds a document of the subject without its identity values while it is being deleted;
4. the subject's data key is shredded (``core.crypto.keys.shred`` semantics: tombstone, then
   key), so every copy of its identity rows anywhere — replicas, backups, exports — is
   unreadable before any identity row is touched;
5. its identity rows are deleted in every split model, with the blind index terms they hold;
6. one ``erase`` audit record per model (the pseudonym, identity field names, counts);
7. the log entry is marked *done* with the receipt, which is returned.

Every step is idempotent (a shredded key, a deleted row is not found again), so completing a
pending entry is running steps 3 to 7 again over the plan it holds, joined with a fresh walk.
The receipt's counts come from the plan, so an interrupted and completed erasure returns the
receipt an uninterrupted one would have. An entry already done is not applied again: the first
receipt is returned and an ``erase`` record with outcome ``repeat`` says the request came
again (an auditor sees every request of the subject, and no second shred or delete is made).

``replay`` re-applies every logged erasure (steps 3 to 5) to the data as it is now: after a
backup is restored, identity rows, blind terms and deleted documents come back, and the key
does if the key vault was restored too. Each subject gets ``erase`` records with outcome
``replay`` and the counts removed again (zero on a second run).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as attribute
from typing import Any

from privata_mongo.core.audit import AccessContext
from privata_mongo.core.ops import Op, ResolveAccess
from privata_mongo.core.rights.access import Subject, locate
from privata_mongo.core.rights.datamap import DataMap, id_key, walk
from privata_mongo.core.rights.policy import DELETE, PSEUDONYMISE
from privata_mongo.core.rights.receipt import ErasureReceipt, ModelErasure
from privata_mongo.core.schema import Side
from privata_mongo.errors import UnknownSubject

__all__ = [
    "DONE",
    "ERASE",
    "OK",
    "PENDING",
    "REPEAT",
    "REPLAY",
    "RESUMED",
    "BeginErasure",
    "CountIdentity",
    "DeleteRows",
    "Erased",
    "ErasureRequest",
    "FinishErasure",
    "HasKey",
    "LoadErasure",
    "LoggedErasures",
    "Now",
    "RecordErasure",
    "ReplayedErasure",
    "ShredKey",
    "erase",
    "replay",
]

ERASE = "erase"
"""The audited operation of an erasure (and of its repeats and replays)."""

OK, RESUMED, REPEAT, REPLAY = "ok", "resumed", "repeat", "replay"
"""Outcomes of ``erase`` records: first run, a pending entry completed, a request for an
erasure already done, a replay after a restore."""

PENDING, DONE = "pending", "done"
"""States of an erasure-log entry."""


@dataclass(frozen=True, slots=True)
class LoadErasure(Op[dict[str, Any] | None]):
    """Request: the erasure-log entry of ``pseudonym``, if any."""

    pseudonym: str


@dataclass(frozen=True, slots=True)
class LoggedErasures(Op[list[str]]):
    """Request: the pseudonyms of every erasure-log entry, oldest first."""


@dataclass(frozen=True, slots=True)
class BeginErasure(Op[dict[str, Any]]):
    """Request: store a pending entry; the result is the stored one (another run's, if first)."""

    entry: Mapping[str, Any] = attribute(repr=False)


@dataclass(frozen=True, slots=True)
class FinishErasure(Op[None]):
    """Request: mark the entry of ``pseudonym`` done with its receipt."""

    pseudonym: str
    receipt: Mapping[str, Any] = attribute(repr=False)


@dataclass(frozen=True, slots=True)
class CountIdentity(Op[int]):
    """Request: the identity rows ``pseudonym`` has in ``model`` (0 or 1)."""

    model: str
    pseudonym: str


@dataclass(frozen=True, slots=True)
class HasKey(Op[bool]):
    """Request: whether the key vault holds a data key for ``pseudonym``."""

    pseudonym: str


@dataclass(frozen=True, slots=True)
class ShredKey(Op[int]):
    """Request: crypto-shred the data key of ``pseudonym`` (tombstone, then key); keys deleted.

    The key rings of the process forget it too (the read caches of the subject's identity),
    and with a cache configured its key entry is held first (``core.cache.hold_erased``), so
    other processes stop using the key within their key recheck interval.
    """

    pseudonym: str


@dataclass(frozen=True, slots=True)
class DeleteRows(Op[int]):
    """Request: delete the rows of one half of ``model`` matching ``filter``; the count."""

    model: str
    side: Side
    filter: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Now(Op[datetime.datetime]):
    """Request: the clock's time (UTC, milliseconds)."""


@dataclass(frozen=True, slots=True)
class Erased:
    """What one ``erase`` record says about one model."""

    model: str
    fields: frozenset[str]
    count: int


@dataclass(frozen=True, slots=True)
class RecordErasure(Op[None]):
    """Statement: append the ``erase`` records of one subject, one per model (fail closed).

    One statement for every model, so the records of one database go in one append.
    """

    pseudonym: str
    models: tuple[Erased, ...]
    outcome: str


ErasureRequest = (
    LoadErasure,
    LoggedErasures,
    BeginErasure,
    FinishErasure,
    CountIdentity,
    HasKey,
    ShredKey,
    DeleteRows,
    Now,
    RecordErasure,
    ResolveAccess,
)
"""The requests of this module's flows, besides ``Lookup`` and ``FindSubject`` (``access``)."""


@dataclass(frozen=True, slots=True)
class ReplayedErasure:
    """What a replay removed again for one logged subject.

    Attributes:
        pseudonym: the subject.
        key_shredded: a data key was found again (the key vault was restored) and shredded.
        models: per model, the identity rows and documents deleted again (``clinical_kept``
            is 0: nothing is kept again).
    """

    pseudonym: str
    key_shredded: bool
    models: tuple[ModelErasure, ...]

    @property
    def removed(self) -> int:
        """Rows deleted again, over every model."""
        return sum(m.identity_deleted + m.clinical_deleted for m in self.models)


def _chunks(ids: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _plan(data_map: DataMap, pseudonym: str, keep: bool) -> Generator[Any, Any, dict[str, Any]]:
    """The pending log entry of ``pseudonym``: the map's ids, identity rows, key and context.

    ``keep``: every model's documents are kept (pseudonymised), whatever its policy.

    Raises:
        UnknownSubject: no document and no identity row belongs to the pseudonym.
    """
    found = yield from walk(data_map, pseudonym)
    identity: dict[str, int] = {}
    for entry in data_map.models:
        if entry.split:
            count = yield from CountIdentity(entry.name, pseudonym)
            if count:
                identity[entry.name] = count
    if not found.documents and not identity:
        raise UnknownSubject("no document belongs to this data subject")
    key = yield from HasKey(pseudonym)
    access: AccessContext = yield from ResolveAccess()
    at = yield from Now()
    models = [
        {
            "model": entry.name,
            "collection": entry.collection,
            "policy": PSEUDONYMISE if keep else entry.erasure,
            "identity": identity.get(entry.name, 0),
            "ids": list(found.documents.get(entry.name, ())),
        }
        for entry in (data_map.model(name) for name in dict.fromkeys([*found.documents, *identity]))
    ]  # in the order the walk found them: level by level, so the deepest are last
    return {
        "_id": pseudonym,
        "state": PENDING,
        "started_at": at,
        "actor": access.actor,
        "purpose": access.purpose,
        "legal_basis": access.legal_basis,
        "key": key,
        "models": models,
    }


def _receipt(entry: Mapping[str, Any]) -> ErasureReceipt:
    """The receipt of a logged erasure, from its plan (the same however often it was resumed)."""
    models = []
    for planned in entry["models"]:
        held = len(planned["ids"])
        deleted = planned["policy"] == DELETE
        models.append(
            ModelErasure(
                model=planned["model"],
                collection=planned["collection"],
                policy=planned["policy"],
                identity_deleted=planned["identity"],
                clinical_deleted=held if deleted else 0,
                clinical_kept=0 if deleted else held,
            )
        )
    return ErasureReceipt(
        pseudonym=entry["_id"],
        erased_at=entry["started_at"],
        actor=entry.get("actor"),
        purpose=entry.get("purpose"),
        legal_basis=entry.get("legal_basis"),
        models=tuple(models),
        key_shredded=bool(entry.get("key")),
    ).sealed()


def _apply(
    data_map: DataMap, entry: Mapping[str, Any], *, walk_again: bool, batch: int
) -> Generator[Any, Any, tuple[int, dict[str, list[int]]]]:
    """Steps 3 to 5 over the entry's plan: ``(keys deleted, model → [identity, clinical])``.

    The documents the policy deletes go first, then the key, then the identity rows: a
    reader that read a clinical row finds the rest of its document until the row is gone,
    and once it is gone no reader starts from it (a read that joined it just before finds
    its identity row or key gone and reads the clinical row again, ``flows.common``). Kept
    (pseudonymised) documents read without identity values from the shred on.

    ``walk_again`` joins the plan with the map as it is now (a resumed erasure, a replay: a
    restored backup may hold documents of the map the plan never saw).
    """
    pseudonym: str = entry["_id"]
    known = {m.name for m in data_map.models}
    removed: dict[str, list[int]] = {m.name: [0, 0] for m in data_map.models if m.split}
    ids: dict[str, dict[Any, Any]] = {}
    policies: dict[str, str] = {}
    for planned in entry["models"]:
        ids[planned["model"]] = {id_key(i): i for i in planned["ids"]}
        policies[planned["model"]] = planned["policy"]
    if walk_again:
        found = yield from walk(data_map, pseudonym)
        for model_name, more in found.documents.items():
            held = ids.setdefault(model_name, {})
            held.update({id_key(i): i for i in more})
    for model_name in reversed(list(ids)):  # the deepest level of the map first
        if model_name not in known:
            continue  # a model this process does not serve: its own Rights applies it
        policy = policies.get(model_name) or data_map.model(model_name).erasure
        if policy != DELETE or not ids[model_name]:
            continue
        for chunk in _chunks(list(ids[model_name].values()), batch):
            count = yield from DeleteRows(model_name, Side.CLINICAL, {"_id": {"$in": list(chunk)}})
            removed.setdefault(model_name, [0, 0])[1] += count
    shredded = yield from ShredKey(pseudonym)
    for model in data_map.models:
        if model.split:
            count = yield from DeleteRows(model.name, Side.IDENTITY, {"_id": pseudonym})
            removed[model.name][0] += count
    return shredded, removed


def _described(data_map: DataMap, model: str) -> dict[str, str]:
    entry = data_map.model(model)
    return {"collection": entry.collection, "policy": entry.erasure}


def _fields(data_map: DataMap, model: str) -> frozenset[str]:
    try:
        return frozenset(data_map.model(model).identity_fields)
    except KeyError:
        return frozenset()


def _complete(
    data_map: DataMap, entry: Mapping[str, Any], outcome: str, batch: int
) -> Generator[Any, Any, tuple[ErasureReceipt, int, dict[str, list[int]]]]:
    """Steps 3 to 7 of a pending entry: the receipt, keys deleted and rows removed."""
    shredded, removed = yield from _apply(data_map, entry, walk_again=outcome != OK, batch=batch)
    receipt = _receipt(entry)
    erased = tuple(
        Erased(
            model.model,
            _fields(data_map, model.model) if model.identity_deleted else frozenset(),
            model.clinical_deleted + model.clinical_kept,
        )
        for model in receipt.models
    )
    yield RecordErasure(receipt.pseudonym, erased, outcome)
    yield FinishErasure(receipt.pseudonym, receipt.document())
    return receipt, shredded, removed


def erase(
    data_map: DataMap, subject: Subject, *, keep: bool = False, batch: int = 1000
) -> Generator[Any, Any, ErasureReceipt]:
    """Erase ``subject`` (Art. 17) in the order of the module docstring; returns the receipt.

    Erasing a subject already erased returns the first receipt (and records the repeat); a
    pending entry (an erasure interrupted part-way) is completed. ``keep`` pseudonymises:
    every model's documents are kept whatever its policy (retention's ``pseudonymise``).

    Raises:
        UnknownSubject: the subject cannot be found, and no erasure of it is logged.
    """
    pseudonym = yield from locate(data_map, subject)
    entry = yield from LoadErasure(pseudonym)
    outcome = RESUMED
    if entry is None:
        entry = yield from BeginErasure((yield from _plan(data_map, pseudonym, keep)))
        outcome = OK if entry.get("state") == PENDING else REPEAT
    if entry.get("state") == DONE:
        receipt = ErasureReceipt.from_document(entry["receipt"])
        repeat = tuple(Erased(model.model, frozenset(), 0) for model in receipt.models)
        yield RecordErasure(pseudonym, repeat, REPEAT)
        return receipt
    receipt, _, _ = yield from _complete(data_map, entry, outcome, batch)
    return receipt


def replay(
    data_map: DataMap,
    *,
    batch: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> Generator[Any, Any, list[ReplayedErasure]]:
    """Re-apply every logged erasure to the data as it is now (after a backup restore).

    Each subject's key is shredded again if the key vault holds it, its identity rows are
    deleted again, and the documents its erasure deleted are deleted again (with any document
    of its map the restored data holds); pending entries are completed. Idempotent: a second
    run removes nothing and says so in its ``replay`` records. ``progress`` is told the
    entries done and the total after each one (a replay of a large log takes a while).
    """
    replayed: list[ReplayedErasure] = []
    logged = yield from LoggedErasures()
    for done, pseudonym in enumerate(logged):
        if progress is not None:
            progress(done, len(logged))
        entry = yield from LoadErasure(pseudonym)
        if entry is None:
            continue
        if entry.get("state") == DONE:
            shredded, removed = yield from _apply(data_map, entry, walk_again=True, batch=batch)
        else:
            _, shredded, removed = yield from _complete(data_map, entry, RESUMED, batch)
        planned = {m["model"]: m for m in entry["models"]}
        models = []
        erased = []
        for name in dict.fromkeys([*planned, *removed]):
            identity, clinical = removed.get(name, [0, 0])
            if name not in planned and not identity + clinical:
                continue  # a split model the subject never had a row in
            where = planned.get(name) or _described(data_map, name)
            models.append(
                ModelErasure(name, where["collection"], where["policy"], identity, clinical)
            )
            fields = _fields(data_map, name) if identity else frozenset()
            erased.append(Erased(name, fields, identity + clinical))
        yield RecordErasure(pseudonym, tuple(erased), REPLAY)
        replayed.append(ReplayedErasure(pseudonym, shredded > 0, tuple(models)))
    if progress is not None:
        progress(len(logged), len(logged))
    return replayed
