"""A write loop through the library against a FerretDB that is killed, stopped and cut off.

The loop (``run_chaos``) sends N sequential operations through ``privata_mongo.mongoengine``
(or ``privata_mongo.beanie`` on ``AsyncMongoClient``) —
creates, identity + clinical updates, identity-only updates, deletes, reads — and records each
one in a client-side :class:`Ledger`: what the application was told (succeeded, with the count
it was given, or failed with which exception). Meanwhile :class:`Faults` SIGKILLs FerretDB and
restarts it on the same port and SQLite files, SIGSTOPs and SIGCONTs it (sometimes longer than
pymongo's socket timeout), and through toxiproxy adds latency, resets connections, stalls them
and cuts replies mid-stream. A fault fires either a few milliseconds into an operation (a
timer) or right after the server acknowledged a given write of the library's (a pymongo command
listener: after an identity insert, a clinical insert …), the two places where a two-collection
write can be cut.

After the loop the server is made whole, the recovery sweep runs when the library has one
(:func:`_recover`), and :func:`check` reads the stored state with raw pymongo and counts:

- **lost**: an operation the app was told succeeded whose effect is missing;
- **orphans**: identity rows no clinical row links to, clinical rows whose identity row is gone;
- **duplicates**: more rows for a logical key than its one create allows;
- **missing audit records**: an applied change to personal data (seen in the stored rows) with
  no audit record naming its subject's pseudonym for that operation;
- **untyped errors**: exceptions that are neither pymongo's ``PyMongoError`` nor privata's own.

Every document carries its logical ``key`` (clinical) and tags naming the operation that wrote
each field (``first_name`` = ``key:op``, ``email`` = ``key.op@…``, ``ops`` lists the updates
applied to the clinical row), so the checks can tell which operations' effects are stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import random  # noqa: TID251 - a seeded, reproducible fault schedule (no secret)
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mongoengine as me
import pymongo
from pymongo import monitoring
from pymongo.errors import PyMongoError

import privata_mongo
import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from privata_mongo import recovery
from privata_mongo.encryption import unseal_row
from privata_mongo.errors import KeyUnavailable, PrivataError
from testkit.ferretdb import start_ferretdb
from testkit.services import ServiceProcess
from testkit.toxiproxy import Toxiproxy, start_toxiproxy

__all__ = [
    "FACADES",
    "FAULT_KINDS",
    "ChaosResult",
    "Faults",
    "Ledger",
    "Outcome",
    "check",
    "run_chaos",
    "tally",
]

logger = logging.getLogger(__name__)

#: What ``--faults`` selects from.
FAULT_KINDS = ("kill", "stop", "proxy")
#: pymongo's timeouts in the loop: a failed operation gives up within a few seconds.
TIMEOUTS = {"serverSelectionTimeoutMS": 2000, "connectTimeoutMS": 1000, "socketTimeoutMS": 2000}
#: The mix of operations (weights).
MIX = {"create": 25, "update": 25, "update_identity": 15, "delete": 8, "read": 27}
COLLECTION = "chaos_patient"
IDENTITY = f"{COLLECTION}__identity"
AUDIT = "privata_audit"
#: Where a fault fires: a timer into the operation, or after the server acknowledged a write.
TRIGGERS = (
    "timer",
    "after_identity_insert",
    "after_clinical_insert",
    "after_identity_update",
    "after_clinical_update",
    "after_identity_delete",
)


# -- the ledger: what the application was told -------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One operation as the application saw it."""

    index: int
    kind: str
    key: str
    ok: bool
    count: int | None = None  # matched / deleted / found, as returned
    error: str | None = None  # ``module.Type`` of the exception
    typed: bool = True
    read: dict[str, Any] | None = None  # the fields a read returned


