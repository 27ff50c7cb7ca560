"""The `pydp` command: Envoy's flags, start-up errors, SIGTERM drain, `/quitquitquit`."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pydp import cli
from tests.harness import manifests
from tests.harness.net import free_port, loopback, wait_until
from tests.harness.procs import control_plane
from tests.harness.pydp_proc import Pydp, pydp

SERVICE_PORT = 9080
HOST = f"slow.default.svc.cluster.local:{SERVICE_PORT}"


def test_envoys_command_line_is_accepted() -> None:
    args = cli.build_parser().parse_args(
        [
            "run",
            "-c",
            "b.yaml",
            "--use-dynamic-base-id",
            "--concurrency",
            "2",
            "--log-level",
            "warn",
            "--drain-time-s",
            "1",
            "--base-id",
            "7",
        ]
    )
    assert (args.config, args.concurrency, args.log_level, args.drain_time_s) == (
        "b.yaml",
        2,
        "warn",
        1.0,
    )
    assert cli.build_parser().parse_args(["run", "--bootstrap", "x.json"]).config == "x.json"


def test_a_bootstrap_that_cannot_be_read_exits_1_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "missing.yaml"
    assert cli.main(["run", "-c", str(missing)]) == 1
    assert f"{missing}: cannot be read" in caplog.text


def test_running_without_a_bootstrap_file(tmp_path: Path) -> None:
    args = cli.build_parser().parse_args(
        [
            "run",
            "--xds",
            "127.0.0.1:18000",
            "--node-id",
            "app-1.default",
            "--metadata",
            "NAMESPACE=default",
            "--admin-address",
            "127.0.0.1:15000",
            "--delta",
        ]
    )
    config, message = cli.bootstrap_from_args(args)
    assert (config.xds_host, config.xds_port, config.delta) == ("127.0.0.1", 18000, True)
    assert (config.admin_address, config.admin_port) == ("127.0.0.1", 15000)
    assert config.node_id == "app-1.default" and config.node_cluster == "default"
    assert config.metadata == {"NAMESPACE": "default"}
    assert message.node.user_agent_name == "pydp"


class Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    started = threading.Event()

    def do_GET(self) -> None:
        body = b"quick"
        if self.path == "/slow":
            Slow.started.set()
            time.sleep(1.5)
            body = b"slow but complete"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def sidecar(tmp_path: Path) -> Iterator[tuple[Pydp, int]]:
    with slow_sidecar(tmp_path, "--drain-time-s", "20") as running:
        yield running


@contextmanager
def slow_sidecar(tmp_path: Path, *extra: str) -> Iterator[tuple[Pydp, int]]:
    folder = tmp_path / "manifests"
    folder.mkdir()
    backend = loopback()
    server = ThreadingHTTPServer((backend, 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        manifests.write(
            folder / "slow.yaml",
            manifests.service("slow", "default", SERVICE_PORT, port, [backend]),
        )
        with control_plane(folder, tmp_path) as cp:
            outbound = free_port()
            bootstrap = cp.bootstrap(
                "app-1.default",
                "default",
                "--admin-port",
                str(free_port()),
                "--outbound-port",
                str(outbound),
                "--inbound-port",
                str(free_port()),
            )
            with pydp(bootstrap, tmp_path, *extra) as proxy:
                yield proxy, outbound
    finally:
        server.shutdown()
        server.server_close()


def test_sigterm_drains_in_flight_requests_while_refusing_new_connections(
    sidecar: tuple[Pydp, int],
) -> None:
    proxy, outbound = sidecar
    Slow.started.clear()
    result: list[object] = []

    def slow_request() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", outbound, timeout=15)
        try:
            conn.request("GET", "/slow", headers={"Host": HOST})
            response = conn.getresponse()
            result.append((response.status, response.read()))
        except OSError as exc:
            result.append(exc)
        finally:
            conn.close()

    thread = threading.Thread(target=slow_request)
    thread.start()
    assert Slow.started.wait(10)
    proxy.process.proc.send_signal(signal.SIGTERM)

    def refused() -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", outbound, timeout=2)
        try:
            conn.connect()
        except ConnectionRefusedError:
            return True
        finally:
            conn.close()
        return False

    wait_until(refused, timeout=5)
    assert thread.is_alive()  # the slow request is still in flight
    thread.join(15)
    assert result == [(200, b"slow but complete")]
    assert proxy.process.proc.wait(15) == 0
    assert "caught SIGTERM" in proxy.process.output()


def test_quitquitquit_exits_at_once(sidecar: tuple[Pydp, int]) -> None:
    proxy, _ = sidecar
    request = urllib.request.Request(proxy.admin_url + "/quitquitquit", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.read() == b"OK\n"
    assert proxy.process.proc.wait(10) == 0


def test_server_info_and_ready_over_the_admin_port(sidecar: tuple[Pydp, int]) -> None:
    proxy, _ = sidecar
    info = json.loads(proxy.get("/server_info"))
    assert info["state"] == "LIVE"
    assert info["node"]["id"] == "app-1.default"
    assert info["command_line_options"]["drain_time"] == "20s"
    assert proxy.get("/ready") == "LIVE\n"


def test_concurrency_runs_workers_that_share_the_listening_port(tmp_path: Path) -> None:
    with slow_sidecar(tmp_path, "--concurrency", "2") as (proxy, outbound):
        sent = 0

        def spread_over_both_workers() -> bool:
            nonlocal sent
            for _ in range(10):
                conn = http.client.HTTPConnection("127.0.0.1", outbound, timeout=10)
                try:
                    conn.request("GET", "/", headers={"Host": HOST})
                    response = conn.getresponse()
                    assert (response.status, response.read()) == (200, b"quick")
                finally:
                    conn.close()
                sent += 1
            # Only worker 0 serves the admin port: it counts a share of the requests.
            return 0 < proxy.stat("http.outbound.downstream_rq_total") < sent

        wait_until(spread_over_both_workers, timeout=20, interval=0)
        assert json.loads(proxy.get("/server_info"))["command_line_options"]["concurrency"] == 2
        proxy.process.proc.send_signal(signal.SIGTERM)
        assert proxy.process.proc.wait(15) == 0


def test_the_garbage_collector_is_tuned_for_the_data_path() -> None:
    code = (
        "import gc; from pydp.cli import tune_gc; tune_gc(); "
        "print(gc.get_threshold(), gc.get_freeze_count() > 1000)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "(10000, 10, 10) True"
