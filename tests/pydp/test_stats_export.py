"""Stats as Envoy's admin prints them, checked against a real Envoy where it is cheap."""

from __future__ import annotations

import http.client
import re
import urllib.request
from pathlib import Path

from pydp.stats import Histogram
from pydp.stats_export import (
    StatsView,
    prometheus_name,
    quantile,
    render_json,
    render_prometheus,
    render_text,
)
from pydp.stats_tags import extract_tags
from tests.harness.backends import echo_backends
from tests.harness.net import free_port, loopback
from tests.harness.procs import envoy

CLUSTER = "outbound|9080||reviews.default.svc.cluster.local"
HCM = (
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)


def test_envoys_default_tags_are_extracted() -> None:
    assert extract_tags(f"cluster.{CLUSTER}.upstream_rq_2xx") == (
        "cluster.default.svc.cluster.local.upstream_rq_xx",
        (("envoy.response_code_class", "2"), ("envoy.cluster_name", "outbound|9080||reviews")),
    )
    assert extract_tags("cluster.xds.upstream_rq_503") == (
        "cluster.upstream_rq",
        (("envoy.response_code", "503"), ("envoy.cluster_name", "xds")),
    )
    assert extract_tags("http.outbound.downstream_rq_total") == (
        "http.downstream_rq_total",
        (("envoy.http_conn_manager_prefix", "outbound"),),
    )
    assert extract_tags("listener.127.0.0.1_15001.downstream_cx_total") == (
        "listener.downstream_cx_total",
        (("envoy.listener_address", "127.0.0.1_15001"),),
    )
    assert extract_tags("listener.admin.downstream_cx_total") == (
        "listener.admin.downstream_cx_total",
        (),
    )
    assert extract_tags("http.inbound.rds.inbound.update_rejected") == (
        "http.rds.update_rejected",
        (("envoy.rds_route_config", "inbound"), ("envoy.http_conn_manager_prefix", "inbound")),
    )
    assert extract_tags("tcp.db.downstream_cx_total")[1] == (("envoy.tcp_prefix", "db"),)
    assert extract_tags("server.live") == ("server.live", ())


def test_prometheus_text_groups_families_by_type() -> None:
    histogram = Histogram()
    histogram.observe(3.0)
    histogram.observe(700.0)
    view = StatsView(
        counters={
            "cluster.a.upstream_rq_200": 4,
            "cluster.b.upstream_rq_200": 1,
            "cluster.a.upstream_rq_2xx": 4,
            "server.x": 0,
        },
        gauges={"server.live": 1, "cluster.a.upstream_cx_active": 2},
        histograms={"cluster.a.upstream_rq_time": histogram},
    )
    text = render_prometheus(view)
    assert text.startswith(
        "# TYPE envoy_cluster_upstream_rq counter\n"
        'envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="a"} 4\n'
        'envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="b"} 1\n'
        "# TYPE envoy_cluster_upstream_rq_xx counter\n"
        'envoy_cluster_upstream_rq_xx{envoy_response_code_class="2",envoy_cluster_name="a"} 4\n'
        "# TYPE envoy_server_x counter\n"
        "envoy_server_x{} 0\n"
        "# TYPE envoy_cluster_upstream_cx_active gauge\n"
    )
    assert "# TYPE envoy_cluster_upstream_rq_time histogram\n" in text
    assert 'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="a",le="0.5"} 0\n' in text
    assert 'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="a",le="5"} 1\n' in text
    assert 'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="a",le="1000"} 2\n' in text
    assert 'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="a",le="+Inf"} 2\n' in text
    assert 'envoy_cluster_upstream_rq_time_sum{envoy_cluster_name="a"} 703\n' in text
    assert 'envoy_cluster_upstream_rq_time_count{envoy_cluster_name="a"} 2\n' in text
    assert render_prometheus(view, re.compile("live")) == (
        "# TYPE envoy_server_live gauge\nenvoy_server_live{} 1\n"
    )


def test_label_values_are_escaped() -> None:
    view = StatsView(counters={'cluster.a"b\\c.upstream_cx_total': 1}, gauges={}, histograms={})
    assert 'envoy_cluster_name="a\\"b\\\\c"' in render_prometheus(view)


