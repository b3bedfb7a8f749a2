"""A fake AWS KMS over TLS on 127.0.0.1, as MongoDB's drivers-evergreen-tools mock KMS does.

It answers ``TrentService.Encrypt`` with a ``CiphertextBlob`` (random bytes it remembers) and
``TrentService.Decrypt`` of such a blob with the matching ``Plaintext``; anything else gets an
AWS-shaped error. The certificate is self-signed, made with ``cryptography`` at start, so a
client trusts it only through ``kms_tls_options={"aws": {"tlsCAFile": kms.ca_file}}``.

``hold`` makes the server keep its reply to the next request until ``release()``: an asyncio
test releases it from a task on the event loop, which can only run if the loop is not blocked
waiting for that reply.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ARN", "FakeAwsKms"]

ARN = "arn:aws:kms:us-east-1:000000000000:key/privata-test"
_HOLD_SECONDS = 5.0


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "privata fake KMS")])
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc))
        .not_valid_after(datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "kms-cert.pem", directory / "kms-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        target = self.headers.get("X-Amz-Target", "")
        status, reply = self.server.kms.answer(target, body)
        payload = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        return None  # quiet: requests are recorded in ``FakeAwsKms.requests``


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    kms: FakeAwsKms


class FakeAwsKms:
    """The server; a context manager that starts it on a free port and stops it.

    Attributes:
        requests: the ``X-Amz-Target`` of every request received, in order.
        ca_file: the PEM file to trust (the server's own certificate).
        stalled: a held reply was sent because nobody released it in time.
    """

    def __init__(self, directory: Path) -> None:
        self.ca_file, key_file = _certificate(directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.kms = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._lock = threading.Lock()
        self._blobs: dict[bytes, str] = {}
        self.requests: list[str] = []
        self.stalled = False
        self._hold = False
        self._held = threading.Event()
        self._released = threading.Event()

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:<port>``, for the master key's ``endpoint``."""
        return f"127.0.0.1:{self._server.server_address[1]}"

    def hold(self) -> None:
        """Keep the reply to the next request until ``release()`` (at most a few seconds)."""
        self._held.clear()
        self._released.clear()
        self._hold = True

    def wait_until_held(self) -> bool:
        """Wait (a few seconds at most) until a request arrives and waits for ``release()``."""
        return self._held.wait(_HOLD_SECONDS)

    def release(self) -> None:
        """Let the held reply go."""
        self._released.set()

    def answer(self, target: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """What AWS KMS answers to ``target`` with ``body`` (the request is recorded)."""
        with self._lock:
            self.requests.append(target)
            hold, self._hold = self._hold, False
        if hold:
            self._held.set()
            if not self._released.wait(_HOLD_SECONDS):
                self.stalled = True
        if target == "TrentService.Encrypt":
            blob = b"fake-kms:" + os.urandom(151)
            with self._lock:
                self._blobs[blob] = body["Plaintext"]
            return 200, {"CiphertextBlob": base64.b64encode(blob).decode(), "KeyId": ARN}
        if target == "TrentService.Decrypt":
            with self._lock:
                plaintext = self._blobs.get(base64.b64decode(body.get("CiphertextBlob", "")))
            if plaintext is None:
                return 400, {"__type": "InvalidCiphertextException", "message": "unknown blob"}
            return 200, {"Plaintext": plaintext, "KeyId": ARN}
        return 400, {"__type": "UnknownOperationException", "message": target}

    def __enter__(self) -> FakeAwsKms:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
