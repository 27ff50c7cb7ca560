"""The sidecar's start: the bootstrap from the downward API, the data plane exec'd, the probe."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from api import contract
from tests.xds_server.translate.envoy_bootstrap import envoy_binary
from xds_server.bootstrap import XDS_CLUSTER
from xds_server.inject.sidecar import SidecarError, command, probe, sidecar_bootstrap

ENV = {"POD_NAME": "reviews-7d9f-x2x", "POD_NAMESPACE": "shop", "SERVICE_ACCOUNT": "reviews"}


def xds_cluster(bootstrap: dict[str, object]) -> dict[str, object]:
    static = bootstrap["static_resources"]
    assert isinstance(static, dict)
    (cluster,) = [c for c in static["clusters"] if c["name"] == XDS_CLUSTER]
    assert isinstance(cluster, dict)
    return cluster


def test_the_node_is_the_pod_the_downward_api_describes() -> None:
    bootstrap = sidecar_bootstrap(
        ENV, dataplane="pydp", xds_address="10.96.0.10:18000", app_port=9080, delta=True
    )
    node = bootstrap["node"]
    assert node["id"] == "reviews-7d9f-x2x.shop"
    assert node["cluster"] == "reviews.shop"
    metadata = node["metadata"]
    assert metadata[contract.META_NAMESPACE] == "shop"
    assert metadata[contract.META_SERVICE_ACCOUNT] == "reviews"
    assert metadata[contract.META_POD_NAME] == "reviews-7d9f-x2x"
    assert metadata[contract.META_APP_PORT] == "9080"
    assert metadata[contract.META_DATAPLANE] == "pydp"
    assert bootstrap["dynamic_resources"]["ads_config"]["api_type"] == "DELTA_GRPC"
    assert xds_cluster(bootstrap)["type"] == "STATIC", "an IP address needs no DNS"


def test_a_control_plane_addressed_by_name_is_resolved_by_dns() -> None:
    bootstrap = sidecar_bootstrap(
        ENV, dataplane="envoy", xds_address="xds-server.xdsmesh-system.svc:18000", app_port=80
    )
    cluster = xds_cluster(bootstrap)
    assert cluster["type"] == "STRICT_DNS"
    address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]  # type: ignore[index]
    assert address["endpoint"]["address"]["socket_address"] == {
        "address": "xds-server.xdsmesh-system.svc",
        "port_value": 18000,
    }


def test_envoy_accepts_the_sidecar_bootstrap(tmp_path: Path) -> None:
    bootstrap = sidecar_bootstrap(
        ENV, dataplane="envoy", xds_address="xds-server.xdsmesh-system.svc:18000", app_port=80
    )
    config = tmp_path / "bootstrap.yaml"
    config.write_text(yaml.safe_dump(bootstrap))
    done = subprocess.run(
        [
            os.fspath(envoy_binary()),
            "--mode",
            "validate",
            "--use-dynamic-base-id",
            "-c",
            os.fspath(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_missing_downward_api_variable_is_named() -> None:
    with pytest.raises(SidecarError) as caught:
        sidecar_bootstrap(
            {"POD_NAME": "p"}, dataplane="envoy", xds_address="10.0.0.1:18000", app_port=80
        )
    assert str(caught.value).startswith("POD_NAMESPACE, SERVICE_ACCOUNT not set")


def test_the_data_plane_commands_read_the_bootstrap() -> None:
    assert command("envoy", "/etc/xdsmesh/b.yaml")[:3] == ["envoy", "-c", "/etc/xdsmesh/b.yaml"]
    assert command("pydp", "/b.yaml") == ["pydp", "run", "-c", "/b.yaml"]
    with pytest.raises(SidecarError):
        command("linkerd", "/b.yaml")


def test_the_sidecar_writes_its_bootstrap_and_becomes_the_data_plane(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "envoy"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "envoy $*"\n')
    fake.chmod(0o755)
    config = tmp_path / "config" / "bootstrap.yaml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "xds_server.inject.sidecar",
            "--xds-address",
            "xds-server.xdsmesh-system.svc:18000",
            "--app-port",
            "9080",
            "--config",
            str(config),
        ],
        env={**os.environ, **ENV, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"envoy -c {config} --log-level warn\n"
    written = yaml.safe_load(config.read_text())
    assert written["node"]["id"] == "reviews-7d9f-x2x.shop"


def run_sidecar(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "bin" / "pydp"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    return subprocess.run(
        [
            *(sys.executable, "-m", "xds_server.inject.sidecar", "--dataplane", "pydp"),
            *("--xds-address", "10.96.0.10:18000", "--config", str(tmp_path / "b.yaml"), *extra),
        ],
        env={**os.environ, **ENV, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_pods_token_goes_on_the_xds_stream(tmp_path: Path) -> None:
    token = tmp_path / "xds-token"
    token.write_text("eyJhbGciOi.payload.signature\n")
    done = run_sidecar(tmp_path, "--xds-token-file", str(token))
    assert done.returncode == 0, done.stderr
    grpc = yaml.safe_load((tmp_path / "b.yaml").read_text())["dynamic_resources"]["ads_config"]
    metadata = grpc["grpc_services"][0]["initial_metadata"]
    assert metadata == [{"key": "authorization", "value": "Bearer eyJhbGciOi.payload.signature"}]


def test_without_a_token_file_the_stream_carries_none(tmp_path: Path) -> None:
    done = run_sidecar(tmp_path, "--xds-token-file", str(tmp_path / "absent"))
    assert done.returncode == 0, done.stderr
    assert "initial_metadata" not in (tmp_path / "b.yaml").read_text()


def test_an_unusable_token_file_is_named(tmp_path: Path) -> None:
    token = tmp_path / "xds-token"
    token.write_text("two tokens\n")
    done = run_sidecar(tmp_path, "--xds-token-file", str(token))
    assert done.returncode == 1
    assert f"the xDS token {token} is empty or holds more than one token" in done.stderr


def test_the_sidecar_without_its_environment_exits_with_the_reason(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "xds_server.inject.sidecar",
            "--xds-address",
            "10.0.0.1:18000",
            "--config",
            str(tmp_path / "b.yaml"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "POD_NAME, POD_NAMESPACE, SERVICE_ACCOUNT not set" in done.stderr


@contextmanager
def admin(status: int) -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/ready" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_probe_is_the_admin_ready_endpoint() -> None:
    with admin(200) as port:
        assert probe(port)
    with admin(503) as port:
        assert not probe(port)
    assert not probe(port), "nothing listening"
