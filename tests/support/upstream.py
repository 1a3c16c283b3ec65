"""A real HTTP server on 127.0.0.1 for outbound-call tests: echoes, bytes, redirects, delays.

It records the path of every request it receives, so a test can assert that a refused
destination was never reached.
"""
import base64
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


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