@dataclass
class Ledger:
    """Every operation of one run, in order, and the run's id (in each request_id)."""

    run: str
    outcomes: list[Outcome] = field(default_factory=list)

    def request_id(self, index: int) -> str:
        """The access context's request_id of operation ``index`` (so in its audit record)."""
        return f"{self.run}:{index}"

    def by_key(self) -> dict[str, list[Outcome]]:
        """The operations of each logical key, in order."""
        keys: dict[str, list[Outcome]] = defaultdict(list)
        for outcome in self.outcomes:
            keys[outcome.key].append(outcome)
        return keys


def _typed(error: BaseException) -> bool:
    return isinstance(error, PyMongoError | PrivataError)


# -- the server and the faults -------------------------------------------------------------------


class Server:
    """A FerretDB this run owns (it gets killed): same port and data directory on restart."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.process: ServiceProcess = start_ferretdb(state_dir)
        self.port = int(self.process.uri.rsplit(":", 1)[1].strip("/"))
        self.uri = self.process.uri

    def kill(self) -> None:
        """SIGKILL (no shutdown at all), then reap."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.stop()

    def restart(self) -> None:
        """Start again on the same port and SQLite files."""
        self.process = start_ferretdb(self.state_dir, port=self.port)

    def pause(self) -> None:
        """SIGSTOP: the server holds its connections and answers nothing."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        """Continue (a stopped process ignores SIGTERM until then) and stop the server."""
        self.resume()
        self.process.stop()


class Proxy:
    """Toxiproxy between the library's client and the server; ``address`` is what it dials."""

    NAME = "ferretdb"

    def __init__(self, state_dir: Path, upstream_port: int) -> None:
        self.process = start_toxiproxy(state_dir)
        self.api = Toxiproxy(self.process.uri)
        self.address = self.api.create_proxy(self.NAME, f"127.0.0.1:{upstream_port}")

    def poison(self, rng: random.Random) -> tuple[str, str]:
        """Add one random toxic; returns (its name, a label for the report)."""
        choice = rng.choice(("latency", "reset_peer", "timeout", "limit_data"))
        stream = rng.choice(("upstream", "downstream"))
        attributes = {
            "latency": {"latency": rng.randint(50, 400), "jitter": 50},
            "reset_peer": {"timeout": rng.randint(0, 200)},
            "timeout": {"timeout": rng.choice((0, 500, 1500))},
            "limit_data": {"bytes": rng.randint(100, 4000)},
        }[choice]
        name = self.api.add_toxic(self.NAME, choice, attributes, stream=stream)
        return name, f"proxy:{choice}"

    def cure(self, toxic: str) -> None:
        """Remove a toxic."""
        self.api.remove_toxic(self.NAME, toxic)

    def close(self) -> None:
        """Stop toxiproxy."""
        self.process.stop()


