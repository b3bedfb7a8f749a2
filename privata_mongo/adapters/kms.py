"""The KMS transport: libmongocrypt's requests to a remote KMS (aws, azure, gcp, kmip).

The ``local`` master key needs no network; the others wrap and unwrap data keys by an HTTPS
(or KMIP) request that libmongocrypt prepares and a driver sends. pymongo's own sender is used,
with the TLS options of ``AutoEncryptionOpts(kms_tls_options=...)``, so the behaviour (timeouts,
certificate checks, retries) is pymongo's. The request blocks; key unwrapping is cached for the
key ring's TTL, so it happens once per data key and TTL, not per document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pymongo.encryption_options import AutoEncryptionOpts
from pymongo.synchronous.encryption import _EncryptionIO

__all__ = ["kms_transport"]


class _NoKeyVault:
    """``_EncryptionIO`` wants a key-vault collection; ours is reached through the port."""

    def with_options(self, **options: Any) -> None:
        return None


def kms_transport(
    kms_providers: Mapping[str, Any], kms_tls_options: Mapping[str, Any] | None = None
) -> Callable[[Any], None]:
    """A function that completes one libmongocrypt KMS request over the network."""
    options = AutoEncryptionOpts(
        dict(kms_providers),
        "encryption.__keyVault",
        kms_tls_options=dict(kms_tls_options) if kms_tls_options else None,
    )
    io = _EncryptionIO(None, _NoKeyVault(), None, options)  # type: ignore[arg-type]
    send: Callable[[Any], None] = io.kms_request
    return send
