"""TLS in front of a plaintext server (Kafka, or PostgreSQL), and the certificates for it.

The embedded Tansu 0.6.0 cannot serve TLS itself (its ``--cert`` and ``--key`` flags exclude
each other), so the Kafka TLS tests put this terminator in front of a broker that advertises
the terminator's port: clients then speak TLS, with client certificates, to every broker
address they learn. The embedded PostgreSQL runs without TLS: in front of it, the terminator
answers PostgreSQL's request for TLS itself.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# PostgreSQL's SSLRequest: length 8, then the code 1234.5679 (protocol.c).
SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")


class TlsProxy:
    """``postgres``: speak PostgreSQL's way in first (the client asks for TLS with an SSLRequest,
    the server answers ``S``), then TLS, then the plain protocol to the server behind."""

    def __init__(self, port: int, target_port: int, context: ssl.SSLContext, postgres: bool = False):
        self.target_port = target_port
        self.context = context
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        start = asyncio.start_server(self._serve_postgres if postgres else self._serve, "127.0.0.1", port,
                                     ssl=None if postgres else context)  # fmt: skip
        self._server = asyncio.run_coroutine_threadsafe(start, self.loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve_postgres(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if await reader.readexactly(8) != SSL_REQUEST:
                writer.close()  # a client that does not ask for TLS gets nothing
                return
            writer.write(b"S")
            await writer.drain()
            await writer.start_tls(self.context)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            writer.close()
            return
        await self._serve(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _shutdown(self) -> None:
        self._server.close()
        connections = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
                 *, ca: bool = False, server: bool = False) -> x509.Certificate:  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer)).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )  # fmt: skip
    if server:
        loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(loopback, critical=False)
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, *items: bytes) -> Path:
    path.write_bytes(b"".join(items))
    return path


def make_certificates(directory: Path, key_password: str) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (its key encrypted with
    ``key_password``), all PEM; and a second CA that signed none of them."""
    pem = serialization.Encoding.PEM
    keys = {name: ec.generate_private_key(ec.SECP256R1()) for name in ("ca", "server", "client", "other_ca")}
    ca = _certificate("txguard test CA", keys["ca"], "txguard test CA", keys["ca"], ca=True)
    other = _certificate("another CA", keys["other_ca"], "another CA", keys["other_ca"], ca=True)
    server = _certificate("127.0.0.1", keys["server"], "txguard test CA", keys["ca"], server=True)
    client = _certificate("txguard-client", keys["client"], "txguard test CA", keys["ca"])
    plain = serialization.NoEncryption()
    encrypted = serialization.BestAvailableEncryption(key_password.encode())
    pkcs8 = serialization.PrivateFormat.PKCS8
    return {
        "ca": _write(directory / "ca.pem", ca.public_bytes(pem)),
        "other_ca": _write(directory / "other-ca.pem", other.public_bytes(pem)),
        "server": _write(directory / "server.pem", server.public_bytes(pem)),
        "server_key": _write(directory / "server.key", keys["server"].private_bytes(pem, pkcs8, plain)),
        "client": _write(directory / "client.pem", client.public_bytes(pem)),
        "client_key": _write(directory / "client.key", keys["client"].private_bytes(pem, pkcs8, encrypted)),
    }


def server_context(certificates: dict[str, Path], client_certificate: bool = True) -> ssl.SSLContext:
    """The server side: its certificate, and (mutual TLS) a client certificate from the CA required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates["server"], certificates["server_key"])
    if client_certificate:
        context.load_verify_locations(certificates["ca"])
        context.verify_mode = ssl.CERT_REQUIRED
    return context
