"""Every pymongo option of a split collection's methods is forwarded or refused, never dropped.

The table below gives, for every method planned in ``privata_mongo/proxy/_planner`` and every
keyword of pymongo's own signature, what the wrapper does with it: the method's payload
(``filter``, ``update`` …), options the plan interprets itself (``sort``, ``upsert`` …), or
options it forwards. A forwarded option must be seen on the storage requests of the clinical
half, the application's own collection; options about the whole operation (``session``,
``comment``) also on the identity half's requests where the operation writes or reads it.
What is observed are the calls that reach pymongo's collection methods (a recording
mongomock collection), so the whole path is covered: planner, flow, store.

A keyword pymongo adds to a signature fails the completeness test until the table says what
happens to it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import mongomock
import mongomock.collection
import pymongo.collection
import pytest
from pymongo import DeleteOne, IndexModel, InsertOne, UpdateOne

from privata_mongo.core.classify import Policy, compile_schema
from privata_mongo.core.schema import FieldSpec, ModelSchema, ModelSpec
from privata_mongo.proxy._collection_base import PlannedMethod, SplitCollectionBase
from privata_mongo.proxy.client import ProxyClient

SCHEMA = compile_schema(
    [
        ModelSpec(
            "Probe",
            "probed",
            (
                FieldSpec("_id", "id", primary_key=True),
                FieldSpec("first_name", "first_name"),
                FieldSpec("ward", "ward"),
            ),
        )
    ],
    Policy(),
)
IDENTITY = SCHEMA.identity_collection


class _Session:
    """A stand-in session: recognised by identity, never handed to mongomock."""

    def __repr__(self) -> str:
        return "<probe session>"


PROBES: dict[str, Any] = {
    "session": _Session(),
    "comment": "probe comment",
    "hint": "probe_hint",
    "collation": {"locale": "fr"},
    "let": {"probe": 1},
    "bypass_document_validation": True,
    "array_filters": [{"probe.x": 1}],
    "encrypted_fields": {"fields": []},
    "maxTimeMS": 4321,  # through pymongo's **kwargs
}
RENAMED = {"maxTimeMS": ("maxTimeMS", "max_time_ms")}
"""Options a request may carry under pymongo's other name for them (find's ``max_time_ms``)."""

PAYLOAD = frozenset(
    {
        "filter",
        "update",
        "replacement",
        "document",
        "documents",
        "requests",
        "key",
        "keys",
        "indexes",
        "index_or_name",
    }
)
INTERPRETED = frozenset({"upsert", "sort", "projection", "return_document", "ordered"})
"""Options the plan itself implements (pinned by the compat suite), not forwarded as such."""

SHARED = frozenset({"session", "comment"})
"""Options about the whole operation: the identity half's requests carry them too."""


@dataclass(frozen=True, slots=True)
class Call:
    collection: str
    method: str
    options: frozenset[str]


RECORDED: list[Call] = []
_METHODS = (
    "find",
    "aggregate",
    "insert_many",
    "update_one",
    "update_many",
    "replace_one",
    "delete_one",
    "delete_many",
    "bulk_write",
    "find_one_and_update",
    "find_one_and_replace",
    "find_one_and_delete",
    "count_documents",
    "estimated_document_count",
    "distinct",
    "create_index",
    "drop_index",
    "drop_indexes",
    "index_information",
    "drop",
)


def _probe_names(name: str) -> tuple[str, ...]:
    return tuple(
        k for k, names in {**{k: (k,) for k in PROBES}, **RENAMED}.items() if name in names
    )


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Call]]:
    """mongomock's collection methods record which probe options reach them, then drop them."""

    depth = [0]

    def recorder(method: str) -> Callable[..., Any]:
        native = getattr(mongomock.collection.Collection, method)

        def record(self: Any, *args: Any, **kwargs: Any) -> Any:
            if depth[0]:  # mongomock calling its own methods (delete_many finds first)
                return native(self, *args, **kwargs)
            seen = {
                probe
                for key, value in kwargs.items()
                for probe in _probe_names(key)
                if value is PROBES[probe] or value == PROBES[probe]
            }
            RECORDED.append(Call(self.name, method, frozenset(seen)))
            hidden = {
                key for key in kwargs for probe in seen if key in RENAMED.get(probe, (probe,))
            }
            depth[0] += 1
            try:
                return native(self, *args, **{k: v for k, v in kwargs.items() if k not in hidden})
            finally:
                depth[0] -= 1

        return record

    for method in _METHODS:
        monkeypatch.setattr(mongomock.collection.Collection, method, recorder(method))
    RECORDED.clear()
    yield RECORDED
    RECORDED.clear()


def _resolve(database: str, collection: str) -> ModelSchema | None:
    return SCHEMA if collection == "probed" else None


def _collection() -> Any:
    collection = ProxyClient(mongomock.MongoClient(), _resolve)["db"]["probed"]
    collection.insert_many([{"_id": i, "first_name": f"N{i}", "ward": "A"} for i in range(3)])
    return collection


Action = Callable[[Any, dict[str, Any]], object]

