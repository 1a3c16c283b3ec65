"""A real HTTP server on 127.0.0.1 for outbound-call tests: echoes, bytes, redirects, delays.

It records the path of every request it receives, so a test can assert that a refused
destination was never reached.
"""
import base64
import datetime
import json
import socket
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _route(self):
        self.server.seen.append((self.command, self.path))
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        segments = [s for s in parts.path.split("/") if s]
        name = segments[0] if segments else "echo"
        getattr(self, f"_{name}", self._echo)(segments[1:], query, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _route

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _echo(self, _segments, query, body):
        payload = {
            "method": self.command,
            "path": self.path,
            "query": query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_base64": base64.b64encode(body).decode(),
        }
        self._send(200, json.dumps(payload).encode(), [("Content-Type", "application/json"), ("X-Repeat", "a"), ("X-Repeat", "b")])

    def _bytes(self, segments, query, _body):
        n = int(segments[0])
        data = bytes(i % 256 for i in range(n))
        if query.get("chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, n, 65536):
                chunk = data[start:start + 65536]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
            return
        self._send(200, data, [("Content-Type", "application/octet-stream")])

    def _status(self, segments, _query, _body):
        self._send(int(segments[0]), b"status body")

    def _redirect(self, segments, query, _body):
        hops = int(segments[0])
        target = query.get("to") or ("/echo" if hops <= 1 else f"/redirect/{hops - 1}")
        self._send(int(query.get("code", 302)), b"", [("Location", target)])

    def _slow(self, segments, _query, _body):
        time.sleep(float(segments[0]))
        self._send(200, b"slow")

    def _drip(self, segments, _query, _body):
        seconds = float(segments[0])
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(seconds / 100)
        except OSError:
            pass  # the client gave up: that is the point of the test

    def _reset(self, _segments, _query, _body):
        # SO_LINGER 0: the close sends a RST instead of a FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


class Upstream:
    """A threaded HTTP server on a free port of 127.0.0.1."""

    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.seen = []
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def seen(self):
        return self.server.seen

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def self_signed_context(directory):
    """Return a server TLS context with a fresh self-signed certificate for localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


class TlsUpstream(Upstream):
    """The same server behind TLS, with a certificate no client trusts."""

    def __init__(self, directory):
        super().__init__()
        self.server.socket = self_signed_context(directory).wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.port}"
