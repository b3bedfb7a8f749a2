"""Internal. Every module of a native ODM, importable under its facade's name.

An application switches to privata by rewriting its imports, every one of them, mechanically:
``from mongoengine.queryset.visitor import Q`` becomes ``from privata_mongo.mongoengine
.queryset.visitor import Q``. ``install`` puts one finder on ``sys.meta_path`` that answers
for every module below a facade (``privata_mongo.mongoengine.X`` for ``mongoengine.X``,
``privata_mongo.beanie.X`` for ``beanie.X``), except the facade's own private modules:

- a native module is handed out *as itself*: ``privata_mongo.mongoengine.queryset`` is
  ``mongoengine.queryset``, so classes, registries and ``isinstance`` checks are shared, and no
  native source is ever executed a second time under another name;
- a module that binds a name the facade replaces (``connect`` in ``mongoengine.connection``,
  ``init_beanie`` in ``beanie.odm.utils.init``), and each package above it, is an *overlay*: a
  module of its own whose replaced names are the facade's and whose every other attribute is
  read, live, from the native module. ``from privata_mongo.mongoengine.connection import
  connect`` therefore gives the facade's ``connect``, while ``mongoengine.connection.connect``
  stays mongoengine's: the native modules are never patched, so an application (or a library
  it uses) that imports the ODM natively keeps native behaviour. The packages above an overlay
  are overlays too, because the import system records a submodule as an attribute of its
  parent; a native parent would be patched.

An overlay reads attributes from its native module; assigning one sets it on the overlay only
(as assigning ``mongoengine.connect`` leaves ``mongoengine.connection.connect`` alone).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import pkgutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

__all__ = ["Overlay", "facade_attribute", "install"]


@dataclass(frozen=True, slots=True)
class _Facade:
    """One facade package and the native package it stands for.

    Attributes:
        name: the facade package (``privata_mongo.mongoengine``).
        native: the native package (``mongoengine``).
        own: the facade's own submodules, served from its directory (``_connection`` …).
        replacements: name → the facade's object, wherever a native module binds that name.
        overlaid: the native modules that are overlays (those binding a replaced name, and
            every package above them).
    """

    name: str
    native: str
    own: frozenset[str]
    replacements: Mapping[str, object]
    overlaid: frozenset[str]

    def native_name(self, fullname: str) -> str | None:
        """The native module ``fullname`` stands for (``None``: not one of this facade's)."""
        if not fullname.startswith(f"{self.name}."):
            return None
        tail = fullname[len(self.name) + 1 :]
        if tail.partition(".")[0] in self.own:
            return None
        return f"{self.native}.{tail}"


def facade_attribute(facade: str, native: ModuleType, name: str) -> Any:
    """Attribute ``name`` of ``native`` as seen through the facade module named ``facade``.

    A submodule is the facade's counterpart (an overlay where the facade replaces a name), so
    ``privata_mongo.mongoengine.connection`` is the overlay, not ``mongoengine.connection``;
    anything else is the native object itself.

    Raises:
        AttributeError: ``native`` has no such attribute (named as the facade's).
    """
    try:
        value = getattr(native, name)
    except AttributeError:
        raise AttributeError(f"module {facade!r} has no attribute {name!r}") from None
    if isinstance(value, ModuleType) and value.__name__ == f"{native.__name__}.{name}":
        return importlib.import_module(f"{facade}.{name}")
    return value


class Overlay(ModuleType):
    """A native module as the facade hands it out: the facade's replacements, else native.

    Args:
        name: the module's name under the facade.
        native: the native module.
        replacements: the facade's objects for the names this module replaces.
    """

    __slots__ = ("_native",)

    def __init__(self, name: str, native: ModuleType, replacements: Mapping[str, object]) -> None:
        super().__init__(name, native.__doc__)
        self._native = native
        for attribute, value in replacements.items():
            setattr(self, attribute, value)

    def __getattr__(self, name: str) -> Any:
        if name == "__all__" and not hasattr(self._native, "__all__"):
            # A star import without __all__ reads the module's dict: give it the native names
            # as they are now (a native package gains an attribute per submodule imported).
            return [n for n in vars(self._native) if not n.startswith("_")]
        return facade_attribute(self.__name__, self._native, name)

    def __dir__(self) -> Iterable[str]:
        return sorted(set(dir(self._native)) | set(vars(self)))

    def __repr__(self) -> str:
        return f"<overlay {self.__name__!r} of {self._native!r}>"


class _Loader(importlib.abc.Loader):
    """Serves one facade module: the native module itself, or an overlay of it."""

    def __init__(self, facade: _Facade, native_name: str) -> None:
        self._facade = facade
        self._native_name = native_name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        if self._native_name not in self._facade.overlaid:
            return None  # a placeholder, replaced by the native module in exec_module
        native = importlib.import_module(self._native_name)
        replaced = {
            name: value for name, value in self._facade.replacements.items() if name in vars(native)
        }
        overlay = Overlay(spec.name, native, replaced)
        overlay.__file__ = getattr(native, "__file__", None)
        if hasattr(native, "__path__"):
            overlay.__path__ = list(native.__path__)
        return overlay

    def exec_module(self, module: ModuleType) -> None:
        if isinstance(module, Overlay):
            return
        # The import system returns what sys.modules holds after exec_module: the native
        # module, whose own attributes (__spec__, __name__ …) are left as they are.
        sys.modules[module.__name__] = importlib.import_module(self._native_name)


class _Finder(importlib.abc.MetaPathFinder):
    """The one finder for every facade: first on ``sys.meta_path``.

    It must come before the path finder: a native package's ``__path__`` would otherwise let
    the path finder execute a native submodule's source again under the facade's name.
    """

    def __init__(self) -> None:
        self.facades: dict[str, _Facade] = {}

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        for facade in self.facades.values():
            native_name = facade.native_name(fullname)
            if native_name is None:
                continue
            native_spec = importlib.util.find_spec(native_name)
            if native_spec is None:
                return None
            is_package = native_spec.submodule_search_locations is not None
            return importlib.machinery.ModuleSpec(
                fullname,
                _Loader(facade, native_name),
                origin=native_spec.origin,
                is_package=is_package,
            )
        return None


_FINDER = _Finder()


def install(
    facade: str,
    native: str,
    replacements: Mapping[str, object],
    binders: Iterable[str],
) -> None:
    """Serve every module of ``native`` under the facade package ``facade`` (idempotent).

    Args:
        facade: the facade package, already in ``sys.modules`` (its ``__init__`` calls this).
        native: the native package.
        replacements: the facade's objects by name (``{"connect": connect}``).
        binders: the native modules that bind a replaced name (``mongoengine.connection``);
            they and the packages above them become overlays. The facades' parity test walks
            the native trees and fails on a binder missing here.
    """
    overlaid = {
        ".".join(parts[:end])
        for parts in (binder.split(".") for binder in binders)
        for end in range(2, len(parts) + 1)
    }
    own = frozenset(m.name for m in pkgutil.iter_modules(sys.modules[facade].__path__))
    _FINDER.facades[facade] = _Facade(facade, native, own, dict(replacements), frozenset(overlaid))
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
