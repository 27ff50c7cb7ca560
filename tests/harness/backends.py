"""Small HTTP backends that say who they are, on real loopback sockets."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EchoServer

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "name": self.server.name,
                "address": self.server.address,
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
        ).encode()
        self.server.hits += 1
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class EchoServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name: str, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.name = name
        self.address = f"{address[0]}:{address[1]}"
        self.hits = 0


@contextmanager
def echo_backends(named: dict[str, str], port: int) -> Iterator[dict[str, EchoServer]]:
    """Start one backend per `{name: address}`, all on `port`."""
    servers = {name: EchoServer(name, (address, port)) for name, address in named.items()}
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers.values()]
    for t in threads:
        t.start()
    try:
        yield servers
    finally:
        for s in servers.values():
            s.shutdown()
            s.server_close()