class _AfterWrite(monitoring.CommandListener):
    """Fires a callback right after the server acknowledged the next write of a given kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: tuple[str, Callable[[], None]] | None = None
        self._pending: dict[int, Callable[[], None]] = {}

    def arm(self, trigger: str, fire: Callable[[], None]) -> None:
        with self._lock:
            self._armed = (trigger, fire)

    def disarm(self) -> bool:
        """Disarm; whether it was still armed (the write it waited for never came)."""
        with self._lock:
            armed, self._armed = self._armed, None
            return armed is not None

    @staticmethod
    def _kind(event: monitoring.CommandStartedEvent) -> str | None:
        target = event.command.get(event.command_name)
        if event.command_name not in ("insert", "update", "delete") or not isinstance(target, str):
            return None
        side = {IDENTITY: "identity", COLLECTION: "clinical"}.get(target)
        return f"after_{side}_{event.command_name}" if side else None

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        with self._lock:
            if self._armed and self._kind(event) == self._armed[0]:
                self._pending[event.request_id] = self._armed[1]
                self._armed = None

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        with self._lock:
            fire = self._pending.pop(event.request_id, None)
        if fire is not None:
            fire()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        with self._lock:
            self._pending.pop(event.request_id, None)


class Faults:
    """Fires the selected faults on a schedule and undoes each in a background thread.

    One fault at a time: a fault point reached while the previous fault is still being undone
    is skipped (counted in ``skipped``); one whose write never came before the next point is
    dropped (``unfired``). Kills and stops act on ``server``; ``proxy`` faults need a
    :class:`Proxy`.
    """

    def __init__(
        self,
        kinds: tuple[str, ...],
        server: Server,
        proxy: Proxy | None,
        rng: random.Random,
        *,
        stop_seconds: tuple[float, float] = (0.5, 4.0),
        down_seconds: tuple[float, float] = (0.5, 5.0),
        triggers: tuple[str, ...] = TRIGGERS,
    ) -> None:
        self.kinds = kinds
        self.server = server
        self.proxy = proxy
        self.rng = rng
        self.stop_seconds = stop_seconds
        self.down_seconds = down_seconds
        self.triggers = triggers
        self.listener = _AfterWrite()
        self.fired: Counter[str] = Counter()
        self.skipped = 0
        self.unfired = 0
        self._lock = threading.Lock()
        self._state = "idle"  # idle → armed → active (being undone) → idle
        self._timers: list[threading.Timer] = []
        # One long-lived thread undoes the faults: a server started from a short-lived thread
        # would be sent SIGTERM when that thread ends (PR_SET_PDEATHSIG follows the thread).
        self._undo_queue: queue.Queue[tuple[Callable[[], None], float] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._undo_all, daemon=True, name="chaos-undo")
        self._worker.start()
        self._next = 0

    def point(self, kind: str | None = None, trigger: str | None = None) -> None:
        """A fault point: arm the next fault (round-robin over the kinds) to fire soon."""
        with self._lock:
            if self._state == "active":
                self.skipped += 1
                return
            if self._state == "armed":
                self.listener.disarm()
                self.unfired += 1
            self._state = "armed"
        kind = kind or self.kinds[self._next % len(self.kinds)]
        self._next += 1
        trigger = trigger or self.rng.choice(self.triggers)
        if kind == "proxy":
            trigger = "timer"  # the proxy cuts traffic, not a chosen write
        label = f"{kind}@{trigger}"
        if trigger == "timer":
            timer = threading.Timer(self.rng.uniform(0.0, 0.015), self._fire, (kind, label))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
        else:
            self.listener.arm(trigger, lambda: self._fire(kind, label))

    def _fire(self, kind: str, label: str) -> None:
        """Inflict the fault now (in the listener: before pymongo hands the reply on)."""
        with self._lock:
            if self._state != "armed":
                return  # disarmed meanwhile
            self._state = "active"
        undo: Callable[[], None]
        if kind == "kill":
            self.server.kill()
            undo, seconds = self.server.restart, self.rng.uniform(*self.down_seconds)
        elif kind == "stop":
            self.server.pause()
            undo, seconds = self.server.resume, self.rng.uniform(*self.stop_seconds)
        else:
            proxy = self.proxy
            if proxy is None:
                raise ValueError("proxy faults need the toxiproxy between client and server")
            toxic, label = proxy.poison(self.rng)
            undo, seconds = (lambda: proxy.cure(toxic)), self.rng.uniform(0.3, 2.0)
        self.fired[label] += 1
        self._undo_queue.put((undo, seconds))

    def _undo_all(self) -> None:
        while (item := self._undo_queue.get()) is not None:
            undo, seconds = item
            try:
                time.sleep(seconds)
                undo()
            except Exception:
                logger.exception("undoing a fault failed")
            finally:
                with self._lock:
                    self._state = "idle"
                self._undo_queue.task_done()

    def settle(self) -> None:
        """Drop an armed fault and wait until every fault is undone (server up, proxy clean)."""
        with self._lock:
            if self._state == "armed":
                self.listener.disarm()
                self.unfired += 1
                self._state = "idle"
        for timer in self._timers:
            timer.join()
        self._undo_queue.join()
        if not self.server.process.running():
            self.server.restart()  # an undo that failed: the checks need the server

    def close(self) -> None:
        """End the undo thread (after the checks: the server it started must outlive them)."""
        self._undo_queue.put(None)
        self._worker.join()


# -- the loop ------------------------------------------------------------------------------------


class _Session:
    """One facade's connection and model: runs an operation, hands over its database."""

    alias: str

    def operate(self, kind: str, key: str, index: int) -> tuple[int | None, dict[str, Any] | None]:
        """One operation; the count the app was given and, for a read, what it read."""
        raise NotImplementedError

    def database(self) -> Any:
        """The (proxy) database the facade writes through, for the recovery sweep."""
        raise NotImplementedError

    def sweep(self) -> recovery.SweepReport:
        """The recovery sweep over the database the facade writes through."""
        return recovery.sweep(self.database(), older_than=0)

    def close(self) -> None:
        """Disconnect."""


