"""Internal. ``AsyncMockDatabase``: pymongo's ``AsyncDatabase`` API over a mongomock database.

Besides collections it answers the commands drivers and ODMs send when they start (``buildInfo``,
``ping``, ``hello``); everything else fails as an unknown command fails on a server.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from pymongo.errors import OperationFailure
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from privata_mongo.embedded._collection import AsyncMockCollection
from privata_mongo.embedded._forward import DATABASE, derive, no_session, unsupported
from privata_mongo.embedded._options import Child

if TYPE_CHECKING:
    from bson.codec_options import CodecOptions
    from pymongo.read_preferences import _ServerMode

    from privata_mongo.embedded._client import AsyncMockClient

__all__ = ["AsyncMockDatabase", "build_info"]

_NAMESPACE_EXISTS = 48
_COMMAND_NOT_FOUND = 59
_LIST_COLLECTIONS_OPTIONS = frozenset({"authorizedCollections", "nameOnly"})


class AsyncMockDatabase(Child["AsyncMockClient"]):
    """pymongo's ``AsyncDatabase`` API over a ``mongomock.Database``.

    Identity, ``name`` and ``with_options`` come from ``Child``.

    Args:
        parent: the client this database belongs to.
        inner: the ``mongomock.Database``.
    """

    def __getitem__(self, name: str) -> AsyncMockCollection:
        return self.get_collection(name)

    def __getattr__(self, name: str) -> AsyncMockCollection:
        if name.startswith("_"):
            raise AttributeError(
                f"AsyncMockDatabase has no attribute {name!r}. To access the {name} "
                f"collection, use database[{name!r}]."
            )
        return self.get_collection(name)

    @property
    def client(self) -> AsyncMockClient:
        """The client this database belongs to."""
        return self._parent

    @property
    def write_concern(self) -> WriteConcern:
        """The server default: every write is acknowledged in process."""
        return WriteConcern()

    get_collection = derive(DATABASE.get_collection, AsyncMockCollection)

    async def list_collection_names(
        self,
        session: Any = None,
        filter: Mapping[str, Any] | None = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> list[str]:
        """Names of the existing collections (``filter`` on ``name`` only, as mongomock)."""
        no_session(session)
        unknown = sorted(kwargs.keys() - _LIST_COLLECTIONS_OPTIONS)
        if unknown:
            raise OperationFailure(
                f"BSON field 'listCollections.{unknown[0]}' is an unknown field."
            )
        return list(self._inner.list_collection_names(filter=filter))

    async def create_collection(
        self,
        name: str,
        codec_options: CodecOptions[Any] | None = None,
        read_preference: _ServerMode | None = None,
        write_concern: WriteConcern | None = None,
        read_concern: ReadConcern | None = None,
        session: Any = None,
        check_exists: bool | None = True,
        **kwargs: Any,
    ) -> AsyncMockCollection:
        """Create a collection; ``CollectionInvalid`` if it exists (options are refused)."""
        no_session(session)
        if not check_exists and name in self._inner.list_collection_names():
            raise _namespace_exists(self.name, name)
        self._inner.create_collection(name, **kwargs)
        return self.get_collection(
            name, codec_options, read_preference, write_concern, read_concern
        )

    async def drop_collection(
        self,
        name_or_collection: str | AsyncMockCollection,
        session: Any = None,
        comment: Any = None,
        encrypted_fields: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Drop a collection and its indexes (a missing one is not an error)."""
        no_session(session)
        unsupported("encrypted_fields", encrypted_fields)
        if isinstance(name_or_collection, AsyncMockCollection):
            name_or_collection = name_or_collection.name
        if not isinstance(name_or_collection, str):
            raise TypeError("name_or_collection must be an instance of str")
        self._inner.drop_collection(name_or_collection)
        return {"ns": f"{self.name}.{name_or_collection}", "ok": 1.0}

    async def command(
        self,
        command: str | MutableMapping[str, Any],
        value: Any = 1,
        check: bool = True,
        allowable_errors: Sequence[str | int] | None = None,
        read_preference: _ServerMode | None = None,
        codec_options: CodecOptions[Any] | None = None,
        session: Any = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Answer the commands drivers and ODMs send at start-up; others are not found.

        ``buildInfo`` reports mongomock's emulated server version (5.0.5 unless mongomock's
        ``MONGODB`` environment variable says otherwise); ``ping``, ``hello``/``isMaster`` and a
        plain ``create`` are answered; a view (``create`` with ``viewOn``) raises
        ``NotImplementedError``; anything else fails as an unknown command does on a server.
        """
        no_session(session)
        spec = {command: value, **kwargs} if isinstance(command, str) else dict(command)
        name = next(iter(spec), "")
        reply = self._answer(name, spec)
        allowed = set(allowable_errors or ())
        if check and not reply["ok"] and not allowed & {reply["code"], reply["codeName"]}:
            raise OperationFailure(reply["errmsg"], reply["code"], reply)
        return reply

    def _answer(self, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        lowered = name.lower()
        if lowered == "buildinfo":
            return build_info(self._parent.inner)
        if lowered == "ping":
            return {"ok": 1.0}
        if lowered in ("hello", "ismaster"):
            return {
                "isWritablePrimary": True,
                "ismaster": True,
                "maxBsonObjectSize": 16 * 1024 * 1024,
                "maxMessageSizeBytes": 48_000_000,
                "maxWriteBatchSize": 100_000,
                "readOnly": False,
                "ok": 1.0,
            }
        if name == "create":
            return self._create(str(spec[name]), {k: v for k, v in spec.items() if k != name})
        message = f"no such command: '{name}'"
        return {
            "ok": 0.0,
            "errmsg": message,
            "code": _COMMAND_NOT_FOUND,
            "codeName": "CommandNotFound",
        }

    def _create(self, collection: str, options: Mapping[str, Any]) -> dict[str, Any]:
        if "viewOn" in options:
            unsupported("a view (create with viewOn)", True)
        unsupported(f"create options {sorted(options)}", options)
        if collection in self._inner.list_collection_names():
            failure = _namespace_exists(self.name, collection)
            return dict(failure.details or {})
        self._inner.create_collection(collection)
        return {"ok": 1.0}


def build_info(client: Any) -> dict[str, Any]:
    """What ``buildInfo`` answers: the mongomock client's emulated server."""
    info = dict(client.server_info())
    info["ok"] = 1.0
    return info


def _namespace_exists(database: str, collection: str) -> OperationFailure:
    message = f"Collection {database}.{collection} already exists."
    details = {
        "ok": 0.0,
        "errmsg": message,
        "code": _NAMESPACE_EXISTS,
        "codeName": "NamespaceExists",
    }
    return OperationFailure(message, _NAMESPACE_EXISTS, details)
