"""redis-server on loopback, without persistence, and a few lines of RESP to talk to it.

``start_redis(state_dir)`` installs redis-server when missing (``scripts/redis.sh install``:
apt-get), starts it on a free 127.0.0.1 port and returns once it answers ``PING``. ``command``
speaks just enough RESP for infrastructure checks, so the suites need no redis client package.
"""

from __future__ import annotations

import io
import socket
from pathlib import Path
from typing import TypeAlias
from urllib.parse import urlsplit

from testkit.services import ServiceProcess, run_script, start_service

__all__ = ["RedisError", "command", "install_redis", "ping_ok", "start_redis"]

Reply: TypeAlias = "bytes | int | list[Reply] | None"


class RedisError(Exception):
    """The server answered with a RESP error reply."""


def install_redis(timeout: float = 900.0) -> Path:
    """Install redis-server when missing and return its path.

    Raises:
        testkit.services.ServiceError: apt-get is unavailable or the install failed.
    """
    return Path(run_script("redis.sh", "install", timeout=timeout))


def _read_reply(stream: io.BufferedReader) -> Reply:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("redis closed the connection mid-reply")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RedisError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else stream.read(size + 2)[:-2]
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [_read_reply(stream) for _ in range(count)]
    raise ConnectionError(f"unexpected RESP reply type {kind!r}")


def command(uri: str, *args: str | bytes, timeout: float = 5.0) -> Reply:
    """Send one command to the server at ``uri`` (redis://host:port[/db]); return its reply.

    Simple and bulk strings come back as ``bytes``, integers as ``int``, arrays as lists.
    """
    parts = urlsplit(uri)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    encoded = [arg.encode() if isinstance(arg, str) else arg for arg in args]
    request = b"*%d\r\n" % len(encoded) + b"".join(
        b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in encoded
    )
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        with sock.makefile("rb") as stream:
            return _read_reply(stream)


def ping_ok(uri: str) -> bool:
    """Whether the server at ``uri`` answers ``PING`` with ``PONG`` right now."""
    try:
        return command(uri, "PING", timeout=1.0) == b"PONG"
    except (OSError, RedisError):
        return False


def start_redis(state_dir: Path, timeout: float = 30.0) -> ServiceProcess:
    """Start redis-server (no RDB, no AOF) with its log under ``state_dir``; ``.uri`` is redis://.

    The caller owns the returned handle and must ``stop()`` it (it is also a context manager).
    """
    install_redis()
    return start_service(
        name="redis",
        script="redis.sh",
        state_dir=state_dir,
        uri_for=lambda port: f"redis://127.0.0.1:{port}/0",
        ready=ping_ok,
        timeout=timeout,
    )