def _tags(key: str, index: int) -> dict[str, Any]:
    return {
        "key": key,
        "first_name": f"{key}:{index}",
        "email": f"{key}.{index}@example.org",
        "diagnosis": "J45",
        "ops": [index],
    }


class _MongoengineSession(_Session):
    """``privata_mongo.mongoengine``: ``connect`` with the listener, a ``Document`` model."""

    def __init__(self, host: str, alias: str, db: str, listener: _AfterWrite) -> None:
        self.alias = alias
        pm.connect(
            db,
            alias=alias,
            host=host,
            uuidRepresentation="standard",
            event_listeners=[listener],
            **TIMEOUTS,
        )

        class ChaosPatient(me.Document):
            key = me.StringField(required=True)
            first_name = me.StringField()  # identity: the name default
            email = me.StringField()  # identity
            diagnosis = me.StringField()
            ops = me.ListField(me.IntField())
            meta = {"db_alias": alias, "collection": COLLECTION}  # noqa: RUF012

        self.model = ChaosPatient

    def operate(self, kind: str, key: str, index: int) -> tuple[int | None, dict[str, Any] | None]:
        """One operation through the QuerySet API."""
        model = self.model
        if kind == "create":
            model(**_tags(key, index)).save()
            return 1, None
        if kind == "update":
            return model.objects(key=key).update_one(
                set__first_name=f"{key}:{index}", push__ops=index
            ), None
        if kind == "update_identity":
            return model.objects(key=key).update_one(set__email=f"{key}.{index}@example.org"), None
        if kind == "delete":
            return model.objects(key=key).delete(), None
        found = model.objects(key=key).first()
        if found is None:
            return 0, None
        return 1, {"first_name": found.first_name, "email": found.email, "ops": list(found.ops)}

    def database(self) -> Any:
        return me.get_db(self.alias)

    def close(self) -> None:
        me.disconnect(self.alias)


class _BeanieSession(_Session):
    """``privata_mongo.beanie`` on ``AsyncMongoClient``: each operation awaited on one loop."""

    def __init__(self, host: str, alias: str, db: str, listener: _AfterWrite) -> None:
        self.alias = alias
        self.loop = asyncio.new_event_loop()
        self.client: Any = pymongo.AsyncMongoClient(
            host, event_listeners=[listener], uuidRepresentation="standard", **TIMEOUTS
        )

        class ChaosTask(pb.Document):
            key: str
            first_name: str | None = None  # identity: the name default
            email: str | None = None  # identity
            diagnosis: str | None = None
            ops: list[int] = []  # noqa: RUF012 - pydantic copies the default

            class Settings:
                name = COLLECTION

        self.model = ChaosTask
        self.db = self.client[db]
        self.loop.run_until_complete(pb.init_beanie(database=self.db, document_models=[ChaosTask]))

    def operate(self, kind: str, key: str, index: int) -> tuple[int | None, dict[str, Any] | None]:
        """One operation, run on the loop in the caller's context (its access context)."""
        result: tuple[int | None, dict[str, Any] | None] = self.loop.run_until_complete(
            self._operate(kind, key, index)
        )
        return result

    async def _operate(
        self, kind: str, key: str, index: int
    ) -> tuple[int | None, dict[str, Any] | None]:
        model = self.model
        if kind == "create":
            await model(**_tags(key, index)).insert()
            return 1, None
        if kind == "update":
            updated = await model.find_one(model.key == key).update(
                {"$set": {"first_name": f"{key}:{index}"}, "$push": {"ops": index}}
            )
            return _matched(updated), None
        if kind == "update_identity":
            updated = await model.find_one(model.key == key).update(
                {"$set": {"email": f"{key}.{index}@example.org"}}
            )
            return _matched(updated), None
        if kind == "delete":
            deleted = await model.find(model.key == key).delete()
            return (deleted.deleted_count if deleted is not None else 0), None
        found = await model.find_one(model.key == key)
        if found is None:
            return 0, None
        return 1, {"first_name": found.first_name, "email": found.email, "ops": list(found.ops)}

    def database(self) -> Any:
        return self.db

    def sweep(self) -> recovery.SweepReport:
        return self.loop.run_until_complete(recovery.sweep_async(self.db, older_than=0))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


