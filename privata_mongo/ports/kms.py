"""KMS ports: the network behind a remote master key (``aws``, ``azure``, ``gcp``, ``kmip``).

libmongocrypt prepares each KMS request and parses each reply itself; what it needs from its
caller is a TLS connection that carries bytes. The core yields that traffic as requests
(``ConnectKms``, ``SendKms``, ``ReceiveKms``, ``CloseKms``) and the drivers serve them through
these ports, so encryption under a remote KMS blocks a thread only on the sync path and never
the event loop on the async one. Network failures are ``OSError``s: libmongocrypt retries them.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["AsyncKmsConnection", "AsyncKmsConnector", "KmsConnection", "KmsConnector"]


class KmsConnection(Protocol):
    """One open TLS connection to a KMS."""

    def send(self, message: bytes, /) -> None:
        """Send all of ``message``."""

    def receive(self, size: int, /) -> bytes:
        """At most ``size`` bytes of the reply; raises ``OSError`` if the connection closed."""

    def close(self) -> None:
        """Close the connection; closing twice is harmless."""


class KmsConnector(Protocol):
    """Opens connections to KMS endpoints with each provider's TLS options."""

    def connect(self, provider: str, endpoint: str, delay: float, /) -> KmsConnection:
        """A connection to ``endpoint`` (``host[:port]``) after waiting ``delay`` seconds."""


class AsyncKmsConnection(Protocol):
    """``KmsConnection``, awaited."""

    async def send(self, message: bytes, /) -> None:
        """Send all of ``message``."""

    async def receive(self, size: int, /) -> bytes:
        """At most ``size`` bytes of the reply; raises ``OSError`` if the connection closed."""

    async def close(self) -> None:
        """Close the connection; closing twice is harmless."""


class AsyncKmsConnector(Protocol):
    """``KmsConnector``, awaited."""

    async def connect(self, provider: str, endpoint: str, delay: float, /) -> AsyncKmsConnection:
        """A connection to ``endpoint`` (``host[:port]``) after waiting ``delay`` seconds."""
