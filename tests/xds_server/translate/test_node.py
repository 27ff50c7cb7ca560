from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from api import contract
from api.contract import NodeProfile
from tests.xds_server.translate.models import as_dict, service
from xds_server.model import Model, ServicePort
from xds_server.translate import translate_node

SHOP = NodeProfile("shop")


def _domains(model: Model, profile: NodeProfile = SHOP) -> dict[str, list[str]]:
    routes = translate_node(model, profile).routes[contract.ROUTE_OUTBOUND]
    return {vh.name: list(vh.domains) for vh in routes.virtual_hosts}


def _hcm(listener: object) -> object:
    [chain] = listener.filter_chains  # type: ignore[attr-defined]
    [network_filter] = chain.filters
    assert network_filter.name == "envoy.filters.network.http_connection_manager"
    hcm = hcm_pb2.HttpConnectionManager()
    assert network_filter.typed_config.Unpack(hcm)
    return hcm


def _hcm_dict(stat_prefix: str, route: str) -> dict[str, object]:
    return {
        "stat_prefix": stat_prefix,
        "rds": {
            "config_source": {"ads": {}, "resource_api_version": "V3"},
            "route_config_name": route,
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            }
        ],
    }


def test_resource_names() -> None:
    out = translate_node(Model.build([service("web", "shop")]), SHOP)
    assert sorted(out.listeners) == [contract.LISTENER_INBOUND, contract.LISTENER_OUTBOUND]
    assert sorted(out.routes) == [contract.ROUTE_INBOUND, contract.ROUTE_OUTBOUND]
    assert list(out.clusters) == [contract.inbound_cluster_name(contract.APP_PORT)]
    assert out.endpoints == out.secrets == {}
    assert out.warnings == []


def test_outbound_listener_exact() -> None:
    profile = NodeProfile("shop", outbound_address="127.0.0.2", outbound_port=25001)
    listener = translate_node(Model(), profile).listeners[contract.LISTENER_OUTBOUND]
    assert listener.name == "outbound"
    assert as_dict(listener.address) == {
        "socket_address": {"address": "127.0.0.2", "port_value": 25001}
    }
    assert listener.traffic_direction == base_pb2.OUTBOUND
    hcm = _hcm(listener)
    assert as_dict(hcm) == _hcm_dict("outbound", contract.ROUTE_OUTBOUND)
    assert hcm.codec_type == hcm_pb2.HttpConnectionManager.AUTO  # type: ignore[attr-defined]


def test_inbound_listener_route_and_cluster_exact() -> None:
    profile = NodeProfile("shop", inbound_port=25006, app_port=9000)
    out = translate_node(Model(), profile)
    listener = out.listeners[contract.LISTENER_INBOUND]
    assert as_dict(listener.address) == {
        "socket_address": {"address": contract.INBOUND_ADDRESS, "port_value": 25006}
    }
    assert listener.traffic_direction == base_pb2.INBOUND
    hcm = _hcm(listener)
    assert as_dict(hcm) == _hcm_dict("inbound", contract.ROUTE_INBOUND)
    assert hcm.codec_type == hcm_pb2.HttpConnectionManager.AUTO  # type: ignore[attr-defined]
    assert as_dict(out.routes[contract.ROUTE_INBOUND]) == {
        "name": "inbound",
        "virtual_hosts": [
            {
                "name": "inbound|http|9000",
                "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "inbound|9000||"}}],
            }
        ],
    }
    assert as_dict(out.clusters["inbound|9000||"]) == {
        "name": "inbound|9000||",
        "type": "STATIC",
        "connect_timeout": "10s",
        "load_assignment": {
            "cluster_name": "inbound|9000||",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {
                                        "address": contract.APP_ADDRESS,
                                        "port_value": 9000,
                                    }
                                }
                            }
                        }
                    ]
                }
            ],
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/"
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "use_downstream_protocol_config": {
                    "http_protocol_options": {},
                    "http2_protocol_options": {},
                },
            }
        },
    }


def test_outbound_virtual_host_exact() -> None:
    model = Model.build([service("web", "shop", ServicePort(8080, "http"))])
    routes = translate_node(model, SHOP).routes[contract.ROUTE_OUTBOUND]
    assert as_dict(routes) == {
        "name": "outbound",
        "virtual_hosts": [
            {
                "name": "web.shop.svc.cluster.local:8080",
                "domains": [
                    "web.shop.svc.cluster.local:8080",
                    "web.shop.svc:8080",
                    "web.shop:8080",
                    "web:8080",
                ],
                "routes": [
                    {
                        "match": {"prefix": "/"},
                        "route": {"cluster": "outbound|8080||web.shop.svc.cluster.local"},
                    }
                ],
            }
        ],
    }
    assert not routes.virtual_hosts[0].routes[0].route.HasField("timeout")