def _matched(result: Any) -> int:
    """The documents an update matched, from Beanie's ``UpdateResult`` (or ``None``)."""
    return int(getattr(result, "matched_count", 0) or 0)


FACADES: dict[str, Callable[[str, str, str, _AfterWrite], _Session]] = {
    "mongoengine": _MongoengineSession,
    "beanie": _BeanieSession,
}


@dataclass
class ChaosResult:
    """The ledger of one run, its faults and the checks' counts."""

    ledger: Ledger
    faults: Counter[str]
    skipped_faults: int
    unfired_faults: int
    recovery: str
    counts: dict[str, Any]
    seconds: float

    def fault_counts(self) -> dict[str, int]:
        """Faults fired, by ``kind@trigger`` (proxy faults by toxic)."""
        return dict(sorted(self.faults.items()))


@contextlib.contextmanager
def _environment(state_dir: Path, kinds: tuple[str, ...]) -> Iterator[tuple[Server, Proxy | None]]:
    server = Server(state_dir / "ferretdb")
    proxy: Proxy | None = None
    try:
        if "proxy" in kinds:
            proxy = Proxy(state_dir / "toxiproxy", server.port)
        yield server, proxy
    finally:
        if proxy is not None:
            proxy.close()
        server.close()


def run_chaos(
    state_dir: Path,
    *,
    ops: int = 2000,
    kinds: tuple[str, ...] = ("kill", "stop"),
    fault_every: int = 50,
    seed: int = 1,
    fault_points: dict[int, tuple[str, str]] | None = None,
    stop_seconds: tuple[float, float] = (0.5, 4.0),
    down_seconds: tuple[float, float] = (0.5, 5.0),
    facade: str = "mongoengine",
    mix: dict[str, int] | None = None,
    progress: Callable[[int, Ledger], None] | None = None,
) -> ChaosResult:
    """Run the loop against a FerretDB of its own under ``state_dir`` and check the state.

    ``facade`` is ``mongoengine`` (the sync facade, pymongo's ``MongoClient``) or ``beanie``
    (the async facade on ``AsyncMongoClient``, each operation run to its end on one event loop).
    ``mix`` weighs the kinds of operation (default ``MIX``).

    ``fault_points`` (operation index → (kind, trigger)) replaces the schedule of one fault
    every ``fault_every`` operations, for a test that needs exactly those faults. A stopped
    server stays stopped, and a killed one down, for a random time in ``stop_seconds`` /
    ``down_seconds``: pymongo waits 2 s to select a server and 2 s for a reply, so the longer
    faults fail operations and the shorter ones are waited out.
    """
    unknown = set(kinds) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {FAULT_KINDS}")
    if facade not in FACADES:
        raise ValueError(f"unknown facade {facade!r}; choose from {sorted(FACADES)}")
    rng = random.Random(seed)  # noqa: S311 - a reproducible schedule, not a secret
    weights = MIX if mix is None else mix
    ledger = Ledger(run=uuid.uuid4().hex[:8])
    alias = f"chaos_{ledger.run}"
    db = f"chaos_{ledger.run}"
    with _environment(state_dir, kinds) as (server, proxy), contextlib.ExitStack() as stack:
        faults = Faults(
            kinds, server, proxy, rng, stop_seconds=stop_seconds, down_seconds=down_seconds
        )
        stack.callback(faults.close)
        host = f"mongodb://{proxy.address}/" if proxy else server.uri
        session = FACADES[facade](host, alias, db, faults.listener)
        started = time.perf_counter()
        try:
            live: list[str] = []
            for index in range(ops):
                if fault_points is not None:
                    if index in fault_points:
                        faults.point(*fault_points[index])
                elif index and index % fault_every == 0:
                    faults.point()
                kind = rng.choices(list(weights), weights=list(weights.values()))[0]
                if not live or kind == "create":
                    kind, key = "create", f"k{index}"
                    live.append(key)
                else:
                    key = rng.choice(live)
                    if kind == "delete":
                        live.remove(key)  # one delete per key, whatever its outcome
                ledger.outcomes.append(_attempt(session, ledger, kind, key, index))
                if progress is not None:
                    progress(index, ledger)
            faults.settle()
            seconds = time.perf_counter() - started
            recovery = _recover(session)
        finally:
            session.close()
        counts = check(server.uri, db, ledger)
    return ChaosResult(
        ledger, faults.fired, faults.skipped, faults.unfired, recovery, counts, seconds
    )


