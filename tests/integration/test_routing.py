"""Each data plane (stock Envoy, pydp), pointed at a real xds-server, routes by Service name
and follows changes, in State of the World and Delta."""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import manifests
from tests.harness.backends import EchoServer, echo_backends
from tests.harness.net import free_port, loopback, wait_until
from tests.harness.procs import ControlPlane, Envoy, control_plane, envoy
from tests.harness.pydp_proc import Pydp, pydp

SERVICE_PORT = 9080
CLUSTER = f"outbound|{SERVICE_PORT}||reviews.default.svc.cluster.local"


@dataclass
class World:
    cp: ControlPlane
    proxy: Envoy | Pydp
    outbound: int
    folder: Path
    backends: dict[str, str]
    backend_port: int
    servers: dict[str, EchoServer]

    def get(self, host: str, path: str = "/") -> tuple[int, dict[str, object]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.outbound, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": host})
            response = conn.getresponse()
            body = response.read()
            return response.status, json.loads(body) if response.status == 200 else {}
        finally:
            conn.close()

    def who(self, host: str, n: int) -> Counter[str]:
        seen: Counter[str] = Counter()
        for _ in range(n):
            status, body = self.get(host)
            assert status == 200, f"{host}: {status}"
            seen[str(body["name"])] += 1
        return seen

    def publish(self, addresses: list[str]) -> None:
        manifests.write(
            self.folder / "reviews.yaml",
            manifests.service(
                "reviews",
                "default",
                SERVICE_PORT,
                self.backend_port,
                addresses,
                cluster_ip="10.96.0.20",
            ),
        )


@contextmanager
def open_world(tmp_path: Path, dataplane: str, xds: str) -> Iterator[World]:
    """Backends, xds-server and one sidecar of `dataplane` ("envoy" or "pydp")."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    names = {f"reviews-{i}": loopback() for i in range(3)}
    port = free_port(next(iter(names.values())))
    with echo_backends(names, port) as servers:
        w = World(None, None, free_port(), folder, names, port, servers)  # type: ignore[arg-type]
        w.publish(list(names.values()))
        with control_plane(folder, tmp_path) as cp:
            extra = [
                "--admin-port",
                str(free_port()),
                "--outbound-port",
                str(w.outbound),
                "--inbound-port",
                str(free_port()),
            ]
            if xds == "delta":
                extra.append("--delta")
            start = envoy if dataplane == "envoy" else pydp
            with start(cp.bootstrap("app-1.default", "default", *extra), tmp_path) as proxy:
                w.cp, w.proxy = cp, proxy
                yield w
                assert proxy.stat("cluster_manager.cds.update_rejected") == 0
                assert proxy.stat("listener_manager.lds.update_rejected") == 0


@pytest.fixture(params=[(p, x) for p in ("envoy", "pydp") for x in ("sotw", "delta")], ids="-".join)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    with open_world(tmp_path, *request.param) as w:
        yield w


def test_every_host_form_reaches_the_service(world: World) -> None:
    for host in (
        f"reviews.default.svc.cluster.local:{SERVICE_PORT}",
        f"reviews.default.svc:{SERVICE_PORT}",
        f"reviews.default:{SERVICE_PORT}",
        f"reviews:{SERVICE_PORT}",
        f"10.96.0.20:{SERVICE_PORT}",
    ):
        status, body = world.get(host, "/hello?x=1")
        assert status == 200, host
        assert str(body["name"]).startswith("reviews-")
        assert body["path"] == "/hello?x=1"
    assert world.get("reviews.default.svc.cluster.local:1234")[0] == 404


def test_traffic_spreads_over_every_ready_endpoint(world: World) -> None:
    seen = world.who(f"reviews.default.svc.cluster.local:{SERVICE_PORT}", 30)
    assert set(seen) == set(world.backends)


def test_removed_endpoint_leaves_rotation_while_requests_keep_succeeding(world: World) -> None:
    host = f"reviews.default.svc.cluster.local:{SERVICE_PORT}"
    failures: list[object] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                status, _ = world.get(host)
                if status != 200:
                    failures.append(status)
            except OSError as e:
                failures.append(e)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        wait_until(lambda: all(s.hits for s in world.servers.values()))
        world.publish([world.backends["reviews-0"], world.backends["reviews-1"]])
        gone = world.servers["reviews-2"]
        wait_until(lambda: world.proxy.hosts(CLUSTER) == 2, timeout=2)
        before = {name: s.hits for name, s in world.servers.items()}
        wait_until(
            lambda: all(world.servers[n].hits > before[n] + 20 for n in ("reviews-0", "reviews-1"))
        )
        assert gone.hits == before["reviews-2"]
    finally:
        stop.set()
        thread.join()
    assert failures == []


def test_broken_manifest_changes_nothing_that_works(world: World) -> None:
    host = f"reviews.default.svc.cluster.local:{SERVICE_PORT}"
    (world.folder / "broken.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: cart}\nspec:\n  ports: [{port: nope}]\n"
    )
    wait_until(lambda: world.cp.get("/debug/errors")["errors"], timeout=5)
    [error] = world.cp.get("/debug/errors")["errors"]
    assert "broken.yaml" in error and "cart" in error and "port" in error
    assert "broken.yaml" in world.cp.process.output()
    assert set(world.who(host, 30)) == set(world.backends)
    [proxy] = world.cp.syncz()
    assert proxy["proxy"] == "app-1.default"
    # the broken manifest published nothing: every type stays ACKED (an ACK can trail traffic)
    wait_until(lambda: {t["state"] for t in world.cp.syncz()[0]["types"].values()} == {"ACKED"})
    (world.folder / "broken.yaml").unlink()
    wait_until(lambda: not world.cp.get("/debug/errors")["errors"], timeout=5)
