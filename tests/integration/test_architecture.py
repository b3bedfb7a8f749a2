"""The layering contracts and the public surface, checked as tests."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import privata_mongo

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(  # noqa: S603 - a fixed command on this repository
        [str(lint), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 5 kept, 0 broken" in result.stdout


def test_every_top_level_module_is_in_a_layer() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (layers,) = [
        c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    ]
    layered = {m.strip() for layer in layers for m in layer.split("|")}
    modules = {f"privata_mongo.{m.name}" for m in pkgutil.iter_modules(privata_mongo.__path__)}
    assert modules - layered == set()


def test_public_surface_is_pinned() -> None:
    assert privata_mongo.__all__ == [
        "AccessContext",
        "AsyncRights",
        "AuditUnavailable",
        "ConfigurationError",
        "Explanation",
        "KeyUnavailable",
        "MissingAccessContext",
        "MissingPurpose",
        "PrivataError",
        "ProcessingRestricted",
        "Rights",
        "Settings",
        "SubjectErased",
        "UnknownSubject",
        "UnsupportedQuery",
        "__version__",
        "access_context",
        "cache_stats",
        "configure",
        "data_map",
        "explain",
        "processing_record",
        "processing_record_async",
    ]
    for name in privata_mongo.__all__:
        assert hasattr(privata_mongo, name), name


def test_errors_form_one_hierarchy() -> None:
    from privata_mongo import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.PrivataError)
