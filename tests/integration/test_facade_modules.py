"""Every module and attribute of the native ODMs, imported under the facades.

An application switches by rewriting every ``mongoengine``/``beanie`` import to the facade,
mechanically. The test walks the native package trees (``pkgutil.walk_packages``) and imports
each module under its facade name: it must be the native module object itself, except where a
native module binds a name the facade replaces (``connect``, ``register_connection``,
``init_beanie``), and for the packages above such a module: there it is an overlay whose
replaced names are the facade's and whose every other public attribute is the native object.
The list of modules to overlay is derived here from the native trees, independently of the
facade's own table, so a new binder in a later ODM release fails the test.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import textwrap
from types import ModuleType
from typing import Any

import beanie
import beanie.odm.utils
import beanie.odm.utils.init
import mongoengine
import mongoengine.connection
import pytest

from privata_mongo.facade_modules import Overlay

FACADES = {"mongoengine": "privata_mongo.mongoengine", "beanie": "privata_mongo.beanie"}
REPLACED: dict[str, dict[str, tuple[str, str]]] = {
    # name → (the native module defining it, the facade module defining its replacement)
    "mongoengine": {
        "connect": ("mongoengine.connection", "privata_mongo.mongoengine"),
        "register_connection": ("mongoengine.connection", "privata_mongo.mongoengine"),
    },
    "beanie": {
        "init_beanie": ("beanie.odm.utils.init", "privata_mongo.beanie"),
        "MigrationNode": ("beanie.migrations.runner", "privata_mongo.beanie._migrations"),
    },
}


def _replaced(root: str) -> dict[str, tuple[Any, Any]]:
    """Each replaced name: (the native object, the facade's)."""
    return {
        name: (
            getattr(importlib.import_module(native), name),
            getattr(importlib.import_module(facade), name),
        )
        for name, (native, facade) in REPLACED[root].items()
    }


def _native_modules(root: str) -> list[str]:
    package = importlib.import_module(root)
    walked = pkgutil.walk_packages(package.__path__, f"{root}.", onerror=_unimportable)
    return [root, *sorted(info.name for info in walked)]


def _unimportable(name: str) -> None:
    raise AssertionError(f"native package {name} does not import")


MODULES = [(root, name) for root in FACADES for name in _native_modules(root)]


def _facade_name(root: str, native_name: str) -> str:
    return FACADES[root] + native_name[len(root) :]


def _binders(root: str) -> set[str]:
    """The native modules binding a replaced object, and every package above them."""
    replaced = _replaced(root)
    found: set[str] = set()
    for _, name in (m for m in MODULES if m[0] == root):
        namespace = vars(importlib.import_module(name))
        if any(namespace.get(n) is native for n, (native, _) in replaced.items()):
            parts = name.split(".")
            found.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
    return found


BINDERS = {root: _binders(root) for root in FACADES}


def _expected(root: str, native: ModuleType, name: str) -> Any:
    """What ``name`` of ``native`` must be under the facade."""
    value = getattr(native, name)
    replaced = _replaced(root)
    if name in replaced and value is replaced[name][0]:
        return replaced[name][1]
    if isinstance(value, ModuleType) and value.__name__ == f"{native.__name__}.{name}":
        return importlib.import_module(_facade_name(root, value.__name__))
    return value


def _star(module: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(f"from {module} import *", namespace)  # noqa: S102 - a fixed import statement
    namespace.pop("__builtins__", None)
    return namespace


def test_the_walk_covers_both_trees() -> None:
    counts = {root: sum(1 for r, _ in MODULES if r == root) for root in FACADES}
    assert counts["mongoengine"] >= 20, counts
    assert counts["beanie"] >= 80, counts
    assert BINDERS["mongoengine"] == {"mongoengine", "mongoengine.connection"}
    assert "beanie.odm.utils.init" in BINDERS["beanie"]


@pytest.mark.parametrize(("root", "name"), MODULES, ids=[name for _, name in MODULES])
def test_every_native_module_imports_under_the_facade(root: str, name: str) -> None:
    native = importlib.import_module(name)
    wrapped = importlib.import_module(_facade_name(root, name))
    if name == root:
        assert wrapped is not native
    elif name in BINDERS[root]:
        assert isinstance(wrapped, Overlay), f"{wrapped!r} binds a replaced name natively"
    else:
        assert wrapped is native, f"{_facade_name(root, name)} is not {name} itself"
    public = [a for a in dir(native) if not a.startswith("_")]
    for attribute in public:
        assert getattr(wrapped, attribute) is _expected(root, native, attribute), (
            f"{_facade_name(root, name)}.{attribute} is not {name}.{attribute}"
        )


@pytest.mark.parametrize(("root", "name"), MODULES, ids=[name for _, name in MODULES])
def test_a_star_import_brings_the_native_names(root: str, name: str) -> None:
    native = importlib.import_module(name)
    brought = _star(_facade_name(root, name))
    expected = _star(name)
    assert sorted(brought) == sorted(expected)
    for attribute in expected:
        assert brought[attribute] is _expected(root, native, attribute), attribute


@pytest.mark.parametrize("name", ["VERSION", "get_version", "__version__"])
def test_the_version_attributes_are_mongoengines(name: str) -> None:
    from privata_mongo import mongoengine as facade

    assert getattr(facade, name) is getattr(mongoengine, name)


def test_beanie_version_is_beanies() -> None:
    from privata_mongo.beanie import __version__

    assert __version__ == beanie.__version__


def test_the_replacements_are_the_facades_everywhere_they_are_bound() -> None:
    import privata_mongo.beanie.migrations.runner as runner
    import privata_mongo.beanie.odm.utils.init as init
    import privata_mongo.mongoengine.connection as connection

    import privata_mongo.beanie as pb
    import privata_mongo.mongoengine as pm

    assert connection.connect is pm.connect
    assert connection.register_connection is pm.register_connection
    assert pm.connection is connection
    assert init.init_beanie is pb.init_beanie
    assert runner.init_beanie is pb.init_beanie
    assert pb.odm.utils.init is init
    assert pm.connect is not mongoengine.connection.connect


def test_the_native_modules_are_left_unchanged() -> None:
    import privata_mongo.beanie.odm.utils.init
    import privata_mongo.mongoengine.connection  # noqa: F401

    assert mongoengine.connection.connect.__module__ == "mongoengine.connection"
    assert beanie.odm.utils.init.init_beanie is beanie.init_beanie
    assert beanie.odm.utils.init.init_beanie.__module__ == "beanie.odm.utils.init"
    assert not isinstance(beanie.odm.utils.init, Overlay)
    assert beanie.odm.utils.init.__spec__.name == "beanie.odm.utils.init"
    assert sys.modules["beanie.odm.utils.init"] is beanie.odm.utils.init


def test_an_assignment_on_an_overlay_stays_on_the_overlay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import privata_mongo.mongoengine.connection as connection

    monkeypatch.setattr(connection, "DEFAULT_CONNECTION_NAME", "elsewhere")
    assert mongoengine.connection.DEFAULT_CONNECTION_NAME == "default"


def test_a_module_or_name_mongoengine_lacks_is_an_import_error() -> None:
    with pytest.raises(ModuleNotFoundError, match=r"privata_mongo\.mongoengine\.nope"):
        importlib.import_module("privata_mongo.mongoengine.nope")
    with pytest.raises(ImportError, match="nope"):
        exec("from privata_mongo.mongoengine.connection import nope", {})  # noqa: S102 - a fixed import statement
    with pytest.raises(AttributeError, match=r"privata_mongo\.beanie"):
        _ = importlib.import_module("privata_mongo.beanie").nope


def test_a_deep_first_import_executes_no_native_module_twice() -> None:
    """In a fresh interpreter, the facade's deepest names are imported before anything else."""
    code = textwrap.dedent(
        """
        import sys
        from privata_mongo.mongoengine.queryset.visitor import Q
        from privata_mongo.mongoengine.connection import connect
        from privata_mongo.beanie.odm.operators.find.comparison import Eq
        from privata_mongo.beanie.odm.utils.init import init_beanie
        import mongoengine.queryset.visitor, beanie.odm.operators.find.comparison
        import privata_mongo.mongoengine, privata_mongo.beanie
        assert Q is mongoengine.queryset.visitor.Q
        assert Eq is beanie.odm.operators.find.comparison.Eq
        assert connect is privata_mongo.mongoengine.connect
        assert init_beanie is privata_mongo.beanie.init_beanie
        for key, module in sorted(sys.modules.items()):
            for facade, native in (("privata_mongo.mongoengine", "mongoengine"),
                                   ("privata_mongo.beanie", "beanie")):
                if key.startswith(facade + "."):
                    counterpart = native + key[len(facade):]
                    assert module.__name__ in (key, counterpart), (key, module.__name__)
                    if module.__name__ == counterpart:
                        assert sys.modules[counterpart] is module, key
        print("ok")
        """
    )
    result = subprocess.run(  # noqa: S603 - this interpreter, with code written above
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_an_app_that_connects_through_the_connection_module_is_split(backend: Any) -> None:
    """``from mongoengine.connection import connect``, rewritten, still goes through the proxy."""
    from privata_mongo.mongoengine.connection import connect, disconnect
    from privata_mongo.mongoengine.document import Document
    from privata_mongo.mongoengine.fields import StringField

    class ModulePatient(Document):
        first_name = StringField()
        ward = StringField()
        meta = {"collection": "module_patients"}

    connect(db=backend.db_name, alias="default", **backend.mongoengine_settings())
    raw_client = backend.client()
    try:
        ModulePatient(first_name="Ada", ward="B").save()
        raw = raw_client[backend.db_name]
        assert ModulePatient.objects.get(ward="B").first_name == "Ada"
        assert raw["module_patients__identity"].count_documents({}) == 1
        assert "first_name" not in raw["module_patients"].find_one()
    finally:
        disconnect("default")
        raw_client.close()


def test_a_star_import_of_an_overlay_sees_native_submodules_imported_after_it() -> None:
    """A native package gains an attribute per submodule imported; its overlay follows."""
    code = textwrap.dedent(
        """
        import privata_mongo.beanie.migrations as overlay
        import beanie.migrations.template
        names = {}
        exec("from privata_mongo.beanie.migrations import *", names)
        assert names["template"] is beanie.migrations.template, names.get("template")
        """
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
