"""E-service hosts the provider fetches from: real servers on the loopback interface, some of
them slow or dead, which count what reaches them."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Documents:
    """A web server publishing documents at paths (a body, or a redirect), counting hits and
    noting each request's Host header. A held path answers only once the test releases it.
    With `tls`, it speaks https and notes the server name (SNI) each connection asked for."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.bodies: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.hits: dict[str, int] = {}
        self.hosts: list[str | None] = []
        self.server_names: list[str | None] = []
        self.held: dict[str, threading.Event] = {}
        self.waiting = threading.Event()  # a request waits at a held path
        documents = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                documents.hits[self.path] = documents.hits.get(self.path, 0) + 1
                documents.hosts.append(self.headers.get("Host"))
                release = documents.held.get(self.path)
                if release is not None:
                    documents.waiting.set()
                    release.wait(30)
                if self.path in documents.redirects:
                    self.send_response(302)
                    self.send_header("Location", documents.url(documents.redirects[self.path]))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = documents.bodies.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            tls.sni_callback = lambda _socket, name, _context: self.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def publish(self, path: str, document: Any) -> str:
        self.bodies[path] = json.dumps(document).encode()
        return self.url(path)

    def hold(self, path: str, document: Any) -> threading.Event:
        """Publish `document` at `path`, answered only once the returned event is set."""
        self.held[path] = threading.Event()
        self.publish(path, document)
        return self.held[path]

    def close(self) -> None:
        for release in self.held.values():
            release.set()
        self.server.shutdown()
        self.server.server_close()


class SlowHost:
    """A host that accepts every connection and reads the request, then either trickles an
    endless answer (`trickle`, a byte every 0.2 s) or never answers at all. It counts the
    connections, how many are open at once, and notices when the caller hangs up."""

    def __init__(self, *, trickle: bool) -> None:
        self.trickle = trickle
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/jwks.json"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with self._lock:
            self.connections += 1
            self.open += 1
            self.most_open = max(self.most_open, self.open)
        self.connected.set()
        try:
            connection.settimeout(0.2)
            with contextlib.suppress(TimeoutError):
                connection.recv(65536)  # the request
            if self.trickle:
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 60000\r\n\r\n["
                )
            while not self._stopped.is_set():
                try:
                    if connection.recv(1) == b"":
                        return  # the caller hung up
                except TimeoutError:
                    pass
                if self.trickle:
                    connection.sendall(b" ")
        except OSError:
            return  # the caller hung up
        finally:
            connection.close()
            with self._lock:
                self.open -= 1

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()
