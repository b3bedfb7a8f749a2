"""Local servers for the suites, run through the project's scripts and owned by this process.

``scripts/<name>.sh install`` builds or installs the server and ``scripts/<name>.sh run <dir>
<port>`` runs it in the foreground (the scripts keep the one list of flags). Here we start that
foreground command as our own child on a free loopback port, wait until it answers, and on
``stop()`` terminate and reap it, so a test session leaves neither a server nor a zombie behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

__all__ = [
    "SCRIPTS_DIR",
    "ServiceError",
    "ServiceProcess",
    "free_port",
    "run_script",
    "start_service",
]

logger = logging.getLogger(__name__)

SCRIPTS_DIR = Path(__file__).resolve().parent.parent / "scripts"
_BASH = shutil.which("bash") or "/bin/bash"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the test process dies, however it dies.

    A test run killed by a CI timeout or a ``kill`` never reaches its fixtures' teardown; without
    this its servers would outlive it, holding ports, memory and CPU.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ServiceError(RuntimeError):
    """A local server could not be installed or did not come up; the message says why."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 a moment ago (callers retry if it is taken meanwhile)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _script_env() -> dict[str, str]:
    return {**os.environ, "PYTHON": sys.executable}


def run_script(script: str, *args: str, timeout: float | None = None) -> str:
    """Run ``scripts/<script> args…`` and return its last line of output.

    Raises:
        ServiceError: with the script's own error message when it exits non-zero.
    """
    path = SCRIPTS_DIR / script
    # The script's stderr (apt or go output, then the error) goes to a pipe, not the terminal:
    # pytest shows it in the error this raises.
    done = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [_BASH, str(path), *args],
        capture_output=True,
        text=True,
        env=_script_env(),
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise ServiceError(f"{script} {' '.join(args)} exited {done.returncode}:\n{tail}")
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


class ServiceProcess:
    """One running server: ``uri`` to reach it, ``stop()`` to end it (idempotent)."""

    def __init__(self, name: str, uri: str, state_dir: Path, process: subprocess.Popen[bytes]):
        self.name = name
        self.uri = uri
        self.state_dir = state_dir
        self.log_path = state_dir / f"{name}.log"
        self._process = process

    @property
    def pid(self) -> int:
        """The server's process id (the script execs the server, so it is the server's own)."""
        return self._process.pid

    def running(self) -> bool:
        """Whether the server process is still alive."""
        return self._process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server, wait for it, and kill it if it does not exit in time."""
        if self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s (pid %d) ignored SIGTERM; killing it", self.name, self.pid)
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ServiceProcess({self.name!r}, uri={self.uri!r}, pid={self.pid})"


def start_service(
    *,
    name: str,
    script: str,
    state_dir: Path,
    uri_for: Callable[[int], str],
    ready: Callable[[str], bool],
    timeout: float,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    """Start ``scripts/<script> run <state_dir> <port>`` and wait until ``ready(uri)``.

    ``env``: variables added to the server's environment (a server option it reads from one).

    Tries up to three free ports (another process may take one between our check and the
    server's bind), or only ``port`` when given (a server restarted where its clients expect
    it). The server runs in its own session so that a Ctrl-C aimed at pytest reaches pytest,
    whose teardown then stops the server in order.

    Raises:
        ServiceError: the server exited or did not answer within ``timeout`` seconds; the message
            carries the end of its log.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / f"{name}.log"
    candidates = iter([port]) if port is not None else (free_port() for _ in range(3))
    for candidate in candidates:
        uri = uri_for(candidate)
        process = subprocess.Popen(  # noqa: S603 - our own script, fixed arguments
            [_BASH, str(SCRIPTS_DIR / script), "run", str(state_dir), str(candidate)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**_script_env(), **(env or {})},
            start_new_session=True,
            preexec_fn=_die_with_parent,  # only prctl: nothing that takes a lock
        )
        service = ServiceProcess(name, uri, state_dir, process)
        deadline = time.monotonic() + timeout
        while service.running() and time.monotonic() < deadline:
            if ready(uri):
                logger.info("%s answers on %s (pid %d)", name, uri, service.pid)
                return service
            time.sleep(0.05)
        service.stop()
    log_tail = ""
    with contextlib.suppress(OSError):
        log_tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
    raise ServiceError(f"{name} did not answer on 127.0.0.1 (log: {log_path}):\n{log_tail}")
