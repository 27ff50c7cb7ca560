"""pydp, pointed at a real xds-server, routes by Service name and follows changes, as Envoy does.

The same checks as `test_envoy_routing.py`, with `python -m pydp.cli run -c` in place of Envoy.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.harness import manifests
from tests.harness.backends import EchoServer, echo_backends
from tests.harness.net import free_port, loopback, wait_until
from tests.harness.procs import ControlPlane, control_plane, envoy
from tests.harness.pydp_proc import Pydp, pydp

SERVICE_PORT = 9080
CLUSTER = f"outbound|{SERVICE_PORT}||reviews.default.svc.cluster.local"


@dataclass
class World:
    cp: ControlPlane
    proxy: Pydp
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


@pytest.fixture(params=["sotw", "delta"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
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
            if request.param == "delta":
                extra.append("--delta")
            with pydp(cp.bootstrap("app-1.default", "default", *extra), tmp_path) as proxy:
                w.cp, w.proxy = cp, proxy
                yield w
                assert proxy.stat("cluster_manager.cds.update_rejected") == 0
                assert proxy.stat("listener_manager.lds.update_rejected") == 0


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
    assert {t["state"] for t in proxy["types"].values()} == {"ACKED"}
    (world.folder / "broken.yaml").unlink()
    wait_until(lambda: not world.cp.get("/debug/errors")["errors"], timeout=5)


def test_admin_shows_the_routed_traffic_and_the_config_as_envoy_names_them(world: World) -> None:
    world.who(f"reviews.default.svc.cluster.local:{SERVICE_PORT}", 6)
    prometheus = world.proxy.get("/stats/prometheus")
    assert (
        "envoy_cluster_default_svc_cluster_local_upstream_rq_xx"
        '{envoy_response_code_class="2",envoy_cluster_name="outbound|9080||reviews"} 6\n'
        in prometheus
    )
    assert (
        'envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="outbound"} 6\n'
        in prometheus
    )
    configs = json.loads(world.proxy.get("/config_dump"))["configs"]
    listeners = next(c for c in configs if c["@type"].endswith("ListenersConfigDump"))
    names = {d["name"]: d for d in listeners["dynamic_listeners"]}
    assert set(names) == {"inbound", "outbound"}
    assert names["outbound"]["active_state"]["version_info"]
    clusters = world.proxy.get("/clusters")
    assert f"{CLUSTER}::added_via_api::true\n" in clusters
    for address in world.backends.values():
        assert f"{CLUSTER}::{address}:{world.backend_port}::health_flags::healthy\n" in clusters


_HOST_STAT = re.compile(
    r"::(cx_active|cx_connect_fail|cx_total|rq_active|rq_error|rq_pending_active|rq_success"
    r"|rq_timeout|rq_total)::\d+$"
)


def _families(prometheus: str) -> dict[str, str]:
    return dict(
        line.split(" ")[2:4] for line in prometheus.splitlines() if line.startswith("# TYPE ")
    )


def _clusters(text: str) -> set[str]:
    """`/clusters` lines, counters masked; Envoy's bootstrap cluster for xDS left out."""
    return {
        _HOST_STAT.sub(r"::\1::N", line) for line in text.splitlines() if "xds_cluster" not in line
    }


def _names(config: dict[str, Any], field: str, key: str) -> set[tuple[str, str]]:
    out = set()
    for item in config.get(field, []):
        state = item.get("active_state", item)
        resource = state.get(key, {})
        out.add((resource.get("name", item.get("name", "")), state.get("version_info", "")))
    return out


def test_admin_endpoints_match_a_stock_envoy_on_the_same_control_plane(
    world: World, tmp_path: Path
) -> None:
    outbound = free_port()
    bootstrap = world.cp.bootstrap(
        "app-2.default",
        "default",
        "--admin-port",
        str(free_port()),
        "--outbound-port",
        str(outbound),
        "--inbound-port",
        str(free_port()),
    )
    with envoy(bootstrap, tmp_path) as stock:
        ours, theirs = world.proxy, stock
        stock_world = replace(world, outbound=outbound)
        for side in (world, stock_world):  # the same traffic through both
            side.who(f"reviews.default.svc.cluster.local:{SERVICE_PORT}", 3)
            assert side.get("unknown:1")[0] == 404

        def fetch(admin_url: str, path: str) -> str:
            with urllib.request.urlopen(admin_url + path, timeout=5) as r:
                body: bytes = r.read()
                return body.decode()

        envoy_families = _families(fetch(theirs.admin_url, "/stats/prometheus"))
        for family, kind in _families(ours.get("/stats/prometheus")).items():
            assert envoy_families.get(family) == kind, family
        assert _clusters(ours.get("/clusters")) == _clusters(fetch(theirs.admin_url, "/clusters"))
        assert {line.split("::")[0] for line in ours.get("/listeners").splitlines()} == {
            line.split("::")[0] for line in fetch(theirs.admin_url, "/listeners").splitlines()
        }
        mine = json.loads(ours.get("/config_dump"))["configs"]
        stock_dump = json.loads(fetch(theirs.admin_url, "/config_dump"))["configs"]
        assert [c["@type"] for c in mine] == [c["@type"] for c in stock_dump]
        for a, b in zip(mine, stock_dump, strict=True):
            assert sorted(a) == sorted(b), a["@type"]
        assert _names(mine[1], "dynamic_active_clusters", "cluster") == _names(
            stock_dump[1], "dynamic_active_clusters", "cluster"
        )
        assert _names(mine[2], "dynamic_listeners", "listener") == _names(
            stock_dump[2], "dynamic_listeners", "listener"
        )
        assert _names(mine[4], "dynamic_route_configs", "route_config") == _names(
            stock_dump[4], "dynamic_route_configs", "route_config"
        )
