"""Validation errors of split Beanie models, without the identity values they quote.

pydantic's ``ValidationError`` quotes the input (``input_value='ada@@example.org'``, and for a
missing field the whole input mapping), and such errors end up in logs and error trackers.
Every validation of a model goes through its class's ``__pydantic_validator__`` (construction,
``model_validate``, assignment validation, documents read from the database), so for each
class ``init_beanie`` is given, that validator is wrapped: an error is rebuilt with
``ValidationError.from_exception_data`` as the same type, with the same locations, error types
and reasons, and the identity values replaced by ``<redacted>``. Classes the facade does not
split are left alone (their errors pass through untouched).
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from typing import Any

import beanie
from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from privata_mongo.core.redaction import REDACTED, redact_text, value_renderings
from privata_mongo.errors import ConfigurationError

__all__ = ["install", "redacted"]

_KNOWN_TYPES: frozenset[str] = frozenset(typing.get_args(ErrorType))
_VALIDATING = ("validate_python", "validate_json", "validate_strings")


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


def redacted(exc: ValidationError, names: frozenset[str], data: Iterable[Any]) -> ValidationError:
    """``exc`` rebuilt without identity values.

    Args:
        exc: the error pydantic raised.
        names: attribute names and aliases of the identity fields of the validated class.
        data: identity values known to be in the validated input (their renderings are taken
            out of every reason and context too).
    """
    errors = exc.errors(include_url=False)
    values = [*data, *(e["input"] for e in errors if e["loc"] and e["loc"][0] in names)]
    renderings = sorted(
        {r for value in values for r in value_renderings(value)}, key=len, reverse=True
    )
    lines: list[InitErrorDetails] = []
    for error in errors:
        identity = bool(error["loc"]) and error["loc"][0] in names
        line: dict[str, Any] = {
            "loc": error["loc"],
            "input": REDACTED if identity else _without_identity(error["input"], names),
        }
        kind = error["type"]
        ctx = _context(error.get("ctx"), renderings)
        if kind in _KNOWN_TYPES:
            line["type"] = kind
            if ctx is not None:
                line["ctx"] = ctx
        else:
            line["type"] = PydanticCustomError(kind, redact_text(error["msg"], renderings))
        lines.append(typing.cast(InitErrorDetails, line))
    return ValidationError.from_exception_data(exc.title, lines)


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


def install(models: Iterable[Any]) -> None:
    """Wrap the validator of each Beanie document class (idempotent; after init)."""
    for model in models:
        if not (isinstance(model, type) and issubclass(model, beanie.Document)):
            continue
        validator = model.__dict__.get("__pydantic_validator__")
        if validator is None or isinstance(validator, RedactingValidator):
            continue
        model.__pydantic_validator__ = RedactingValidator(validator, model)
