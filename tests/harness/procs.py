"""The real `xds-server` and `envoy` processes, started as a user would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.harness.net import free_port, wait_http

BIN = Path(sys.executable).parent


def binary(name: str) -> str:
    """A console script of this environment, or from PATH; absent is a failure."""
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    assert path, f"{name} is not installed: the test command installs it (tests/run.sh)"
    return path


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def process(args: Sequence[str], log: Path) -> Iterator[Process]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    p = Process(proc, log)
    try:
        yield p
    finally:
        p.stop()


@dataclass
class ControlPlane:
    process: Process
    xds_address: str
    admin_url: str

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.admin_url + path, timeout=5) as r:
            return json.loads(r.read())

    def syncz(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/debug/syncz")
        return result

    def bootstrap(self, node_id: str, namespace: str, *extra: str) -> str:
        out = subprocess.run(
            [
                binary("xds-server"),
                "bootstrap",
                "--node-id",
                node_id,
                "--namespace",
                namespace,
                "--xds-address",
                self.xds_address,
                *extra,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout


@contextmanager
def control_plane(manifests: Path, workdir: Path, *extra: str) -> Iterator[ControlPlane]:
    xds = f"127.0.0.1:{free_port()}"
    admin_port = free_port()
    args = [
        binary("xds-server"),
        "serve",
        "--manifests",
        str(manifests),
        "--xds-address",
        xds,
        "--admin-address",
        f"127.0.0.1:{admin_port}",
        "--debounce-quiet",
        "0.05",
        "--debounce-max",
        "0.5",
        *extra,
    ]
    with process(args, workdir / "xds-server.log") as p:
        url = f"http://127.0.0.1:{admin_port}"
        try:
            wait_http(url + "/ready")
        except TimeoutError:
            raise AssertionError(f"xds-server did not become ready:\n{p.output()}") from None
        yield ControlPlane(p, xds, url)


@dataclass
class Envoy:
    process: Process
    admin_url: str

    def stat(self, name: str) -> int:
        with urllib.request.urlopen(f"{self.admin_url}/stats?filter=^{name}$", timeout=5) as r:
            for line in r.read().decode().splitlines():
                key, _, value = line.partition(": ")
                if key == name:
                    return int(value)
        return 0

    def hosts(self, cluster: str) -> int:
        """How many hosts Envoy has in `cluster` now."""
        with urllib.request.urlopen(f"{self.admin_url}/clusters?format=json", timeout=5) as r:
            for status in json.loads(r.read()).get("cluster_statuses", []):
                if status["name"] == cluster:
                    return len(status.get("host_statuses", []))
        return 0

    def stats(self, prefix: str) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.admin_url}/stats?filter={prefix}", timeout=5) as r:
            out = {}
            for line in r.read().decode().splitlines():
                key, _, value = line.partition(": ")
                if value.strip().isdigit():
                    out[key] = int(value)
            return out


@contextmanager
def envoy(bootstrap: str, workdir: Path, name: str = "envoy") -> Iterator[Envoy]:
    config = workdir / f"{name}.yaml"
    config.write_text(bootstrap)
    admin_port = _admin_port(bootstrap)
    args = [
        binary("envoy"),
        "-c",
        str(config),
        "--use-dynamic-base-id",
        "--log-level",
        "warn",
        "--concurrency",
        "1",
        "--drain-time-s",
        "1",
    ]
    with process(args, workdir / f"{name}.log") as p:
        url = f"http://127.0.0.1:{admin_port}"
        try:
            wait_http(url + "/ready", timeout=30)
        except TimeoutError:
            raise AssertionError(f"envoy did not become ready:\n{p.output()}") from None
        yield Envoy(p, url)


def _admin_port(bootstrap: str) -> int:
    doc = yaml.safe_load(bootstrap)
    port: int = doc["admin"]["address"]["socket_address"]["port_value"]
    return port
