"""The `pydp` sidecar as a process, started as a user would (`python -m pydp.cli run -c`)."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.harness.net import wait_http
from tests.harness.procs import Process, process


@dataclass
class Pydp:
    """A running pydp and its admin port; the same questions `Envoy` answers."""

    process: Process
    admin_url: str
    config: Path

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.admin_url + path, timeout=5) as r:
            body: bytes = r.read()
            return body.decode()

    def stat(self, name: str) -> int:
        for line in self.get(f"/stats?filter=^{name}$").splitlines():
            key, _, value = line.partition(": ")
            if key == name and value.isdigit():
                return int(value)
        return 0

    def stats(self, prefix: str) -> dict[str, int]:
        out = {}
        for line in self.get(f"/stats?filter={prefix}").splitlines():
            key, _, value = line.partition(": ")
            if value.strip().isdigit():
                out[key] = int(value)
        return out

    def hosts(self, cluster: str) -> int:
        """How many hosts pydp has in `cluster` now."""
        for status in json.loads(self.get("/clusters?format=json")).get("cluster_statuses", []):
            if status["name"] == cluster:
                return len(status.get("host_statuses", []))
        return 0


@contextmanager
def pydp(
    bootstrap: str, workdir: Path, *extra: str, name: str = "pydp", ready: bool = True
) -> Iterator[Pydp]:
    """Run `python -m pydp.cli run -c <bootstrap>`; wait for `/ready` unless `ready` is False."""
    config = workdir / f"{name}.yaml"
    config.write_text(bootstrap)
    doc = yaml.safe_load(bootstrap)
    admin_port = doc["admin"]["address"]["socket_address"]["port_value"]
    args: Sequence[str] = [
        sys.executable,
        "-m",
        "pydp.cli",
        "run",
        "-c",
        str(config),
        "--log-level",
        "warning",
        "--drain-time-s",
        "1",
        *extra,
    ]
    with process(args, workdir / f"{name}.log") as p:
        url = f"http://127.0.0.1:{admin_port}"
        if ready:
            try:
                wait_http(url + "/ready", timeout=30)
            except TimeoutError:
                raise AssertionError(f"pydp did not become ready:\n{p.output()}") from None
        yield Pydp(p, url, config)
