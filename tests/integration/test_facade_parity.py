"""``privata_mongo.mongoengine`` is mongoengine: every public name, the very same object.

The only names the facade may replace are the connection functions, and a replacement must be
callable exactly as mongoengine's is (same parameters, kinds and defaults; annotations aside).
The facade is imported inside the tests, so an import failure fails them instead of stopping
the whole collection.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import Any

import mongoengine
import pytest

NATIVE_NAMES = sorted(set(mongoengine.__all__))
MAY_BE_REPLACED = frozenset({"connect", "register_connection", "disconnect", "disconnect_all"})
MUST_BE_REPLACED = frozenset({"connect", "register_connection"})  # where the proxy goes in


@pytest.fixture(scope="module")
def facade() -> ModuleType:
    return importlib.import_module("privata_mongo.mongoengine")


def _call_shape(function: Any) -> inspect.Signature:
    """A signature without annotations: how it is called, not how it is typed."""
    signature = inspect.signature(function)
    return signature.replace(
        parameters=[
            parameter.replace(annotation=inspect.Parameter.empty)
            for parameter in signature.parameters.values()
        ],
        return_annotation=inspect.Signature.empty,
    )


def test_mongoengine_version_is_the_one_the_contract_was_written_for() -> None:
    assert mongoengine.__version__ == "0.29.3", (
        "the parity contract was pinned on mongoengine 0.29.3; review the names it adds or drops"
    )


def test_star_import_exports_every_native_name(facade: ModuleType) -> None:
    exported = set(getattr(facade, "__all__", ()))
    assert sorted(set(NATIVE_NAMES) - exported) == []


@pytest.mark.parametrize("name", NATIVE_NAMES)
def test_every_native_name_is_the_same_object(facade: ModuleType, name: str) -> None:
    native = getattr(mongoengine, name)
    assert hasattr(facade, name), f"privata_mongo.mongoengine has no {name}"
    wrapped = getattr(facade, name)
    if name in MAY_BE_REPLACED and wrapped is not native:
        assert callable(wrapped)
        assert _call_shape(wrapped) == _call_shape(native), (
            f"privata_mongo.mongoengine.{name} is not called like mongoengine.{name}"
        )
    else:
        assert wrapped is native, f"privata_mongo.mongoengine.{name} is not mongoengine's object"


@pytest.mark.parametrize("name", sorted(MUST_BE_REPLACED))
def test_connection_functions_are_the_facades_own(facade: ModuleType, name: str) -> None:
    assert getattr(facade, name) is not getattr(mongoengine, name), (
        f"privata_mongo.mongoengine.{name} is mongoengine's own: the proxy never goes in"
    )
