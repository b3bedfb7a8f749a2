"""cProfile of a whole server worker, switched on by ``LOAD_PROFILE_DIR`` (off by default).

Both apps import this first, so the profile covers the worker's whole life; the stats go to
``$LOAD_PROFILE_DIR/profile-<pid>.pstats`` when the worker shuts down. Profiling slows the
server, so the levels run without it and a separate short pass (``--profile``) runs with it.
"""

from __future__ import annotations

import atexit
import cProfile
import multiprocessing.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROFILE_ENV = "LOAD_PROFILE_DIR"
_dumps: list[Callable[[], None]] = []


def start_if_asked() -> None:
    """Profile this process until it exits when ``LOAD_PROFILE_DIR`` names a directory."""
    directory = os.environ.get(PROFILE_ENV, "").strip()
    if not directory:
        return
    profile = cProfile.Profile()
    target = Path(directory) / f"profile-{os.getpid()}.pstats"

    def dump() -> None:
        profile.disable()
        profile.dump_stats(target)

    # uvicorn's workers are multiprocessing children, which leave without running atexit
    # handlers; multiprocessing runs its own finalizers on the way out.
    multiprocessing.util.Finalize(None, dump, exitpriority=100)
    atexit.register(dump)
    _dumps.append(dump)
    profile.enable()


def at_shutdown(dump: Callable[[], None]) -> None:
    """Run ``dump`` when the worker's server announces its shutdown (see ``served``)."""
    _dumps.append(dump)


def served(app: Any) -> Any:
    """``app``, running the dumps (the profile, the cache's counts) at the lifespan's shutdown.

    uvicorn's workers leave without running exit handlers on a signal, but every worker runs
    the lifespan's shutdown first, on the profiled thread.
    """
    if not _dumps:
        return app

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)  # type: ignore[no-any-return]

        async def receiving() -> Any:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                for dump in _dumps:
                    dump()
            return message

        return await app(scope, receiving, send)  # type: ignore[no-any-return]

    return wrapper