def _attempt(session: _Session, ledger: Ledger, kind: str, key: str, index: int) -> Outcome:
    context = privata_mongo.access_context(
        actor="chaos", purpose="reliability-test", request_id=ledger.request_id(index)
    )
    try:
        with context:
            count, read = session.operate(kind, key, index)
    except Exception as error:  # every failure is the ledger's to count, typed or not
        name = f"{type(error).__module__}.{type(error).__qualname__}"
        return Outcome(index, kind, key, ok=False, error=name, typed=_typed(error))
    return Outcome(index, kind, key, ok=True, count=count, read=read)


def _recover(session: _Session) -> str:
    """Run the library's recovery sweep over the session's database; say what it did.

    ``privata_mongo.recovery`` finishes or undoes the writes a crash cut in two.
    ``older_than=0``: the loop has ended, so every pending write is old enough.
    """
    with privata_mongo.access_context(actor="chaos-recovery", purpose="reliability-test"):
        report = session.sweep()
    return f"sweep: {report!r}"


# -- the checks ----------------------------------------------------------------------------------


def _tag(value: Any, key: str, sep: str) -> int | None:
    """The operation index in a ``key:op`` / ``key.op@…`` tag of ``key``, else ``None``."""
    if not isinstance(value, str) or not value.startswith(f"{key}{sep}"):
        return None
    digits = value[len(key) + 1 :].split("@", 1)[0]
    return int(digits) if digits.isdigit() else None


def _before(tag: int | None, last_acknowledged: int) -> bool:
    """Whether a stored tag is older than the last acknowledged write of its field."""
    return tag is None or tag < last_acknowledged


def _key_of(identity: dict[str, Any]) -> str | None:
    name = identity.get("first_name")
    return name.split(":", 1)[0] if isinstance(name, str) and ":" in name else None


def check(uri: str, db: str, ledger: Ledger) -> dict[str, Any]:
    """Read the stored state with raw pymongo and count what went wrong (see the module doc)."""
    with pymongo.MongoClient(uri, **TIMEOUTS) as raw:
        clinical_rows = list(raw[db][COLLECTION].find())
        identity_rows = list(raw[db][IDENTITY].find())
        audit_rows = list(raw[db][AUDIT].find({}, {"request_id": 1, "subjects": 1, "operation": 1}))
        plain: dict[str, dict[str, Any] | None] = {}
        for row in identity_rows:
            plain[row["_id"]] = _unsealed(raw[db], row)
        unreadable = sum(1 for values in plain.values() if values is None)
    return tally(ledger, clinical_rows, identity_rows, plain, audit_rows, unreadable)


