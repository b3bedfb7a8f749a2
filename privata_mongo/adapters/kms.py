"""The KMS transport: TLS connections to a remote KMS, over the standard library (sync and async).

The core drives libmongocrypt and yields its KMS traffic as requests (``ConnectKms``,
``SendKms``, ``ReceiveKms``, ``CloseKms``); these adapters serve them. ``KmsTransport`` uses a
blocking ``socket`` wrapped by ``ssl`` (for the sync driver); ``AsyncKmsTransport`` uses
``asyncio.open_connection``, so the event loop keeps running while a KMS answers.

TLS options are pymongo's ``kms_tls_options``: per provider name, ``tlsCAFile``,
``tlsCertificateKeyFile``, ``tlsCertificateKeyFilePassword``, ``tlsCRLFile`` and
``tlsDisableOCSPEndpointCheck`` (accepted; the standard library does not check OCSP).
Certificates and host names are always verified, against the system's CAs unless
``tlsCAFile`` is given; like pymongo, options that weaken verification are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from privata_mongo.errors import ConfigurationError

__all__ = ["AsyncKmsTransport", "KmsTransport", "check_kms_tls_options", "parse_endpoint"]

DEFAULT_PORT = 443
DEFAULT_TIMEOUT = 20.0
"""Seconds for connecting and for each read, as pymongo's KMS connect timeout."""

_ALLOWED = {
    "tls": "tls",
    "tlscafile": "tlsCAFile",
    "tlscertificatekeyfile": "tlsCertificateKeyFile",
    "tlscertificatekeyfilepassword": "tlsCertificateKeyFilePassword",
    "tlscrlfile": "tlsCRLFile",
    "tlsdisableocspendpointcheck": "tlsDisableOCSPEndpointCheck",
}
_INSECURE = {
    "tlsinsecure": "tlsInsecure",
    "tlsallowinvalidcertificates": "tlsAllowInvalidCertificates",
    "tlsallowinvalidhostnames": "tlsAllowInvalidHostnames",
    "tlsdisablecertificaterevocationcheck": "tlsDisableCertificateRevocationCheck",
}


@dataclass(frozen=True, slots=True)
class _Tls:
    """One provider's TLS options, checked."""

    ca_file: str | None = None
    certificate_key_file: str | None = None
    password: str | None = None
    crl_file: str | None = None


def _checked(provider: str, options: Any) -> _Tls:
    if not isinstance(options, Mapping):
        raise ConfigurationError(f"kms_tls_options['{provider}'] must map TLS option names")
    values: dict[str, Any] = {}
    for name, value in options.items():
        folded = str(name).lower()
        if folded in _INSECURE:
            raise ConfigurationError(
                f"kms_tls_options['{provider}']: insecure TLS options are prohibited: "
                f"{_INSECURE[folded]}"
            )
        if folded not in _ALLOWED:
            raise ConfigurationError(
                f"kms_tls_options['{provider}']: unknown option {name!r}; known options: "
                f"{', '.join(sorted(_ALLOWED.values()))}"
            )
        values[folded] = value
    if values.get("tls", True) is not True:
        raise ConfigurationError(f"kms_tls_options['{provider}']: TLS is required for a KMS")
    files = {k: v for k, v in values.items() if k not in ("tls", "tlsdisableocspendpointcheck")}
    for name, value in files.items():
        if not isinstance(value, str) or not value:
            raise ConfigurationError(
                f"kms_tls_options['{provider}']: {_ALLOWED[name]} must be a non-empty string"
            )
    return _Tls(
        ca_file=files.get("tlscafile"),
        certificate_key_file=files.get("tlscertificatekeyfile"),
        password=files.get("tlscertificatekeyfilepassword"),
        crl_file=files.get("tlscrlfile"),
    )


