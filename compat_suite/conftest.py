"""Fixtures of the compat suite: the harness bound to the backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mongoengine import signals

# Before the import below: pytest rewrites the harness's asserts, so a mismatch between the
# native and the wrapped observation is shown as a diff.
pytest.register_assert_rewrite("compat_suite.harness")

from compat_suite.harness import MongoengineCompat  # noqa: E402
from testkit.backends import Backend  # noqa: E402

if not signals.signals_available:
    raise pytest.UsageError(
        "the compat suite needs blinker: mongoengine's signals (and CachedReferenceField's "
        "auto-sync) are inert without it; install the test extra or `pip install blinker`"
    )


@pytest.fixture
def compat_mongoengine(backend: Backend) -> Iterator[MongoengineCompat]:
    """Runs a scenario on native mongoengine and on the wrapped one, on ``backend``."""
    compat = MongoengineCompat(backend)
    yield compat
    compat.drop_databases()
