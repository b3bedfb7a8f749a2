"""Toxiproxy on loopback: a TCP proxy between pymongo and a server that injects faults on demand.

``start_toxiproxy(state_dir)`` builds toxiproxy-server on first use (``scripts/toxiproxy.sh
install``: Go toolchain required, about twenty seconds cold, instant once cached), starts its
HTTP API on a free 127.0.0.1 port and returns once ``/version`` answers. ``Toxiproxy(api)``
speaks the few calls of that API the chaos harness needs (create a proxy, add and remove a
toxic) with the standard library, so the suites need no client package.

A toxic applies to the proxy's open connections as well as to new ones: ``latency`` delays
every chunk, ``reset_peer`` closes connections with a TCP RST, ``timeout`` stops all data
(and closes after its timeout, if not 0), ``limit_data`` closes a connection after a number of
bytes, cutting a reply mid-stream.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Literal

from testkit.services import ServiceProcess, free_port, run_script, start_service

__all__ = ["Toxiproxy", "ToxiproxyError", "install_toxiproxy", "start_toxiproxy"]

Stream = Literal["upstream", "downstream"]


class ToxiproxyError(RuntimeError):
    """The toxiproxy API refused a request; the message carries its status and answer."""


def install_toxiproxy(timeout: float = 900.0) -> Path:
    """Build (or reuse) the pinned toxiproxy-server binary and return its path.

    Raises:
        testkit.services.ServiceError: the Go toolchain is missing or the build failed.
    """
    return Path(run_script("toxiproxy.sh", "install", timeout=timeout))


def _version_ok(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api}/version", timeout=1) as answer:  # noqa: S310 - loopback
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def start_toxiproxy(state_dir: Path, timeout: float = 30.0) -> ServiceProcess:
    """Start toxiproxy-server with its log under ``state_dir``; ``.uri`` is the API's base URL.

    The caller owns the returned handle and must ``stop()`` it (it is also a context manager).
    """
    install_toxiproxy()
    return start_service(
        name="toxiproxy",
        script="toxiproxy.sh",
        state_dir=state_dir,
        uri_for=lambda port: f"http://127.0.0.1:{port}",
        ready=_version_ok,
        timeout=timeout,
    )


class Toxiproxy:
    """A client of one toxiproxy server's HTTP API (``http://127.0.0.1:PORT``)."""

    def __init__(self, api: str) -> None:
        self.api = api.rstrip("/")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - a loopback URL we built
            f"{self.api}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - loopback
                text = answer.read().decode()
        except urllib.error.HTTPError as error:
            raise ToxiproxyError(
                f"toxiproxy {method} {path}: {error.code} {error.read().decode(errors='replace')}"
            ) from error
        return json.loads(text) if text.strip() else None

    def create_proxy(self, name: str, upstream: str, listen_port: int | None = None) -> str:
        """Create proxy ``name`` to ``upstream`` (``host:port``); returns its listen address.

        Listens on ``listen_port`` (a free loopback port when ``None``).
        """
        port = listen_port if listen_port is not None else free_port()
        answer = self._call(
            "POST",
            "/proxies",
            {"name": name, "listen": f"127.0.0.1:{port}", "upstream": upstream, "enabled": True},
        )
        return str(answer["listen"])

    def add_toxic(
        self,
        proxy: str,
        kind: str,
        attributes: dict[str, int],
        *,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> str:
        """Add a toxic of type ``kind`` (``latency``, ``reset_peer`` …) to ``proxy``; its name.

        ``toxicity`` is the share of connections it applies to.
        """
        toxic = name or f"{kind}_{stream}"
        self._call(
            "POST",
            f"/proxies/{proxy}/toxics",
            {
                "name": toxic,
                "type": kind,
                "stream": stream,
                "toxicity": toxicity,
                "attributes": attributes,
            },
        )
        return toxic

    def remove_toxic(self, proxy: str, toxic: str) -> None:
        """Remove one toxic; the proxy's connections flow unharmed again."""
        self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic}")

    def toxics(self, proxy: str) -> list[str]:
        """The names of the toxics ``proxy`` has now."""
        return [str(t["name"]) for t in self._call("GET", f"/proxies/{proxy}/toxics")]
