"""Repository-wide pytest configuration: backends are a command-line parameter.

Under CI (``CI=true``) hypothesis runs derandomized, so a run is reproducible and never fails on
an example no developer saw; locally it explores new examples every run.
"""

import os

from hypothesis import settings

from testkit.doctest_blocks import docs_sybil

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")

pytest_plugins = ["testkit.plugin"]

# The Python blocks of README.md and docs/*.md run as tests (testkit/doctest_blocks.py).
pytest_collect_file = docs_sybil().pytest()

# compat_suite/app is an application with its own tests, run by compat_suite/test_whole_app.py
# in a fresh interpreter (as written, and with its imports rewritten), never collected here.
collect_ignore = ["compat_suite/app"]
