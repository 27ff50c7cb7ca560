"""The admin endpoints: status codes, wording and formats as Envoy 1.40 prints them.

The expected texts were captured from a stock Envoy 1.40 admin port (the
same control plane and cluster names) and are repeated here literally.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import h11
import trio
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from google.protobuf import json_format

from api import contract
from pydp import admin_views
from pydp.admin import AdminHandler, serve_admin
from pydp.config_dump import Failure, build_config_dump
from pydp.stats import Stats
from pydp.stats_export import StatsView
from pydp.upstream import UpstreamCluster, compile_cluster, compile_load_assignment
from pydp.upstream.hosts import Host
from pydp.xds.decode import Resource, Update
from pydp.xds.store import ConfigStore
from tests.harness.net import loopback
from tests.pydp.listener.builders import listener

CLUSTER = "outbound|9080||reviews.default.svc.cluster.local"


def eds_cluster() -> Any:
    cluster = cluster_pb2.Cluster(name=CLUSTER, type=cluster_pb2.Cluster.EDS)
    cluster.eds_cluster_config.eds_config.ads.SetInParent()
    cluster.eds_cluster_config.service_name = CLUSTER
    return cluster


def assignment(*addresses: str) -> Any:
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=CLUSTER)
    group = cla.endpoints.add()
    for address in addresses:
        socket = group.lb_endpoints.add().endpoint.address.socket_address
        socket.address, socket.port_value = address, 9080
    return cla


def upstream() -> UpstreamCluster:
    cluster = UpstreamCluster(compile_cluster(eds_cluster()))
    cluster.update_assignment(compile_load_assignment(assignment("10.0.0.1", "10.0.0.2"), "cla"))
    return cluster


class FakeBackend:
    def __init__(self) -> None:
        self.state = "LIVE"
        self.stats = Stats()
        self.cluster = upstream()
        self.quit = False
        self.drained = False
        self.store = ConfigStore()

    def server_state(self) -> str:
        return self.state

    def stats_view(self) -> StatsView:
        return StatsView(dict(self.stats.counters), dict(self.stats.gauges), {})

    def config_dump(self, include_eds: bool) -> Any:
        return build_config_dump(self.store.dump(), include_eds=include_eds)

    def cluster_entries(self) -> list[admin_views.ClusterEntry]:
        return [admin_views.ClusterEntry(CLUSTER, self.cluster)]

    def host_counters(self, cluster: str, host: Host) -> Mapping[str, int]:
        return {"cx_active": 1, "rq_total": 4} if host.address == "10.0.0.1" else {}

    def listener_entries(self) -> list[admin_views.ListenerEntry]:
        return [admin_views.ListenerEntry("outbound", "127.0.0.1", 15001)]

    def server_info(self) -> dict[str, Any]:
        return {"state": self.state}

    def request_quit(self) -> None:
        self.quit = True

    def drain_listeners(self) -> None:
        self.drained = True


def get(backend: FakeBackend, target: str, method: str = "GET") -> tuple[int, str, str]:
    response = AdminHandler(backend).handle(method, target)
    return response.status, response.body.decode(), response.content_type


def test_ready_is_200_live_once_initialized_and_503_before() -> None:
    backend = FakeBackend()
    assert get(backend, "/ready") == (200, "LIVE\n", "text/plain; charset=UTF-8")
    for state in ("PRE_INITIALIZING", "INITIALIZING", "DRAINING"):
        backend.state = state
        assert get(backend, "/ready")[:2] == (503, f"{state}\n")


def test_stats_text_with_a_filter_and_envoys_error_for_a_bad_regex() -> None:
    backend = FakeBackend()
    backend.stats.inc("http.outbound.downstream_rq_total", 3)
    backend.stats.inc("cluster_manager.cds.update_success")
    backend.stats.gauge_set("server.live", 1)
    status, body, _ = get(backend, "/stats")
    assert status == 200
    assert body == (
        "cluster_manager.cds.update_success: 1\n"
        "http.outbound.downstream_rq_total: 3\n"
        "server.live: 1\n"
    )
    assert get(backend, "/stats?filter=^server%5C.")[1] == "server.live: 1\n"
    status, body, _ = get(backend, "/stats?filter=(")
    assert status == 400
    assert body.startswith("Invalid re2 regex: ")
    status, body, content_type = get(backend, "/stats?format=json&filter=live")
    assert content_type == "application/json"
    assert json.loads(body) == {"stats": [{"name": "server.live", "value": 1}]}


def test_stats_prometheus_names_and_tags() -> None:
    backend = FakeBackend()
    backend.stats.inc(f"cluster.{CLUSTER}.upstream_rq_2xx", 2)
    backend.stats.inc("cluster.xds.upstream_rq_retry", 1)
    backend.stats.gauge_set("cluster.xds.upstream_cx_active", 1)
    backend.stats.inc("http.outbound.downstream_rq_total", 5)
    status, body, content_type = get(backend, "/stats/prometheus")
    assert (status, content_type) == (200, "text/plain; charset=UTF-8")
    assert (
        "envoy_cluster_default_svc_cluster_local_upstream_rq_xx"
        '{envoy_response_code_class="2",envoy_cluster_name="outbound|9080||reviews"} 2\n' in body
    )
    assert 'envoy_cluster_upstream_rq_retry{envoy_cluster_name="xds"} 1\n' in body
    assert "# TYPE envoy_cluster_upstream_cx_active gauge\n" in body
    assert 'envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="outbound"} 5\n' in body
    assert get(backend, "/stats?format=prometheus")[1] == body


def test_clusters_text_is_envoys() -> None:
    status, body, _ = get(FakeBackend(), "/clusters")
    assert status == 200
    lines = body.splitlines()
    assert lines[:11] == [
        f"{CLUSTER}::observability_name::{CLUSTER}",
        f"{CLUSTER}::default_priority::max_connections::1024",
        f"{CLUSTER}::default_priority::max_pending_requests::1024",
        f"{CLUSTER}::default_priority::max_requests::1024",
        f"{CLUSTER}::default_priority::max_retries::3",
        f"{CLUSTER}::high_priority::max_connections::1024",
        f"{CLUSTER}::high_priority::max_pending_requests::1024",
        f"{CLUSTER}::high_priority::max_requests::1024",
        f"{CLUSTER}::high_priority::max_retries::3",
        f"{CLUSTER}::added_via_api::true",
        f"{CLUSTER}::eds_service_name::{CLUSTER}",
    ]
    host = f"{CLUSTER}::10.0.0.1:9080::"
    assert lines[11:30] == [
        host + "cx_active::1",
        host + "cx_connect_fail::0",
        host + "cx_total::0",
        host + "rq_active::0",
        host + "rq_error::0",
        host + "rq_pending_active::0",
        host + "rq_success::0",
        host + "rq_timeout::0",
        host + "rq_total::4",
        host + "hostname::",
        host + "health_flags::healthy",
        host + "weight::1",
        host + "region::",
        host + "zone::",
        host + "sub_zone::",
        host + "canary::false",
        host + "priority::0",
        host + "success_rate::-1",
        host + "local_origin_success_rate::-1",
    ]
    assert lines[30].startswith(f"{CLUSTER}::10.0.0.2:9080::cx_active::0")


def test_health_flags_name_outlier_ejection_and_eds_health() -> None:
    backend = FakeBackend()
    host = next(iter(backend.cluster.hosts.values()))
    host.ejected = True
    assert admin_views.health_flags(host) == "/failed_outlier_check"
    assert (
        f"{CLUSTER}::10.0.0.1:9080::health_flags::/failed_outlier_check"
        in get(backend, "/clusters")[1]
    )


def test_clusters_json_is_envoys_cluster_statuses() -> None:
    status, body, content_type = get(FakeBackend(), "/clusters?format=json")
    assert (status, content_type) == (200, "application/json")
    [cluster] = json.loads(body)["cluster_statuses"]
    assert cluster["name"] == CLUSTER
    assert cluster["added_via_api"] is True
    assert cluster["observability_name"] == CLUSTER
    assert cluster["eds_service_name"] == CLUSTER
    assert cluster["circuit_breakers"]["thresholds"][1] == {
        "priority": "HIGH",
        "max_connections": 1024,
        "max_pending_requests": 1024,
        "max_requests": 1024,
        "max_retries": 3,
    }
    first = cluster["host_statuses"][0]
    assert first["address"] == {"socket_address": {"address": "10.0.0.1", "port_value": 9080}}
    assert first["health_status"] == {"eds_health_status": "HEALTHY"}
    assert first["weight"] == 1
    assert {"type": "GAUGE", "value": "1", "name": "cx_active"} in first["stats"]
    assert {"value": "4", "name": "rq_total"} in first["stats"]
    assert {"name": "cx_connect_fail"} in first["stats"]


def test_listeners_text_and_json() -> None:
    assert get(FakeBackend(), "/listeners")[1] == "outbound::127.0.0.1:15001\n"
    body = json.loads(get(FakeBackend(), "/listeners?format=json")[1])
    assert body == {
        "listener_statuses": [
            {
                "name": "outbound",
                "local_address": {"socket_address": {"address": "127.0.0.1", "port_value": 15001}},
            }
        ]
    }


def test_unknown_paths_get_404_with_the_list_of_commands() -> None:
    status, body, _ = get(FakeBackend(), "/nope")
    assert status == 404
    assert body.startswith("invalid path. admin commands are:\n")
    assert "  /quitquitquit (POST): exit the server\n" in body


def test_quitquitquit_needs_post_as_in_envoy() -> None:
    backend = FakeBackend()
    assert get(backend, "/quitquitquit") == (
        405,
        "Method GET not allowed, POST required.",
        "text/plain; charset=UTF-8",
    )
    assert not backend.quit
    assert get(backend, "/quitquitquit", "POST")[:2] == (200, "OK\n")
    assert backend.quit
    assert get(backend, "/drain_listeners", "POST")[:2] == (200, "OK\n")
    assert backend.drained


def test_a_failing_endpoint_answers_500_and_the_server_keeps_going() -> None:
    backend = FakeBackend()

    def broken() -> StatsView:
        raise RuntimeError("boom")

    backend.stats_view = broken  # type: ignore[method-assign]
    assert get(backend, "/stats")[:2] == (500, "RuntimeError: boom\n")
    assert get(backend, "/ready")[0] == 200


def resource(type_url: str, name: str, message: Any, version: str = "1") -> Resource:
    return Resource(name, version, message, message.SerializeToString())


def fill(store: ConfigStore) -> None:
    store.apply(
        Update(
            contract.TYPE_CLUSTER,
            "n1",
            "1",
            {CLUSTER: resource(contract.TYPE_CLUSTER, CLUSTER, eds_cluster())},
            complete=True,
        )
    )
    store.apply(
        Update(
            contract.TYPE_ENDPOINT,
            "n2",
            "1",
            {CLUSTER: resource(contract.TYPE_ENDPOINT, CLUSTER, assignment("10.0.0.1"))},
        )
    )
    message = listener(port=15001)
    store.apply(
        Update(
            contract.TYPE_LISTENER,
            "n3",
            "1",
            {"outbound": resource(contract.TYPE_LISTENER, "outbound", message)},
            complete=True,
        )
    )


def test_config_dump_is_shaped_as_envoys() -> None:
    backend = FakeBackend()
    fill(backend.store)
    status, body, content_type = get(backend, "/config_dump")
    assert (status, content_type) == (200, "application/json")
    configs = json.loads(body)["configs"]
    assert [c["@type"].rsplit(".", 1)[1] for c in configs] == [
        "ClustersConfigDump",
        "ListenersConfigDump",
        "ScopedRoutesConfigDump",
        "RoutesConfigDump",
        "SecretsConfigDump",
    ]
    clusters, listeners = configs[0], configs[1]
    assert clusters["version_info"] == "1"
    [active] = clusters["dynamic_active_clusters"]
    assert active["version_info"] == "1"
    assert active["cluster"]["@type"] == "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    assert active["cluster"]["name"] == CLUSTER
    assert active["last_updated"].endswith("Z")
    [dynamic] = listeners["dynamic_listeners"]
    assert dynamic["name"] == "outbound"
    assert set(dynamic) == {"name", "warming_state"}  # waits for RDS `outbound`
    state = dynamic["warming_state"]
    assert state["version_info"] == "1"
    assert state["listener"]["address"]["socket_address"]["port_value"] == 15001
    typed = state["listener"]["filter_chains"][0]["filters"][0]["typed_config"]
    assert typed["@type"].endswith("HttpConnectionManager")


def test_config_dump_include_eds_and_resource() -> None:
    backend = FakeBackend()
    fill(backend.store)
    configs = json.loads(get(backend, "/config_dump?include_eds")[1])["configs"]
    endpoints = configs[1]
    assert endpoints["@type"].endswith("EndpointsConfigDump")
    [config] = endpoints["dynamic_endpoint_configs"]
    assert config["endpoint_config"]["cluster_name"] == CLUSTER
    body = json.loads(get(backend, "/config_dump?resource=dynamic_active_clusters")[1])
    [item] = body["configs"]
    assert item["@type"] == ("type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster")
    assert get(backend, "/config_dump?resource=nothing")[0] == 404


def test_config_dump_error_state_of_a_rejected_listener() -> None:
    failed = listener(port=15009)
    failure = Failure("outbound", failed, "listener outbound: x: bad", "2", 1_700_000_000.5)
    dump = build_config_dump([], failures={contract.TYPE_LISTENER: {"outbound": failure}})
    body = json_format.MessageToDict(dump, preserving_proto_field_name=True)
    [dynamic] = body["configs"][1]["dynamic_listeners"]
    assert dynamic["name"] == "outbound"
    assert dynamic["error_state"]["details"] == "listener outbound: x: bad"
    assert dynamic["error_state"]["version_info"] == "2"
    assert dynamic["error_state"]["last_update_attempt"] == "2023-11-14T22:13:20.500Z"
    assert dynamic["error_state"]["failed_configuration"]["name"] == "outbound"


async def request(port: int, address: str, *targets: tuple[str, str]) -> list[tuple[int, bytes]]:
    """Several requests on one keep-alive connection."""
    stream = await trio.open_tcp_stream(address, port)
    conn = h11.Connection(h11.CLIENT)
    out = []
    async with stream:
        for method, target in targets:
            await stream.send_all(
                conn.send(h11.Request(method=method, target=target, headers=[("host", "admin")]))
                + conn.send(h11.EndOfMessage())
            )
            status, body = 0, b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some())
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            out.append((status, body))
            conn.start_next_cycle()
    return out


async def test_the_admin_server_answers_over_http_keeping_the_connection_alive(
    nursery: trio.Nursery,
) -> None:
    backend = FakeBackend()
    address = loopback()
    port = await nursery.start(serve_admin, AdminHandler(backend), address, 0)
    answers = await request(
        port, address, ("GET", "/ready"), ("GET", "/nope"), ("POST", "/quitquitquit")
    )
    assert answers[0] == (200, b"LIVE\n")
    assert answers[1][0] == 404
    assert answers[2] == (200, b"OK\n")
    assert backend.quit