def _unsealed(database: Any, row: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return unseal_row(database, row)
    except KeyUnavailable:
        return None  # a key missing from the vault: counted as unreadable


def tally(
    ledger: Ledger,
    clinical_rows: list[dict[str, Any]],
    identity_rows: list[dict[str, Any]],
    plain: dict[str, dict[str, Any] | None],
    audit_rows: list[dict[str, Any]],
    unreadable: int = 0,
) -> dict[str, Any]:
    """The counts of :func:`check` from rows already read (``plain``: decrypted identity rows).

    Kept apart from the reads so that the counting itself is tested on rows built by hand.
    """
    identity_ids = {row["_id"] for row in identity_rows}
    linked = {row.get("_pseudonym") for row in clinical_rows}
    clinical_by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in clinical_rows:
        clinical_by_key[str(row.get("key"))].append(row)
    key_of_link = {row.get("_pseudonym"): str(row.get("key")) for row in clinical_rows}
    identity_by_key: dict[str, list[str]] = defaultdict(list)
    for pseudonym, values in plain.items():
        # An unreadable row (its data key gone) belongs to the key of the clinical row linking
        # to it: its fields are then missing, so acknowledged writes of them count as lost.
        key = _key_of(values) if values is not None else key_of_link.get(pseudonym)
        identity_by_key[str(key)].append(pseudonym)

    # Audit records by request_id; records written outside the loop (a recovery) by subject.
    audited: dict[str, set[str]] = defaultdict(set)
    outside: set[str] = set()
    prefix = f"{ledger.run}:"
    for record in audit_rows:
        request_id = record.get("request_id")
        subjects = set(record.get("subjects") or ())
        if isinstance(request_id, str) and request_id.startswith(prefix):
            audited[request_id] |= subjects
        else:
            outside |= subjects

    lost: Counter[str] = Counter()
    missing_audit: Counter[str] = Counter()
    unverifiable = 0
    failed_applied = 0
    bad_reads = 0
    duplicates = 0
    for key, outcomes in ledger.by_key().items():
        stored = clinical_by_key.get(key, [])
        identities = identity_by_key.get(key, [])
        duplicates += max(0, len(stored) - 1) + max(0, len(identities) - 1)
        ops_applied = {op for row in stored for op in row.get("ops", ())}
        identity = (plain.get(identities[0]) or {}) if identities else {}
        name_tag = _tag(identity.get("first_name"), key, ":")
        email_tag = _tag(identity.get("email"), key, ".")
        create = outcomes[0]
        deletes = [o for o in outcomes if o.kind == "delete"]
        delete = deletes[0] if deletes else None

        # lost: acknowledged effects that are missing
        if delete is not None and delete.ok and delete.count and (stored or identities):
            lost["delete"] += 1
        if create.ok and delete is None and not (stored and identities):
            lost["create"] += 1
        if create.ok and delete is not None and delete.ok and delete.count == 0:
            lost["create"] += 1  # the delete found nothing to delete
        if delete is None:
            for o in outcomes[1:]:
                if o.kind in ("update", "update_identity") and o.ok and o.count == 0 and create.ok:
                    lost[o.kind] += 1  # an update that no longer found an acknowledged document
            acked_updates = [o.index for o in outcomes if o.kind == "update" and o.ok and o.count]
            lost["update"] += len(set(acked_updates) - ops_applied) if stored else 0
            name_setters = [
                o.index
                for o in outcomes
                if (o.kind == "create" or (o.kind == "update" and o.count)) and o.ok
            ]
            email_setters = [
                o.index
                for o in outcomes
                if (o.kind == "create" or (o.kind == "update_identity" and o.count)) and o.ok
            ]
            if identities and name_setters and _before(name_tag, max(name_setters)):
                lost["update"] += 1
            if identities and email_setters and _before(email_tag, max(email_setters)):
                lost["update_identity"] += 1

        # reads: what was returned belongs to this key and to an operation that set it
        attempted_names = {o.index for o in outcomes if o.kind in ("create", "update")}
        attempted_emails = {o.index for o in outcomes if o.kind in ("create", "update_identity")}
        for o in outcomes:
            if o.read is not None and (
                _tag(o.read["first_name"], key, ":") not in attempted_names
                or _tag(o.read["email"], key, ".") not in attempted_emails
            ):
                bad_reads += 1

        # applied changes to personal data, and the audit records naming their subject
        pseudonyms = {row.get("_pseudonym") for row in stored} | set(identities)
        for o in outcomes:
            pseudonyms |= audited.get(ledger.request_id(o.index), set())
        pseudonyms.discard(None)
        applied: list[Outcome] = []
        create_applied = (
            create.ok or bool(stored or identities) or any(o.ok and o.count for o in outcomes[1:])
        )
        if create_applied:
            applied.append(create)
        applied.extend(
            o
            for o in outcomes[1:]
            if (o.kind == "update" and (o.index in ops_applied or o.index == name_tag))
            or (o.kind == "update_identity" and o.index == email_tag)
        )
        # A delete applied when it said so, or when it failed but a document known to exist
        # (acknowledged, or seen by a later operation) has lost a half or both.
        known_whole = create.ok or any(o.ok and o.count for o in outcomes[1:] if o is not delete)
        if delete is not None and (
            (delete.ok and delete.count)
            or (not delete.ok and known_whole and not (stored and identities))
        ):
            applied.append(delete)
        failed_applied += sum(1 for o in applied if not o.ok)
        if not pseudonyms:
            unverifiable += len(applied)
            continue
        for o in applied:
            named = audited.get(ledger.request_id(o.index), set())
            if not (named & pseudonyms) and not (outside & pseudonyms):
                missing_audit[o.kind] += 1

    errors = Counter(o.error for o in ledger.outcomes if o.error)
    untyped = Counter(o.error for o in ledger.outcomes if o.error and not o.typed)
    kinds = Counter(o.kind for o in ledger.outcomes)
    return {
        "attempted": len(ledger.outcomes),
        "succeeded": sum(o.ok for o in ledger.outcomes),
        "failed_typed": sum(1 for o in ledger.outcomes if o.error and o.typed),
        "failed_untyped": sum(untyped.values()),
        "lost": sum(lost.values()),
        "lost_by_kind": {k: v for k, v in lost.items() if v},
        "orphan_identity": len(identity_ids - linked),
        "orphan_clinical": sum(
            1 for row in clinical_rows if row.get("_pseudonym") not in identity_ids
        ),
        "duplicates": duplicates,
        "missing_audit": sum(missing_audit.values()),
        "missing_audit_by_kind": dict(missing_audit),
        "audit_unverifiable": unverifiable,
        "failed_but_applied": failed_applied,
        "bad_reads": bad_reads,
        "leases_left": sum(1 for row in identity_rows if row.get("_lease")),
        "torn_versions": _torn(clinical_rows, identity_rows),
        "unreadable_identity": unreadable,
        "unreadable_documents": sum(
            1 for pseudonym, values in plain.items() if values is None and pseudonym in linked
        ),
        "errors": dict(errors.most_common()),
        "untyped_errors": dict(untyped),
        "operations": dict(kinds),
    }


def _torn(clinical_rows: list[dict[str, Any]], identity_rows: list[dict[str, Any]]) -> int:
    """Documents whose two halves carry different versions (a write cut between them)."""
    versions = {row["_id"]: row.get("_ver") for row in identity_rows}
    return sum(
        1
        for row in clinical_rows
        if row.get("_pseudonym") in versions and versions[row["_pseudonym"]] != row.get("_ver")
    )