def test_domains_own_namespace_other_namespace_cluster_ip_and_port_80() -> None:
    model = Model.build(
        [
            service("web", "shop", ServicePort(80, "http"), cluster_ip="10.96.0.10"),
            service("db", "data", ServicePort(5432, "tcp-pg"), cluster_ip="10.96.0.11"),
            service("cache", "shop", ServicePort(6379, "redis")),
            service("v6", "data", ServicePort(80, "http"), cluster_ip="fd00::10"),
            service("headless", "data", ServicePort(81, "http"), cluster_ip="None"),
        ]
    )
    assert _domains(model) == {
        "headless.data.svc.cluster.local:81": [
            "headless.data.svc.cluster.local:81",
            "headless.data.svc:81",
            "headless.data:81",
        ],
        "db.data.svc.cluster.local:5432": [
            "db.data.svc.cluster.local:5432",
            "db.data.svc:5432",
            "db.data:5432",
            "10.96.0.11:5432",
        ],
        "v6.data.svc.cluster.local:80": [
            "v6.data.svc.cluster.local:80",
            "v6.data.svc.cluster.local",
            "v6.data.svc:80",
            "v6.data.svc",
            "v6.data:80",
            "v6.data",
            "[fd00::10]:80",
            "[fd00::10]",
        ],
        "cache.shop.svc.cluster.local:6379": [
            "cache.shop.svc.cluster.local:6379",
            "cache.shop.svc:6379",
            "cache.shop:6379",
            "cache:6379",
        ],
        "web.shop.svc.cluster.local:80": [
            "web.shop.svc.cluster.local:80",
            "web.shop.svc.cluster.local",
            "web.shop.svc:80",
            "web.shop.svc",
            "web.shop:80",
            "web.shop",
            "web:80",
            "web",
            "10.96.0.10:80",
            "10.96.0.10",
        ],
    }


def test_short_name_follows_the_proxy_namespace() -> None:
    model = Model.build([service("web", "shop", ServicePort(8080, "http"))])
    assert "web:8080" in _domains(model, NodeProfile("shop"))["web.shop.svc.cluster.local:8080"]
    assert (
        "web:8080" not in _domains(model, NodeProfile("other"))["web.shop.svc.cluster.local:8080"]
    )


def test_virtual_hosts_sorted_by_namespace_name_port_and_skip_udp() -> None:
    model = Model.build(
        [
            service("b", "ns1", ServicePort(90, "http"), ServicePort(80, "http")),
            service("a", "ns2", ServicePort(80, "http")),
            service("a", "ns1", ServicePort(53, "dns", protocol="UDP")),
        ]
    )
    assert list(_domains(model)) == [
        "b.ns1.svc.cluster.local:80",
        "b.ns1.svc.cluster.local:90",
        "a.ns2.svc.cluster.local:80",
    ]


def test_shared_cluster_ip_first_claimant_keeps_it_and_warns() -> None:
    model = Model.build(
        [
            service("zeta", "shop", ServicePort(80, "http"), cluster_ip="10.96.0.10"),
            service("alpha", "shop", ServicePort(80, "http"), cluster_ip="10.96.0.10"),
        ]
    )
    out = translate_node(model, SHOP)
    domains = {
        vh.name: list(vh.domains) for vh in out.routes[contract.ROUTE_OUTBOUND].virtual_hosts
    }
    assert "10.96.0.10:80" in domains["alpha.shop.svc.cluster.local:80"]
    assert "10.96.0.10" in domains["alpha.shop.svc.cluster.local:80"]
    assert domains["zeta.shop.svc.cluster.local:80"] == [
        "zeta.shop.svc.cluster.local:80",
        "zeta.shop.svc.cluster.local",
        "zeta.shop.svc:80",
        "zeta.shop.svc",
        "zeta.shop:80",
        "zeta.shop",
        "zeta:80",
        "zeta",
    ]
    assert len(out.warnings) == 2
    for warning, domain in zip(out.warnings, ["'10.96.0.10:80'", "'10.96.0.10'"], strict=True):
        assert domain in warning
        assert "Service shop/alpha" in warning
        assert "Service shop/zeta" in warning
    # Proxies in any namespace see the same clash.
    assert len(translate_node(model, NodeProfile("elsewhere")).warnings) == 2


def test_virtual_host_whose_domains_are_all_taken_is_dropped() -> None:
    svc = service("web", "shop", ServicePort(80, "http"), ServicePort(80, "grpc"))
    out = translate_node(Model.build([svc]), SHOP)
    [vhost] = out.routes[contract.ROUTE_OUTBOUND].virtual_hosts
    assert vhost.name == "web.shop.svc.cluster.local:80"
    assert any("dropped" in w and "Service shop/web port 80" in w for w in out.warnings)


def test_the_inbound_cluster_speaks_to_the_app_in_the_callers_protocol() -> None:
    out = translate_node(Model.build(), NodeProfile(namespace="default"))
    cluster = out.clusters[contract.inbound_cluster_name(contract.APP_PORT)]
    options = http_protocol_options_pb2.HttpProtocolOptions()
    cluster.typed_extension_protocol_options[
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ].Unpack(options)
    downstream = options.use_downstream_protocol_config
    assert downstream.HasField("http_protocol_options")
    assert downstream.HasField("http2_protocol_options")
