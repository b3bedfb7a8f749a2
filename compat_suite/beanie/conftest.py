"""The ``compat_beanie`` fixture: the Beanie harness bound to the backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# Before the import below: pytest rewrites the harness's asserts, so a mismatch between the
# native and the wrapped observation is shown as a diff.
pytest.register_assert_rewrite("compat_suite.beanie.harness")

from compat_suite.beanie.harness import BeanieCompat  # noqa: E402
from testkit.backends import Backend  # noqa: E402


@pytest.fixture
def compat_beanie(backend: Backend) -> Iterator[BeanieCompat]:
    """Runs a scenario on native Beanie and on the wrapped one, on ``backend``."""
    compat = BeanieCompat(backend)
    yield compat
    compat.drop_databases()