CALLS: dict[str, dict[str, Action]] = {
    "count_documents": {"": lambda c, o: c.count_documents({"ward": "A"}, **o)},
    "estimated_document_count": {"": lambda c, o: c.estimated_document_count(**o)},
    "distinct": {"": lambda c, o: c.distinct("ward", {}, **o)},
    "insert_one": {"": lambda c, o: c.insert_one({"first_name": "Z", "ward": "C"}, **o)},
    "insert_many": {"": lambda c, o: c.insert_many([{"first_name": "Z", "ward": "C"}], **o)},
    "update_one": {
        "clinical": lambda c, o: c.update_one({"ward": "A"}, {"$set": {"ward": "B"}}, **o),
        "identity": lambda c, o: c.update_one(
            {"ward": "A"}, {"$set": {"first_name": "Q", "ward": "B"}}, **o
        ),
        "upsert": lambda c, o: c.update_one(
            {"ward": "new"}, {"$set": {"first_name": "U"}}, upsert=True, **o
        ),
    },
    "update_many": {
        "clinical": lambda c, o: c.update_many({"ward": "A"}, {"$set": {"ward": "B"}}, **o),
        "identity": lambda c, o: c.update_many(
            {"ward": "A"}, {"$set": {"first_name": "Q", "ward": "B"}}, **o
        ),
    },
    "replace_one": {
        "": lambda c, o: c.replace_one({"_id": 0}, {"first_name": "R", "ward": "D"}, **o),
        "upsert": lambda c, o: c.replace_one(
            {"_id": 9}, {"first_name": "R", "ward": "D"}, upsert=True, **o
        ),
    },
    "delete_one": {"": lambda c, o: c.delete_one({"_id": 0}, **o)},
    "delete_many": {"": lambda c, o: c.delete_many({"ward": "A"}, **o)},
    "bulk_write": {
        "": lambda c, o: c.bulk_write(
            [
                InsertOne({"ward": "E", "first_name": "B"}),
                UpdateOne({"_id": 1}, {"$set": {"ward": "F"}}),
                DeleteOne({"_id": 2}),
            ],
            **o,
        )
    },
    "find_one_and_update": {
        "clinical": lambda c, o: c.find_one_and_update({"_id": 0}, {"$set": {"ward": "G"}}, **o),
        "identity": lambda c, o: c.find_one_and_update(
            {"_id": 0}, {"$set": {"first_name": "G", "ward": "G"}}, **o
        ),
    },
    "find_one_and_replace": {
        "": lambda c, o: c.find_one_and_replace({"_id": 0}, {"first_name": "H", "ward": "H"}, **o)
    },
    "find_one_and_delete": {"": lambda c, o: c.find_one_and_delete({"_id": 0}, **o)},
    "create_index": {"": lambda c, o: c.create_index("ward", **o)},
    "create_indexes": {"": lambda c, o: c.create_indexes([IndexModel("ward")], **o)},
    "index_information": {"": lambda c, o: c.index_information(**o)},
    "drop_index": {"": lambda c, o: c.drop_index("ward_1", **o)},
    "drop_indexes": {"": lambda c, o: c.drop_indexes(**o)},
    "drop": {"": lambda c, o: c.drop(**o)},
}
"""How each method is exercised: one call per path the flows take (server-side, in-process)."""

NOT_ON_PATH = {
    ("update_one", "upsert", "array_filters"),
    ("update_one", "identity", "array_filters"),
    ("update_many", "identity", "array_filters"),
    ("find_one_and_update", "identity", "array_filters"),
}
"""Applied in the process on that path (the update is evaluated there, as the server would)."""

PLANNED = sorted(
    name for name, value in vars(SplitCollectionBase).items() if isinstance(value, PlannedMethod)
)


def _keywords(method: str) -> list[str]:
    signature = inspect.signature(getattr(pymongo.collection.Collection, method))
    names = []
    for parameter in signature.parameters.values():
        if parameter.name == "self":
            continue
        names.append("maxTimeMS" if parameter.kind is parameter.VAR_KEYWORD else parameter.name)
    return names


def test_the_table_says_what_happens_to_every_keyword_of_every_method() -> None:
    assert sorted(CALLS) == PLANNED
    for method in PLANNED:
        unknown = [
            k for k in _keywords(method) if k not in PAYLOAD | INTERPRETED and k not in PROBES
        ]
        assert not unknown, f"{method}: no rule for {unknown}"


CASES = [
    pytest.param(method, path, option, id=f"{method}{'/' + path if path else ''}-{option}")
    for method in PLANNED
    for path in CALLS[method]
    for option in _keywords(method)
    if option in PROBES and (method, path, option) not in NOT_ON_PATH
]


@pytest.mark.parametrize(("method", "path", "option"), CASES)
def test_every_option_reaches_the_requests_of_its_half(
    recording: list[Call], method: str, path: str, option: str
) -> None:
    collection = _collection()
    if method == "drop_index":
        collection.create_index("ward")
    recording.clear()
    CALLS[method][path](collection, {option: PROBES[option]})
    clinical = [c for c in recording if c.collection == "probed"]
    assert any(option in c.options for c in clinical), (
        f"{method}: {option} reached no clinical request: {recording}"
    )
    if option in SHARED:
        missing = [c for c in recording if c.collection == IDENTITY and option not in c.options]
        assert not missing, f"{method}: {option} missing on identity requests {missing}"
