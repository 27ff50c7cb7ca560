from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from tests.xds_server.translate.models import (
    as_dict,
    endpoint_slice,
    ready,
    service,
    terminating,
)
from xds_server.model import Endpoint, Model, ServicePort
from xds_server.translate import translate_shared

CLUSTER = "outbound|80||web.shop.svc.cluster.local"


def test_cluster_and_assignment_exact() -> None:
    model = Model.build(
        [service("web", "shop", ServicePort(80, "http"), cluster_ip="10.96.0.10")],
        [endpoint_slice("web", ready("10.0.0.2"), ready("10.0.0.1"), namespace="shop")],
    )
    out = translate_shared(model)
    assert list(out.clusters) == [CLUSTER]
    assert list(out.endpoints) == [CLUSTER]
    assert out.listeners == out.routes == out.secrets == {}
    assert out.warnings == []
    cluster = out.clusters[CLUSTER]
    assert as_dict(cluster) == {
        "name": CLUSTER,
        "type": "EDS",
        "eds_cluster_config": {
            "eds_config": {"ads": {}, "resource_api_version": "V3"},
            "service_name": CLUSTER,
        },
        "connect_timeout": "10s",
    }
    assert cluster.lb_policy == cluster_pb2.Cluster.ROUND_ROBIN
    assert as_dict(out.endpoints[CLUSTER]) == {
        "cluster_name": CLUSTER,
        "endpoints": [
            {
                "lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": sock}}}
                    for sock in (
                        {"address": "10.0.0.1", "port_value": 8080},
                        {"address": "10.0.0.2", "port_value": 8080},
                    )
                ]
            }
        ],
    }


def test_cluster_domain_is_used() -> None:
    model = Model.build([service("web", "shop")])
    out = translate_shared(model, cluster_domain="corp.example")
    assert list(out.clusters) == ["outbound|80||web.shop.svc.corp.example"]
    assert out.endpoints["outbound|80||web.shop.svc.corp.example"].cluster_name == (
        "outbound|80||web.shop.svc.corp.example"
    )


def test_http2_port_gets_protocol_options() -> None:
    model = Model.build(
        [service("api", "shop", ServicePort(9090, "grpc"), ServicePort(80, "http"))]
    )
    out = translate_shared(model)
    h2 = out.clusters["outbound|9090||api.shop.svc.cluster.local"]
    h1 = out.clusters["outbound|80||api.shop.svc.cluster.local"]
    key = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    assert list(h2.typed_extension_protocol_options) == [key]
    options = http_protocol_options_pb2.HttpProtocolOptions()
    assert h2.typed_extension_protocol_options[key].Unpack(options)
    assert options.explicit_http_config.HasField("http2_protocol_options")
    assert len(h1.typed_extension_protocol_options) == 0


def test_udp_and_sctp_ports_are_skipped() -> None:
    model = Model.build(
        [
            service(
                "dns",
                "kube-system",
                ServicePort(53, "dns", protocol="UDP"),
                ServicePort(53, "dns-tcp"),
                ServicePort(9, "x", protocol="SCTP"),
            )
        ]
    )
    out = translate_shared(model)
    assert list(out.clusters) == ["outbound|53||dns.kube-system.svc.cluster.local"]
    assert list(out.endpoints) == list(out.clusters)


def test_service_without_endpoints_gets_empty_assignment() -> None:
    out = translate_shared(Model.build([service("lonely")]))
    cla = out.endpoints["outbound|80||lonely.default.svc.cluster.local"]
    assert cla.cluster_name == "outbound|80||lonely.default.svc.cluster.local"
    assert len(cla.endpoints) == 0


def _addresses(cla: object) -> list[str]:
    return [
        lb.endpoint.address.socket_address.address
        for group in cla.endpoints  # type: ignore[attr-defined]
        for lb in group.lb_endpoints
    ]


def test_terminating_only_endpoints_are_used() -> None:
    model = Model.build(
        [service("web")], [endpoint_slice("web", terminating("10.0.0.7"), terminating("10.0.0.6"))]
    )
    cla = translate_shared(model).endpoints["outbound|80||web.default.svc.cluster.local"]
    assert _addresses(cla) == ["10.0.0.6", "10.0.0.7"]


def test_ready_endpoints_win_over_terminating() -> None:
    not_serving = Endpoint(("10.0.0.9",), ready=False, serving=False, terminating=True)
    model = Model.build(
        [service("web")],
        [
            endpoint_slice("web", terminating("10.0.0.7"), not_serving, suffix="a"),
            endpoint_slice("web", ready("10.0.0.8"), suffix="b"),
        ],
    )
    cla = translate_shared(model).endpoints["outbound|80||web.default.svc.cluster.local"]
    assert _addresses(cla) == ["10.0.0.8"]


def test_slice_port_matched_by_name() -> None:
    model = Model.build(
        [service("web", "default", ServicePort(80, "http"), ServicePort(81, "admin"))],
        [endpoint_slice("web", ready("10.0.0.1"), port=9000, port_name="admin")],
    )
    out = translate_shared(model)
    admin = out.endpoints["outbound|81||web.default.svc.cluster.local"]
    http = out.endpoints["outbound|80||web.default.svc.cluster.local"]
    assert [lb.endpoint.address.socket_address.port_value for lb in admin.endpoints[0].lb_endpoints]
    assert admin.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value == 9000
    assert len(http.endpoints) == 0


def test_endpoints_grouped_by_locality_in_order() -> None:
    model = Model.build(
        [service("web")],
        [
            endpoint_slice(
                "web",
                ready("10.0.0.4", zone="b", node="n1"),
                ready("10.0.0.3", zone="a", node="n2"),
                ready("10.0.0.2", zone="a", node="n1"),
                ready("10.0.0.1", zone="a", node="n1"),
                ready("10.0.0.5"),
                ready("10.0.0.6", node="n9"),
            )
        ],
    )
    cla = translate_shared(model).endpoints["outbound|80||web.default.svc.cluster.local"]
    groups = [
        (group.HasField("locality"), group.locality.zone, group.locality.sub_zone)
        for group in cla.endpoints
    ]
    assert groups == [
        (False, "", ""),
        (True, "", "n9"),
        (True, "a", "n1"),
        (True, "a", "n2"),
        (True, "b", "n1"),
    ]
    assert [
        [lb.endpoint.address.socket_address.address for lb in g.lb_endpoints] for g in cla.endpoints
    ] == [
        ["10.0.0.5"],
        ["10.0.0.6"],
        ["10.0.0.1", "10.0.0.2"],
        ["10.0.0.3"],
        ["10.0.0.4"],
    ]


def test_port_listed_twice_keeps_first_and_warns() -> None:
    svc = service("web", "shop", ServicePort(80, "http"), ServicePort(80, "grpc"))
    out = translate_shared(Model.build([svc]))
    cluster = out.clusters["outbound|80||web.shop.svc.cluster.local"]
    assert len(cluster.typed_extension_protocol_options) == 0
    assert len(out.warnings) == 1
    assert "Service shop/web" in out.warnings[0]
    assert "port 80" in out.warnings[0]


def test_clusters_ordered_by_namespace_and_name() -> None:
    model = Model.build([service("b", "y"), service("a", "z"), service("c", "x")])
    assert [name.split("|")[3] for name in translate_shared(model).clusters] == [
        "c.x.svc.cluster.local",
        "b.y.svc.cluster.local",
        "a.z.svc.cluster.local",
    ]
