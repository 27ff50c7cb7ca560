"""pydp's admin endpoints, after real traffic, read as a stock Envoy's do.

The routing checks themselves run on both data planes in `test_routing.py`.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.harness.net import free_port
from tests.harness.procs import envoy
from tests.harness.pydp_proc import Pydp
from tests.integration.test_routing import CLUSTER, SERVICE_PORT, World, open_world


@pytest.fixture(params=["sotw", "delta"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    with open_world(tmp_path, "pydp", request.param) as w:
        yield w


def test_admin_shows_the_routed_traffic_and_the_config_as_envoy_names_them(world: World) -> None:
    world.who(f"reviews.default.svc.cluster.local:{SERVICE_PORT}", 6)
    prometheus = _pydp(world).get("/stats/prometheus")
    assert (
        "envoy_cluster_default_svc_cluster_local_upstream_rq_xx"
        '{envoy_response_code_class="2",envoy_cluster_name="outbound|9080||reviews"} 6\n'
        in prometheus
    )
    assert (
        'envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="outbound"} 6\n'
        in prometheus
    )
    configs = json.loads(_pydp(world).get("/config_dump"))["configs"]
    listeners = next(c for c in configs if c["@type"].endswith("ListenersConfigDump"))
    names = {d["name"]: d for d in listeners["dynamic_listeners"]}
    assert set(names) == {"inbound", "outbound"}
    assert names["outbound"]["active_state"]["version_info"]
    clusters = _pydp(world).get("/clusters")
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
        ours, theirs = _pydp(world), stock
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


def _pydp(world: World) -> Pydp:
    assert isinstance(world.proxy, Pydp)
    return world.proxy
