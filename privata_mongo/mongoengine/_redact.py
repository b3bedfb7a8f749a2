"""Validation errors of split mongoengine models, without the identity values they quote.

mongoengine formats the offending value into a field's message (``Invalid email address:
ada@@example.org``), and a ``ValidationError`` ends up in logs and error trackers. Every
document validation goes through ``BaseDocument.validate`` (``save`` calls it), so that is
wrapped once: for a document whose model the facade splits (its connection is a privata
client and it has identity fields), the errors of its identity fields get every rendering of
the field's value replaced by ``<redacted>``. The exception is the same object, of the same
type, with the same fields and reasons; the wrapper is inert for every other model, so native
mongoengine in the same process is untouched.

A field's error may also quote another document: mongoengine never renders a referenced
document itself, but an application's validation of a reference does
(``ReferenceField(Person, validation=...)`` raising ``f"{person} is not on duty"``), and the
referenced document may have been dereferenced from the database. So the error of every field,
of any model validated through the facade, split or not, also loses the identity values of the
documents of split models referenced or embedded in that field's value (in lists and dicts,
through embedded documents, at any depth); a reference not yet dereferenced holds only an id.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import mongoengine.connection as connection
from mongoengine.base.document import BaseDocument
from mongoengine.errors import ValidationError

from privata_mongo.core.redaction import redact_text, value_renderings
from privata_mongo.core.schema import Side
from privata_mongo.errors import ConfigurationError
from privata_mongo.proxy.client import ProxyClient

__all__ = ["install"]

_MARK = "__privata_redacting__"


def _through_facade(cls: Any) -> bool:
    """Whether ``cls`` is stored through a privata client (connected, or registered)."""
    alias = cls._meta.get("db_alias") or connection.DEFAULT_CONNECTION_NAME
    if isinstance(connection._connections.get(alias), ProxyClient):
        return True
    made = connection._connection_settings.get(alias, {}).get("mongo_client_class")
    return isinstance(made, type) and issubclass(made, ProxyClient)


def identity_names(document: Any) -> frozenset[str] | None:
    """Attribute names of ``document``'s identity fields; ``None`` when its model is not split.

    A model whose privacy declaration is invalid has every field redacted: its own error is
    raised when it is stored, and until then no value of it may reach a message.
    """
    from privata_mongo.mongoengine._describe import schema_of_model

    cls = type(document)
    if not getattr(cls, "_is_document", False) or not _through_facade(cls):
        return None
    names = set(document._data) | set(cls._fields)
    try:
        schema = schema_of_model(cls)
    except ConfigurationError:
        return frozenset(names)
    if not schema.enabled:
        return None
    db_field = {name: getattr(f, "db_field", name) for name, f in cls._fields.items()}
    return frozenset(n for n in names if schema.side_of(db_field.get(n, n)) is Side.IDENTITY)


def _redacted(error: Any, renderings: list[str]) -> Any:
    """``error`` (a ValidationError, a dict of them, or another exception) with values out."""
    if isinstance(error, dict):
        return {key: _redacted(item, renderings) for key, item in error.items()}
    if isinstance(error, ValidationError):
        error.message = redact_text(str(error._message), renderings)
        error.args = tuple(
            redact_text(a, renderings) if isinstance(a, str) else a for a in error.args
        )
        if error.errors:
            error.errors = _redacted(error.errors, renderings)
        return error
    if isinstance(error, BaseException):
        error.args = tuple(
            redact_text(a, renderings) if isinstance(a, str) else a for a in error.args
        )
    return error


def _linked_identity_values(value: Any, seen: set[int], depth: int = 0) -> Iterator[Any]:
    """The identity values of split documents referenced or embedded in ``value``.

    Only what is in memory is walked (a reference not yet dereferenced is an id, and stays
    one): validation never reads the database.
    """
    if depth > 16 or id(value) in seen:
        return
    if isinstance(value, BaseDocument):
        seen.add(id(value))
        names = identity_names(value) or frozenset()
        for name, item in value._data.items():
            if name in names:
                yield item
            else:
                yield from _linked_identity_values(item, seen, depth + 1)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _linked_identity_values(item, seen, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _linked_identity_values(item, seen, depth + 1)


def _renderings(values: Iterator[Any]) -> list[str]:
    found = {rendering for value in values for rendering in value_renderings(value)}
    return sorted(found, key=len, reverse=True)


def redact(exc: ValidationError, document: Any) -> None:
    """Take identity values out of ``exc`` (in place).

    Those of ``document``'s identity fields, and those of the split documents the value of
    each failing field references or embeds.
    """
    if not isinstance(exc.errors, dict):
        return
    names = identity_names(document) or frozenset()
    for name in list(exc.errors):
        value = document._data.get(name)
        own = [value] if name in names else []
        linked = _linked_identity_values(value, {id(document)})
        renderings = _renderings(iter([*own, *linked]))
        if renderings:
            exc.errors[name] = _redacted(exc.errors[name], renderings)


def install() -> None:
    """Wrap ``BaseDocument.validate`` once per process (idempotent)."""
    native = BaseDocument.validate
    if getattr(native, _MARK, False):
        return

    @functools.wraps(native)
    def validate(self: Any, clean: bool = True) -> None:
        try:
            native(self, clean=clean)
        except ValidationError as exc:
            redact(exc, self)
            raise

    setattr(validate, _MARK, True)
    BaseDocument.validate = validate
