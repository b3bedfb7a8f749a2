"""The code blocks of the documentation run as tests (sybil), so the docs cannot rot.

Every ```` ```python ```` block of ``README.md`` and ``docs/*.md`` runs, in order, in one
namespace per document; blocks may ``await`` at top level (Beanie is async), run on one event
loop per document so that what ``init_beanie`` set up stays usable by the next block. A page
sets up what its examples assume (a model, a connection) in an invisible block, an HTML
comment that the site does not show::

    <!-- invisible-code-block: python
    from privata_mongo.mongoengine import connect
    -->

Each document starts with no connection and ends with every connection closed.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
from pathlib import Path
from typing import Any

from sybil import Example, Sybil
from sybil.evaluators.python import pad
from sybil.parsers.markdown import CodeBlockParser

__all__ = ["docs_sybil"]

_LOOP = "__docs_event_loop__"


def _evaluate(example: Example) -> None:
    """Run one block; a block that awaits runs on the document's own event loop."""
    __tracebackhide__ = True
    source = pad(example.parsed, example.line + example.parsed.line_offset)
    code = compile(
        source, example.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    result = eval(code, example.namespace)  # noqa: S307 - the project's own documentation
    if inspect.iscoroutine(result):
        example.namespace[_LOOP].run_until_complete(result)
    example.namespace.pop("__builtins__", None)


def _setup(namespace: dict[str, Any]) -> None:
    namespace[_LOOP] = asyncio.new_event_loop()


def _teardown(namespace: dict[str, Any]) -> None:
    import mongoengine

    mongoengine.disconnect_all()
    loop: asyncio.AbstractEventLoop = namespace.pop(_LOOP)
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    namespace.clear()


def docs_sybil() -> Sybil:
    """The sybil collecting the Python blocks of the README and the docs."""
    return Sybil(
        parsers=[CodeBlockParser(language="python", evaluator=_evaluate)],
        path=str(Path(__file__).resolve().parent.parent),
        patterns=["README.md", "docs/*.md"],
        setup=_setup,
        fixtures=["ferretdb_server"],
        teardown=_teardown,
    )
