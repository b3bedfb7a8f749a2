"""The keyed audit chain: links, checkpoints, the stream ledger and their verification.

Records are chained per *stream*: each writer (one per process and audit destination) owns a
stream id and numbers its records ``0, 1, 2 …``; every record carries the MAC of its
predecessor in the stream (``prev``) and its own (``hash``): HMAC-SHA-256, under the *chain
key*, of a canonical encoding of every other field. The chain key is derived from a data key of
the key vault (``core.crypto.chain_key``), so only a holder of the master key can extend a
chain: someone able to write to the audit collection can delete or edit records, but cannot
make one that verifies.

A chain alone cannot tell a stream that was cut short from one that ended there. Two more
documents, kept with the records and sealed by the same key, say where the chains end:

- a **checkpoint** per stream (``checkpoint``), replaced after every append: the position and
  MAC of the newest record stored, so removing the newest records is a ``truncated`` stream;
- the **ledger** (``ledger``), one document naming every stream ever started, changed by
  compare-and-swap when a stream starts, so removing a whole stream (records and checkpoint)
  is a ``deleted`` one, and a stream no writer started is ``unregistered``.

``verify_chain`` checks all of it in one pass over the documents present: its cost is linear
in the records (plus the sort), never in the sequence numbers they claim. The functions here
are pure; the key is handed in, and the stateful part (the next position of a stream) lives in
the driver layer.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from privata_mongo.core.audit.records import AuditRecord

__all__ = [
    "CHECKPOINT_KIND",
    "GENESIS",
    "LEDGER_ID",
    "LEDGER_KIND",
    "ChainProblem",
    "canonical",
    "checkpoint",
    "checkpoint_id",
    "digest",
    "ledger",
    "ledger_streams",
    "link",
    "record_id",
    "verify_chain",
]

GENESIS = "0" * 64
"""The ``prev`` of the first record of every stream."""

CHECKPOINT_KIND = "checkpoint"
"""``kind`` of a stream's checkpoint document (records have no ``kind``)."""

LEDGER_KIND = "ledger"
"""``kind`` of the ledger document."""

LEDGER_ID = "privata:ledger"
"""``_id`` of the ledger document."""


def record_id(stream: str, seq: int) -> str:
    """The ``_id`` of the record at position ``seq`` of ``stream``: the position itself.

    A collection's ``_id`` is unique on every backend at the cost of one look-up, so two
    records can never claim one place without a unique index of their own (which an embedded
    store checks by scanning every record on every insert). The sequence number is written with
    20 digits, so ordering by ``_id`` orders a stream's records by position.
    """
    return f"{stream}:{seq:020d}"


def checkpoint_id(stream: str) -> str:
    """The ``_id`` of the checkpoint document of ``stream``."""
    return f"privata:checkpoint:{stream}"