def check_kms_tls_options(options: Mapping[str, Any] | None) -> dict[str, _Tls]:
    """The checked ``kms_tls_options``, per provider name.

    Raises:
        ConfigurationError: not a mapping of mappings, an unknown or an insecure option.
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ConfigurationError("kms_tls_options must map KMS provider names to TLS options")
    return {str(provider): _checked(str(provider), opts) for provider, opts in options.items()}


def _context(provider: str, tls: _Tls) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=tls.ca_file)
        if tls.certificate_key_file is not None:
            context.load_cert_chain(tls.certificate_key_file, password=tls.password)
        if tls.crl_file is not None:
            context.load_verify_locations(tls.crl_file)
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"kms_tls_options['{provider}'] cannot be loaded: {exc}; check the file names"
        ) from None
    return context


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """``host[:port]`` (IPv6 in brackets) as a host and a port, 443 by default.

    Raises:
        ConfigurationError: an empty host, a bad port, or a Unix socket path.
    """
    port = DEFAULT_PORT
    if endpoint.startswith("["):  # [IPv6]:port
        host, bracket, rest = endpoint[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ConfigurationError(f"invalid KMS endpoint {endpoint!r}")
        text = rest[1:]
    else:
        host, _, text = endpoint.partition(":")
    if text:
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise ConfigurationError(f"invalid port in KMS endpoint {endpoint!r}")
        port = int(text)
    if not host or host.endswith(".sock"):
        raise ConfigurationError(f"invalid KMS endpoint {endpoint!r}")
    return host, port


class _Contexts:
    """TLS contexts per provider, built once (loading CA files is not free) and shared."""

    def __init__(self, kms_tls_options: Mapping[str, Any] | None) -> None:
        self._options = check_kms_tls_options(kms_tls_options)
        self._built: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        for provider, tls in self._options.items():
            self._built[provider] = _context(provider, tls)

    def get(self, provider: str) -> ssl.SSLContext:
        """The context for ``provider``: its own options, else the system's defaults."""
        with self._lock:
            context = self._built.get(provider)
            if context is None:
                context = self._built[provider] = _context(provider, _Tls())
            return context


class _Connection:
    def __init__(self, sock: ssl.SSLSocket) -> None:
        self._sock = sock

    def send(self, message: bytes, /) -> None:
        self._sock.sendall(message)

    def receive(self, size: int, /) -> bytes:
        data = self._sock.recv(size)
        if not data:
            raise ConnectionError("the KMS closed the connection before its reply was complete")
        return data

    def close(self) -> None:
        self._sock.close()


class _Transport:
    """What both KMS transports share: TLS contexts per provider, a timeout, the endpoint.

    Args:
        kms_tls_options: pymongo's ``kms_tls_options`` (provider name → TLS options).
        timeout: seconds for connecting and for each read.

    Raises:
        ConfigurationError: an unknown or insecure TLS option, or a file that cannot be loaded.
    """

    def __init__(
        self, kms_tls_options: Mapping[str, Any] | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self._contexts = _Contexts(kms_tls_options)
        self._timeout = timeout

    def _target(self, provider: str, endpoint: str) -> tuple[str, int, ssl.SSLContext]:
        """Host, port and TLS context of a connection to ``endpoint`` for ``provider``."""
        host, port = parse_endpoint(endpoint)
        return host, port, self._contexts.get(provider)


class KmsTransport(_Transport):
    """The blocking KMS transport (``ports.kms.KmsConnector``): ``socket`` + ``ssl``."""

    def connect(self, provider: str, endpoint: str, delay: float, /) -> _Connection:
        """A TLS connection to ``endpoint``, opened after ``delay`` seconds."""
        host, port, context = self._target(provider, endpoint)
        if delay > 0:
            time.sleep(delay)
        raw = socket.create_connection((host, port), timeout=self._timeout)
        try:
            return _Connection(context.wrap_socket(raw, server_hostname=host))
        except BaseException:
            raw.close()
            raise


class _AsyncConnection:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = timeout

    async def send(self, message: bytes, /) -> None:
        self._writer.write(message)
        await _within(self._writer.drain(), self._timeout)

    async def receive(self, size: int, /) -> bytes:
        data: bytes = await _within(self._reader.read(size), self._timeout)
        if not data:
            raise ConnectionError("the KMS closed the connection before its reply was complete")
        return data

    async def close(self) -> None:
        if self._writer.is_closing():
            return
        self._writer.close()
        with contextlib.suppress(OSError):  # the reply is complete: a failed shutdown loses nothing
            await _within(self._writer.wait_closed(), self._timeout)


async def _within(awaitable: Any, timeout: float) -> Any:
    """``awaitable`` within ``timeout`` seconds; a timeout is an ``OSError`` (``TimeoutError``)."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:  # not an OSError before Python 3.11
        raise TimeoutError(f"the KMS did not answer within {timeout} seconds") from None


class AsyncKmsTransport(_Transport):
    """The asyncio KMS transport (``ports.kms.AsyncKmsConnector``): ``asyncio.open_connection``."""

    async def connect(self, provider: str, endpoint: str, delay: float, /) -> _AsyncConnection:
        """A TLS connection to ``endpoint``, opened after ``delay`` seconds."""
        host, port, context = self._target(provider, endpoint)
        if delay > 0:
            await asyncio.sleep(delay)
        reader, writer = await _within(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host),
            self._timeout,
        )
        return _AsyncConnection(reader, writer, self._timeout)
