"""mkdocs hook: the CLI reference page is generated from the command line itself.

``docs/cli-reference.md`` holds a marker; at build time it is replaced by typer's own Markdown
for every command (``typer privata_mongo.cli utils docs``), so the reference cannot drift from
the options the commands really take.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

MARKER = "<!-- generated: privata-mongo --help -->"


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Replace the marker with the generated reference."""
    if MARKER not in markdown:
        return markdown
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "typer",
            "privata_mongo.cli",
            "utils",
            "docs",
            "--name",
            "privata-mongo",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    body = generated.split("\n", 1)[1]  # typer's own title: the page has one
    return markdown.replace(MARKER, body.replace("# `", "## `"))