def test_stats_text_lists_readouts_then_numbers_then_histograms() -> None:
    empty, used = Histogram(), Histogram()
    used.observe(2.0)
    view = StatsView(
        counters={"b.count": 0, "a.count": 3},
        gauges={"a.gauge": 1},
        histograms={"h.empty": empty, "h.used": used},
        text_readouts={"z.version_text": "7"},
    )
    text = render_text(view)
    lines = text.splitlines()
    assert lines[:4] == ['z.version_text: "7"', "a.count: 3", "a.gauge: 1", "b.count: 0"]
    assert lines[4] == "h.empty: No recorded values"
    assert lines[5].startswith("h.used: P0(") and "P99.9(" in lines[5]
    assert render_text(view, re.compile(r"^a\.")) == "a.count: 3\na.gauge: 1\n"
    assert "b.count" not in render_text(view, used_only=True)
    assert '"name": "a.count", "value": 3' in render_json(view)


def test_quantiles_interpolate_within_buckets() -> None:
    histogram = Histogram()
    for value in (1.5, 2.0, 3.0, 4.0):
        histogram.observe(value)
    assert 1 <= quantile(histogram, 50) <= 5
    assert quantile(histogram, 100) == 5
    assert quantile(histogram, 0) == 1


ENVOY_CONFIG = """
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: %(admin)d}}
static_resources:
  listeners:
  - name: outbound
    address: {socket_address: {address: %(address)s, port_value: %(http)d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": %(hcm)s
          stat_prefix: outbound
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{match: {prefix: "/"}, route: {cluster: "%(cluster)s"}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  - name: db
    address: {socket_address: {address: %(address)s, port_value: %(tcp)d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: db
          cluster: "%(cluster)s"
  clusters:
  - name: "%(cluster)s"
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: "%(cluster)s"
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: %(backend)s, port_value: %(port)d}}}
"""


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body.decode()


def _samples(prometheus: str) -> tuple[dict[str, str], set[str]]:
    """Envoy's families with their type, and its sample lines without values."""
    types: dict[str, str] = {}
    samples: set[str] = set()
    for line in prometheus.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ")
            types[family] = kind
        elif line:
            samples.add(line.rsplit(" ", 1)[0])
    return types, samples


def test_prometheus_names_and_labels_match_a_real_envoys(tmp_path: Path) -> None:
    address, backend = loopback(), loopback()
    port = free_port(backend)
    ports = {"admin": free_port(), "http": free_port(address), "tcp": free_port(address)}
    config = ENVOY_CONFIG % {
        **ports,
        "address": address,
        "backend": backend,
        "port": port,
        "cluster": CLUSTER,
        "hcm": HCM,
    }

    with echo_backends({"reviews": backend}, port), envoy(config, tmp_path) as proxy:
        for path in ("/", "/again"):
            conn = http.client.HTTPConnection(address, ports["http"], timeout=10)
            conn.request("GET", path)
            assert conn.getresponse().status == 200
            conn.close()
        stats = _get(proxy.admin_url + "/stats")
        prometheus = _get(proxy.admin_url + "/stats/prometheus")
    types, envoy_samples = _samples(prometheus)
    counters: dict[str, int] = {}
    gauges: dict[str, int] = {}
    histograms: dict[str, Histogram] = {}
    for line in stats.splitlines():
        name, _, value = line.partition(": ")
        family = prometheus_name(extract_tags(name)[0])
        if value.startswith('"'):
            continue  # text readouts are not exported
        if value.startswith("P0(") or value == "No recorded values":
            histograms[name] = Histogram()
        elif types.get(family) == "gauge":
            gauges[name] = int(value)
        else:
            counters[name] = int(value)
    ours_types, our_samples = _samples(render_prometheus(StatsView(counters, gauges, histograms)))
    assert our_samples == envoy_samples
    assert ours_types == types
    assert (
        'envoy_cluster_default_svc_cluster_local_upstream_rq_xx{envoy_response_code_class="2",'
        'envoy_cluster_name="outbound|9080||reviews"}' in our_samples
    )
