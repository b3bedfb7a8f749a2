"""Validation errors of split Beanie models, without the identity values they quote.

pydantic's ``ValidationError`` quotes the input (``input_value='ada@@example.org'``, and for a
missing field the whole input mapping), and such errors end up in logs and error trackers.
Every validation of a model goes through its class's ``__pydantic_validator__`` (construction,
``model_validate``, assignment validation, documents read from the database), so for each
class ``init_beanie`` is given, that validator is wrapped: an error is rebuilt with
``ValidationError.from_exception_data`` as the same type, with the same locations, error types
and reasons, and the identity values replaced by ``<redacted>``. Classes the facade does not
split are left alone (their errors pass through untouched).

A ``Link`` validates the linked document with the linked class's validator, so the linked
model's identity values are redacted wherever the link is validated (construction, a fetched
link), even inside a model that is not split. One path does not go through the class's
validator: a document read with ``lazy_parse=True`` validates each field when it is first read,
with a ``TypeAdapter`` of the field's type (``lazy_model.LazyModel._parse_value``); that method
is wrapped once per process, and redacts the errors of identity fields of the classes wrapped
here.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import beanie
from lazy_model import LazyModel  # type: ignore[import-untyped]  # untyped: no py.typed
from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from privata_mongo.core.redaction import REDACTED, redact_text, value_renderings
from privata_mongo.errors import ConfigurationError

__all__ = ["install", "redacted"]

_KNOWN_TYPES: frozenset[str] = frozenset(typing.get_args(ErrorType))
_VALIDATING = ("validate_python", "validate_json", "validate_strings")
_MARK = "__privata_redacting__"


def identity_names(cls: type[Any]) -> frozenset[str] | None:
    """Attribute names and aliases of ``cls``'s identity fields; ``None`` when not split.

    A model whose privacy declaration is invalid has every field treated as identity data:
    its own error is raised when it is stored, and until then no value may reach a message.
    """
    from privata_mongo.beanie._describe import schema_of_model

    try:
        schema = schema_of_model(cls)
    except ConfigurationError:
        names = set(cls.model_fields) | {i.alias for i in cls.model_fields.values()}
        return frozenset(n for n in names if n)
    if not schema.enabled:
        return None
    return frozenset(n for d in schema.decisions if d.identity for n in (d.attribute, d.field))


def _identity_inputs(data: Any, names: frozenset[str]) -> list[Any]:
    if isinstance(data, Mapping):
        return [v for k, v in data.items() if k in names]
    if isinstance(data, BaseModel):
        return [getattr(data, n) for n in names if n in type(data).model_fields]
    return []


def _without_identity(value: Any, names: frozenset[str]) -> Any:
    if isinstance(value, Mapping):
        return {k: REDACTED if k in names else v for k, v in value.items()}
    return value


def _context(ctx: Mapping[str, Any] | None, renderings: list[str]) -> dict[str, Any] | None:
    if ctx is None:
        return None
    out: dict[str, Any] = {}
    for key, value in ctx.items():
        if isinstance(value, str):
            value = redact_text(value, renderings)
        elif isinstance(value, BaseException):
            text = redact_text(str(value), renderings)
            try:
                value = type(value)(text)
            except Exception:
                value = ValueError(text)
        out[key] = value
    return out


def redacted(
    exc: ValidationError, names: frozenset[str], data: Iterable[Any], *, field: bool = False
) -> ValidationError:
    """``exc`` rebuilt without identity values.

    Args:
        exc: the error pydantic raised.
        names: attribute names and aliases of the identity fields of the validated class.
        data: identity values known to be in the validated input (their renderings are taken
            out of every reason and context too).
        field: ``exc`` is the error of one identity field validated alone (its locations start
            inside the field's value), so every line is about an identity value.
    """
    errors = exc.errors(include_url=False)

    def about_identity(error: Any) -> bool:
        return field or (bool(error["loc"]) and error["loc"][0] in names)

    values = [*data, *(e["input"] for e in errors if about_identity(e))]
    renderings = sorted(
        {r for value in values for r in value_renderings(value)}, key=len, reverse=True
    )
    lines: list[InitErrorDetails] = []
    for error in errors:
        identity = about_identity(error)
        line: dict[str, Any] = {
            "loc": error["loc"],
            "input": REDACTED if identity else _without_identity(error["input"], names),
        }
        kind = error["type"]
        ctx = _context(error.get("ctx"), renderings)
        line["type"] = PydanticCustomError(kind, redact_text(error["msg"], renderings))
        if kind in _KNOWN_TYPES:
            known = {**line, "type": kind, **({"ctx": ctx} if ctx is not None else {})}
            if _buildable(exc.title, known):
                line = known
        lines.append(typing.cast(InitErrorDetails, line))
    return ValidationError.from_exception_data(exc.title, lines)


def _buildable(title: str, line: Mapping[str, Any]) -> bool:
    """Whether pydantic rebuilds ``line`` under its own error type.

    A known type may need context keys the original lacks (a library raising ``value_error``
    through ``PydanticCustomError`` with a ``reason`` and no ``error``, as email-validator's
    ``EmailStr`` does); such a line keeps its type name and message as a custom error.
    """
    try:
        ValidationError.from_exception_data(title, [typing.cast(InitErrorDetails, line)])
    except (TypeError, ValueError):
        return False
    return True


class RedactingValidator:
    """A model's ``SchemaValidator`` whose errors carry no identity value (else the same)."""

    def __init__(self, inner: Any, model: type[Any]) -> None:
        self._inner = inner
        self._model = model

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in _VALIDATING:
            return attribute

        def validate(data: Any, *args: Any, **kwargs: Any) -> Any:
            return self._guarded(attribute, (data, *args), kwargs, data)

        return validate

    def validate_assignment(self, instance: Any, field: str, value: Any, **kwargs: Any) -> Any:
        """Assignment validation (``validate_assignment=True``), redacted like the others."""
        call = self._inner.validate_assignment
        return self._guarded(call, (instance, field, value), kwargs, {field: value})

    def _guarded(self, call: Any, args: tuple[Any, ...], kwargs: dict[str, Any], data: Any) -> Any:
        failure: ValidationError | None = None
        try:
            return call(*args, **kwargs)
        except ValidationError as exc:
            names = identity_names(self._model)
            if names is None:
                raise
            failure = redacted(exc, names, _identity_inputs(data, names))
        # Raised outside the handler: the original error, which quotes the values, must not
        # ride along as the new one's __context__.
        raise failure


def _lazy_field_redacted(model: type[Any], name: str, value: Any, exc: ValidationError) -> Any:
    """The error of a lazily parsed field without identity values (``None``: leave it as is)."""
    if not isinstance(getattr(model, "__pydantic_validator__", None), RedactingValidator):
        return None  # a class the facade did not initialise
    names = identity_names(model)
    info = model.model_fields.get(name)
    if names is None or info is None or not {name, info.alias} & names:
        return None
    return redacted(exc, names, [value], field=True)


def _install_lazy_parsing() -> None:
    """Wrap ``LazyModel._parse_value`` once per process (idempotent)."""
    native = LazyModel._parse_value
    if getattr(native, _MARK, False):
        return

    @functools.wraps(native)
    def _parse_value(self: Any, name: str, value: Any) -> Any:
        failure: ValidationError | None = None
        try:
            return native(self, name, value)
        except ValidationError as exc:
            failure = _lazy_field_redacted(type(self), name, value, exc)
            if failure is None:
                raise
        raise failure  # outside the handler: the original must not ride along as __context__

    setattr(_parse_value, _MARK, True)
    LazyModel._parse_value = _parse_value


def install(models: Iterable[Any]) -> None:
    """Wrap the validator of each Beanie document class (idempotent; after init)."""
    _install_lazy_parsing()
    for model in models:
        if not (isinstance(model, type) and issubclass(model, beanie.Document)):
            continue
        validator = model.__dict__.get("__pydantic_validator__")
        if validator is None or isinstance(validator, RedactingValidator):
            continue
        model.__pydantic_validator__ = RedactingValidator(validator, model)
