"""The facades import without the optional ``mock`` extra; only the embedded backend needs it.

Each test runs a fresh interpreter in which importing mongomock fails (a ``sys.meta_path`` finder
refuses it, as a missing package would), so the modules this process has imported already do
not hide an import made at import time.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

_WITHOUT_MONGOMOCK = textwrap.dedent(
    """
    import sys


    class NoMongomock:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "mongomock":
                raise ImportError(f"No module named {name!r}", name=name)
            return None


    sys.meta_path.insert(0, NoMongomock())
    """
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this interpreter, with code written above
        [sys.executable, "-c", _WITHOUT_MONGOMOCK + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_facades_import_without_mongomock() -> None:
    result = _run(
        """
        import privata_mongo
        import privata_mongo.beanie
        import privata_mongo.mongoengine
        from privata_mongo.beanie import *
        from privata_mongo.mongoengine import *

        print(sorted(name for name in sys.modules if name.partition(".")[0] == "mongomock"))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_embedded_database_names_the_extra_to_install() -> None:
    result = _run(
        """
        from privata_mongo.beanie import embedded_database
        from privata_mongo.errors import ConfigurationError

        for attempt in range(2):  # a failed import leaves nothing half-imported behind
            try:
                embedded_database("app")
            except ConfigurationError as error:
                print(type(error.__cause__).__name__, "|", error)
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0] == lines[1]
    cause, message = lines[0].split(" | ")
    assert cause == "ImportError"
    assert "mongomock" in message
    assert 'pip install "privata-mongo[mock]"' in message
