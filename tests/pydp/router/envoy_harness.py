"""Run the real Envoy with a route configuration and ask it what it does with requests.

Each cluster points at its own loopback echo server, which answers 200 with a
JSON body naming the cluster and listing the request line and headers it got.
Everything binds port 0 on 127.0.0.1; Envoy uses a dynamic base id.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENVOY = shutil.which("envoy") or str(Path(sys.executable).parent / "envoy")


def envoy_available() -> bool:
    return Path(ENVOY).is_file() and os.access(ENVOY, os.X_OK)


class _Echo(http.server.BaseHTTPRequestHandler):
    cluster = ""
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {
                "cluster": self.cluster,
                "path": self.path,
                "headers": [[k.lower(), v] for k, v in self.headers.items()],
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def upstream(self) -> dict[str, Any] | None:
        if self.header("content-type") != "application/json":
            return None
        data: dict[str, Any] = json.loads(self.body)
        return data


class EnvoyRouter:
    def __init__(self, port: int) -> None:
        self.port = port

    def request(
        self,
        path: str,
        host: str,
        headers: Sequence[tuple[str, str]] = (),
        method: str = "GET",
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("host", host)
            for key, value in headers:
                conn.putheader(key, value)
            conn.endheaders()
            response = conn.getresponse()
            body = response.read()
            pairs = [(k.lower(), v) for k, v in response.getheaders()]
            return Reply(response.status, pairs, body)
        finally:
            conn.close()


@contextmanager
def run_envoy(route_config: Mapping[str, Any], clusters: list[str]) -> Iterator[EnvoyRouter]:
    servers: list[http.server.ThreadingHTTPServer] = []
    try:
        for name in clusters:
            handler = type(f"Echo_{len(servers)}", (_Echo,), {"cluster": name})
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
        with tempfile.TemporaryDirectory() as tmp:
            admin_path = Path(tmp) / "admin"
            bootstrap = _bootstrap(route_config, clusters, servers)
            config = Path(tmp) / "envoy.json"
            config.write_text(json.dumps(bootstrap))
            proc = subprocess.Popen(
                [
                    ENVOY,
                    "-c",
                    str(config),
                    "--use-dynamic-base-id",
                    "-l",
                    "critical",
                    "--admin-address-path",
                    str(admin_path),
                    "--disable-hot-restart",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                yield EnvoyRouter(_listener_port(proc, admin_path))
            finally:
                proc.terminate()
                proc.wait(timeout=10)
                if proc.stderr is not None:
                    proc.stderr.close()
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def _listener_port(proc: subprocess.Popen[bytes], admin_path: Path) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"envoy exited: {err[-2000:]}")
        if admin_path.exists() and admin_path.read_text().strip():
            admin = admin_path.read_text().strip()
            try:
                with urllib.request.urlopen(
                    f"http://{admin}/listeners?format=json", timeout=2
                ) as r:
                    listeners = json.load(r)["listener_statuses"]
                for listener in listeners:
                    port = listener["local_address"]["socket_address"].get("port_value")
                    if port:
                        return int(port)
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError("envoy did not start")


def _bootstrap(
    route_config: Mapping[str, Any],
    clusters: list[str],
    servers: list[http.server.ThreadingHTTPServer],
) -> dict[str, Any]:
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "l",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters."
                                        "network.http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "t",
                                        "route_config": route_config,
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy."
                                                    "extensions.filters.http.router.v3.Router"
                                                },
                                            }
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": name,
                    "connect_timeout": "1s",
                    "type": "STATIC",
                    "load_assignment": {
                        "cluster_name": name,
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": "127.0.0.1",
                                                    "port_value": server.server_address[1],
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
                for name, server in zip(clusters, servers, strict=True)
            ],
        },
    }