def _normal(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        # MongoDB stores milliseconds: hash what a round trip through the server returns.
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    return value


def canonical(document: Mapping[str, Any], seal: str = "hash") -> bytes:
    """The bytes a document's MAC covers: every field but ``_id`` and ``seal``, keys sorted."""
    body = {k: v for k, v in document.items() if k not in ("_id", seal)}
    return json.dumps(_normal(body), sort_keys=True, separators=(",", ":")).encode()


def digest(document: Mapping[str, Any], key: bytes, seal: str = "hash") -> str:
    """HMAC-SHA-256 (hex) of ``canonical(document, seal)`` under the chain ``key``.

    Records, checkpoints and the ledger differ in their fields (``kind`` among them), so one
    kind's MAC never verifies as another's.
    """
    return hmac.new(key, canonical(document, seal), hashlib.sha256).hexdigest()


def _sealed(document: Mapping[str, Any], key: bytes, seal: str = "hash") -> bool:
    stored = document.get(seal)
    return isinstance(stored, str) and hmac.compare_digest(digest(document, key, seal), stored)


def link(record: AuditRecord, stream: str, seq: int, prev: str, key: bytes) -> dict[str, Any]:
    """The stored document of ``record`` at position ``seq`` of ``stream`` after ``prev``."""
    document: dict[str, Any] = {
        "_id": record_id(stream, seq),
        "stream": stream,
        "seq": seq,
        "prev": prev,
        **record.body(),
    }
    document["hash"] = digest(document, key)
    return document


def checkpoint(stream: str, seq: int, head: str, key: bytes) -> dict[str, Any]:
    """The checkpoint of ``stream``: its newest stored record is ``seq``, whose MAC is ``head``."""
    document: dict[str, Any] = {
        "_id": checkpoint_id(stream),
        "kind": CHECKPOINT_KIND,
        "stream": stream,
        "seq": seq,
        "head": head,
    }
    document["mac"] = digest(document, key, "mac")
    return document


def ledger(streams: Iterable[str], version: int, key: bytes) -> dict[str, Any]:
    """The ledger naming ``streams``, at ``version`` (one more at every change)."""
    document: dict[str, Any] = {
        "_id": LEDGER_ID,
        "kind": LEDGER_KIND,
        "version": version,
        "streams": sorted(set(streams)),
    }
    document["mac"] = digest(document, key, "mac")
    return document


def ledger_streams(document: Mapping[str, Any], key: bytes) -> list[str] | None:
    """The streams a ledger names, or ``None`` when its MAC does not hold (it was altered)."""
    if not _sealed(document, key, "mac"):
        return None
    streams = document.get("streams")
    if not isinstance(streams, list) or not all(isinstance(s, str) for s in streams):
        return None
    return list(streams)


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """A position where the chain does not hold.

    Attributes:
        stream: the stream id (empty for the ledger).
        seq: the sequence number concerned (the first of a range; ``-1``: none).
        kind: ``modified`` (the record's content does not match its MAC: edited, or written
            without the chain key), ``missing`` (no record at this position, or a range of
            them), ``moved`` (the record does not follow its predecessor), ``duplicate`` (two
            records claim this position), ``truncated`` (the stream ends before its checkpoint
            or an anchor), ``unanchored`` (a stream without a valid checkpoint),
            ``unregistered`` (a stream the ledger does not name, or no valid ledger),
            ``deleted`` (a stream the ledger names has no record), ``erased`` (no record and no
            ledger while a trail was started).
        detail: a sentence for the operator (names and positions only).
    """

    stream: str
    seq: int
    kind: str
    detail: str = field(default="")


@dataclass(slots=True)
class _Stream:
    records: dict[int, list[Mapping[str, Any]]] = field(default_factory=dict)
    checkpoints: list[Mapping[str, Any]] = field(default_factory=list)


def verify_chain(
    documents: Iterable[Mapping[str, Any]],
    key: bytes,
    anchors: Mapping[str, tuple[int, str]] | None = None,
    *,
    started: bool = False,
    checkpointed: bool = True,
) -> list[ChainProblem]:
    """Every problem of the chains, checkpoints and ledger in ``documents``, by stream.

    Linear in the documents present: records are sorted by position and walked once; a run of
    absent positions is one ``missing`` problem, however many it spans.

    Args:
        documents: the records, checkpoints and ledger (any order).
        key: the chain key.
        anchors: ``(seq, hash)`` per stream kept outside the database (``Verification.heads``
            of an earlier run): they detect what the database alone cannot (see docs/audit.md:
            a checkpoint and ledger restored from an earlier copy).
        started: a trail is known to have been started (its chain key exists), so an empty
            trail is ``erased`` rather than new.
        checkpointed: the trail was written to a sink that keeps checkpoints and the ledger
            (``ports.audit.CheckpointStore``; every sink privata ships does). ``False`` checks
            the chains only, for a custom sink without them: a cut end or a deleted stream is
            then not detected.
    """
    streams: dict[str, _Stream] = {}
    ledgers: list[Mapping[str, Any]] = []
    problems: list[ChainProblem] = []
    for document in documents:
        kind = document.get("kind")
        if kind == LEDGER_KIND:
            ledgers.append(document)
            continue
        stream, seq = document.get("stream"), document.get("seq")
        if not isinstance(stream, str) or not isinstance(seq, int) or isinstance(seq, bool):
            problems.append(ChainProblem(str(stream), -1, "modified", "chain fields missing"))
            continue
        entry = streams.setdefault(stream, _Stream())
        if kind == CHECKPOINT_KIND:
            entry.checkpoints.append(document)
        elif seq < 0:
            problems.append(ChainProblem(stream, seq, "modified", "negative sequence number"))
        else:
            entry.records.setdefault(seq, []).append(document)
    for stream in sorted(streams):
        anchor = (anchors or {}).get(stream)
        problems.extend(_verify_stream(stream, streams[stream], key, anchor, checkpointed))
    if checkpointed:
        problems.extend(_verify_ledger(streams, ledgers, key, started=started))
    for stream, (seq, _) in sorted((anchors or {}).items()):
        if stream not in streams or not streams[stream].records:
            problems.append(ChainProblem(stream, seq, "truncated", "the anchored stream is gone"))
    return problems


def _verify_stream(
    stream: str,
    entry: _Stream,
    key: bytes,
    anchor: tuple[int, str] | None,
    checkpointed: bool,
) -> list[ChainProblem]:
    problems: list[ChainProblem] = []
    hashes: dict[int, str] = {}
    expected = 0  # the next position
    prev_hash: str | None = GENESIS  # the MAC the next record must name, None: unknown
    last = -1
    for seq in sorted(entry.records):
        found = entry.records[seq]
        if len(found) > 1:
            problems.append(ChainProblem(stream, seq, "duplicate", f"{len(found)} records"))
        document = found[0]
        if seq > expected:
            span = f"{expected}" if seq == expected + 1 else f"{expected} to {seq - 1}"
            problems.append(ChainProblem(stream, expected, "missing", f"no record at {span}"))
            prev_hash = None
        if not _sealed(document, key):
            problems.append(
                ChainProblem(
                    stream, seq, "modified", "content does not match its MAC (edited or forged)"
                )
            )
            prev_hash = None
        else:
            if prev_hash is not None and document.get("prev") != prev_hash:
                problems.append(
                    ChainProblem(stream, seq, "moved", "does not follow the record before it")
                )
            prev_hash = str(document["hash"])
            hashes[seq] = prev_hash
        expected, last = seq + 1, seq
    if anchor is not None:
        seq, anchored = anchor
        if seq > last:
            problems.append(ChainProblem(stream, seq, "truncated", f"the stream ends at {last}"))
        elif seq in hashes and hashes[seq] != anchored:
            problems.append(
                ChainProblem(stream, seq, "modified", "does not match the saved anchor")
            )
    if checkpointed:
        problems.extend(_verify_checkpoint(stream, entry, key, last, hashes))
    return problems


def _verify_checkpoint(
    stream: str, entry: _Stream, key: bytes, last: int, hashes: Mapping[int, str]
) -> list[ChainProblem]:
    valid = [c for c in entry.checkpoints if _sealed(c, key, "mac")]
    problems = [
        ChainProblem(stream, int(c["seq"]), "modified", "the checkpoint does not match its MAC")
        for c in entry.checkpoints
        if not _sealed(c, key, "mac")
    ]
    if not valid:
        if entry.records:
            problems.append(
                ChainProblem(
                    stream,
                    last,
                    "unanchored",
                    "no valid checkpoint: its newest records may have been removed with it",
                )
            )
        return problems
    newest = max(valid, key=lambda c: int(c["seq"]))
    seq = int(newest["seq"])
    if seq > last:
        ends = f"ends at {last}" if last >= 0 else "has no record"
        problems.append(
            ChainProblem(stream, seq, "truncated", f"the stream {ends}; its checkpoint is {seq}")
        )
    elif seq in hashes and hashes[seq] != newest.get("head"):
        problems.append(ChainProblem(stream, seq, "modified", "does not match its checkpoint"))
    return problems


def _verify_ledger(
    streams: Mapping[str, _Stream],
    ledgers: Sequence[Mapping[str, Any]],
    key: bytes,
    *,
    started: bool,
) -> list[ChainProblem]:
    named: set[str] | None = None
    problems: list[ChainProblem] = []
    for document in ledgers:
        found = ledger_streams(document, key)
        if found is None:
            problems.append(ChainProblem("", -1, "modified", "the ledger does not match its MAC"))
        else:
            named = (named or set()) | set(found)
    if named is None:
        if streams:
            problems.append(
                ChainProblem("", -1, "unregistered", "no valid ledger names the streams")
            )
        elif started and not ledgers:
            problems.append(
                ChainProblem(
                    "",
                    -1,
                    "erased",
                    "no record and no ledger, yet the chain key exists: the trail was deleted",
                )
            )
        return problems
    problems.extend(
        ChainProblem(stream, -1, "unregistered", "no writer started this stream")
        for stream in sorted(set(streams) - named)
    )
    problems.extend(
        ChainProblem(stream, -1, "deleted", "the stream has no record")
        for stream in sorted(named - set(streams))
    )
    return problems
