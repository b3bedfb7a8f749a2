"""libmongocrypt's state machine as a flow: key lookups from memory, KMS traffic as requests.

pymongocrypt drives a libmongocrypt context with ``run_state_machine``, which hands each state
to a callback that performs the I/O (a key-vault query, an HTTPS request to a KMS) before the
loop goes on. ``run`` is the same loop as a generator, so the core keeps its sans-IO shape:

- ``NEED_MONGO_KEYS`` is answered from the key ring's memory: flows load the data keys they
  need with ``LoadKeys`` before they use them.
- ``NEED_KMS`` (a remote master key: ``aws``, ``azure``, ``gcp``, ``kmip``) becomes requests the
  flow yields: ``ConnectKms`` to the context's endpoint, ``SendKms`` of its message, then
  ``ReceiveKms`` of ``bytes_needed`` bytes, fed back, until it needs none, and ``CloseKms``.
  The sync driver serves them with a blocking socket, the async driver without blocking the
  event loop. A network failure is reported to libmongocrypt (``fail``), which decides whether
  to retry and how long to wait first (``usleep``, carried by the next ``ConnectKms``).

With the ``local`` master key libmongocrypt never enters ``NEED_KMS``: these flows then yield
nothing and finish on the first ``send``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import bson
from pymongocrypt.binding import lib
from pymongocrypt.errors import MongoCryptError

from privata_mongo.core.ops import CloseKms, ConnectKms, Flow, ReceiveKms, SendKms

__all__ = ["KeySource", "run"]

KeySource = Callable[[Mapping[str, Any]], list[bytes]]
"""The key documents (BSON) libmongocrypt's key filter selects, from memory."""


def run(context: Any, keys: KeySource) -> Flow[bytes | None]:
    """Drive one libmongocrypt context to its end; returns its output (``None`` when done).

    The context is destroyed when the flow ends, however it ends.

    Raises:
        MongoCryptError: libmongocrypt failed (a key it needs is not held, a wrong master
            key, an altered ciphertext, a KMS error, or a KMS unreachable after its retries).
    """
    with context:
        while True:
            state = context.state
            if state == lib.MONGOCRYPT_CTX_READY:
                out: bytes = context.finish()
                return out
            if state == lib.MONGOCRYPT_CTX_DONE:
                return None
            if state == lib.MONGOCRYPT_CTX_ERROR:
                context.finish()  # raises libmongocrypt's own error in this state
                raise MongoCryptError("libmongocrypt failed without a reason")
            if state == lib.MONGOCRYPT_CTX_NEED_MONGO_KEYS:
                for key in keys(bson.decode(context.mongo_operation())):
                    context.add_mongo_operation_result(key)
                context.complete_mongo_operation()
            elif state == lib.MONGOCRYPT_CTX_NEED_KMS:
                # A retried request comes round again in the same iteration.
                for kms in context.kms_contexts():
                    with kms:
                        yield from _exchange(kms)
                context.complete_kms()
            elif state == lib.MONGOCRYPT_CTX_NEED_KMS_CREDENTIALS:
                raise MongoCryptError(
                    "the KMS provider's credentials are empty and privata does not look them up "
                    "on demand; configure them in kms_providers"
                )
            else:
                raise MongoCryptError(
                    f"libmongocrypt asked for state {state}, which explicit encryption never needs"
                )


def _exchange(kms: Any) -> Flow[None]:
    """One attempt of one KMS request; a network failure is handed to libmongocrypt to retry."""
    try:
        connection = yield from ConnectKms(kms.kms_provider, kms.endpoint, kms.usleep / 1e6)
    except OSError as exc:
        _failed(kms, exc)
        return
    failure: OSError | None = None
    try:
        yield from SendKms(connection, kms.message)
        while (needed := kms.bytes_needed) > 0:
            data = yield from ReceiveKms(connection, needed)
            if not data:
                raise ConnectionError("the KMS closed the connection before its reply was complete")
            kms.feed(data)
    except OSError as exc:
        failure = exc
    except GeneratorExit:
        raise  # the driver is closing the flow: it closes the connections the flow opened
    except BaseException:
        yield CloseKms(connection)
        raise
    yield CloseKms(connection)
    if failure is not None:
        _failed(kms, failure)


def _failed(kms: Any, exc: OSError) -> None:
    """Tell libmongocrypt an attempt failed; it raises once it will not retry any more."""
    try:
        kms.fail()
    except MongoCryptError as final:
        raise MongoCryptError(f"{final}; the last attempt failed with: {exc}", final.code) from None
