"""mTLS in the translation: which Services are in the mesh, the sockets, the peer modes."""

from __future__ import annotations

from typing import Any

from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from api import contract
from api.contract import NodeProfile
from tests.xds_server.translate.models import as_dict, endpoint_slice, service
from xds_server.model import Endpoint, Model, PeerAuthentication, Pod, ServicePort
from xds_server.translate import MeshSecurity, translate_node, translate_shared

MTLS = MeshSecurity(mtls=True)
WEB = "outbound|80||web.shop.svc.cluster.local"
API = "outbound|9090||api.shop.svc.cluster.local"


def pod_endpoint(address: str, pod: str) -> Endpoint:
    return Endpoint((address,), pod_name=pod)


def mesh_model(*extra: Any, web_pods: tuple[Pod, ...] | None = None) -> Model:
    pods = web_pods or (
        Pod("shop", "web-1", "web", (("app", "web"),), "10.0.0.1"),
        Pod("shop", "web-2", "web-admin", (("app", "web"),), "10.0.0.2"),
    )
    return Model.build(
        [
            service("web", "shop", ServicePort(80, "http")),
            service("api", "shop", ServicePort(9090, "grpc")),
        ],
        [
            endpoint_slice(
                "web", *(pod_endpoint(p.ip or "", p.name) for p in pods), namespace="shop"
            ),
            # No targetRef: found by address.
            endpoint_slice(
                "api", Endpoint(("10.0.0.9",)), namespace="shop", port_name="grpc", port=9090
            ),
        ],
        [*pods, Pod("shop", "api-1", "api", (("app", "api"),), "10.0.0.9")],
        extra,
    )


def upstream(cluster: Any) -> Any:
    assert cluster.transport_socket.name == "envoy.transport_sockets.tls"
    context = tls_pb2.UpstreamTlsContext()
    assert cluster.transport_socket.typed_config.Unpack(context)
    return context


def downstream(chain: Any) -> Any:
    context = tls_pb2.DownstreamTlsContext()
    assert chain.transport_socket.typed_config.Unpack(context)
    return context


def test_mesh_service_cluster_originates_mtls_to_its_identities() -> None:
    out = translate_shared(mesh_model(), security=MTLS)
    context = upstream(out.clusters[WEB])
    assert as_dict(context) == {
        "common_tls_context": {
            "tls_certificate_sds_secret_configs": [
                {"name": "default", "sds_config": {"ads": {}, "resource_api_version": "V3"}}
            ],
            "combined_validation_context": {
                "default_validation_context": {
                    "match_typed_subject_alt_names": [
                        {
                            "san_type": "URI",
                            "matcher": {"exact": f"spiffe://cluster.local/ns/shop/sa/{sa}"},
                        }
                        for sa in ("web", "web-admin")
                    ]
                },
                "validation_context_sds_secret_config": {
                    "name": "ROOTCA",
                    "sds_config": {"ads": {}, "resource_api_version": "V3"},
                },
            },
            "alpn_protocols": ["http/1.1"],
        },
        "sni": "outbound_.80_._.web.shop.svc.cluster.local",
    }
    api = upstream(out.clusters[API])
    assert list(api.common_tls_context.alpn_protocols) == ["h2"]
    [san] = (
        api.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names
    )
    assert san.matcher.exact == "spiffe://cluster.local/ns/shop/sa/api"


def test_trust_domain_is_in_the_expected_identities() -> None:
    out = translate_shared(
        mesh_model(), security=MeshSecurity(mtls=True, trust_domain="corp.example")
    )
    [san] = upstream(
        out.clusters[API]
    ).common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names
    assert san.matcher.exact == "spiffe://corp.example/ns/shop/sa/api"


def test_without_mtls_nothing_is_tls() -> None:
    out = translate_shared(mesh_model())
    assert not any(c.HasField("transport_socket") for c in out.clusters.values())
    listener = translate_node(mesh_model(), NodeProfile("shop", "web")).listeners["inbound"]
    assert [c.HasField("transport_socket") for c in listener.filter_chains] == [False]


def test_services_outside_the_mesh_stay_plaintext() -> None:
    unknown_pod = Model.build(
        [service("web", "shop", ServicePort(80, "http"))],
        [endpoint_slice("web", pod_endpoint("10.0.0.1", "gone"), namespace="shop")],
    )
    no_endpoints = Model.build([service("web", "shop", ServicePort(80, "http"))])
    no_sidecar = mesh_model(
        web_pods=(
            Pod(
                "shop", "web-1", "web", (("security.xdsmesh.io/tls-mode", "disabled"),), "10.0.0.1"
            ),
        )
    )
    disabled = mesh_model(PeerAuthentication("shop", "off", "DISABLE", (("app", "web"),)))
    for model in (unknown_pod, no_endpoints, no_sidecar, disabled):
        assert not translate_shared(model, security=MTLS).clusters[WEB].HasField("transport_socket")
    # DISABLE on web leaves api in the mesh.
    assert translate_shared(disabled, security=MTLS).clusters[API].HasField("transport_socket")


def modes(model: Model, profile: NodeProfile, security: MeshSecurity = MTLS) -> list[str]:
    listener = translate_node(model, profile, security=security).listeners["inbound"]
    out = []
    for chain in listener.filter_chains:
        if not chain.HasField("transport_socket"):
            out.append("plaintext")
        else:
            out.append(f"tls:{chain.filter_chain_match.transport_protocol or 'any'}")
    return out


WEB_NODE = NodeProfile("shop", "web")


def test_permissive_strict_disable_chains() -> None:
    model = mesh_model()
    assert modes(model, WEB_NODE) == ["tls:tls", "plaintext"]
    assert modes(model, WEB_NODE, MeshSecurity(mtls=True, mode="STRICT")) == ["tls:any"]
    assert modes(model, WEB_NODE, MeshSecurity(mtls=True, mode="DISABLE")) == ["plaintext"]


def test_peer_authentication_precedence() -> None:
    namespace_strict = PeerAuthentication("shop", "ns", "STRICT")
    workload_permissive = PeerAuthentication("shop", "web", "PERMISSIVE", (("app", "web"),))
    workload_unset = PeerAuthentication("shop", "web", "UNSET", (("app", "web"),))
    other_workload = PeerAuthentication("shop", "api", "DISABLE", (("app", "api"),))
    other_namespace = PeerAuthentication("data", "ns", "DISABLE")
    assert modes(mesh_model(namespace_strict), WEB_NODE) == ["tls:any"]
    assert modes(mesh_model(namespace_strict, workload_permissive), WEB_NODE) == [
        "tls:tls",
        "plaintext",
    ]
    assert modes(mesh_model(namespace_strict, workload_unset), WEB_NODE) == ["tls:any"]
    assert modes(mesh_model(other_workload, other_namespace), WEB_NODE) == ["tls:tls", "plaintext"]
    assert modes(mesh_model(other_workload), NodeProfile("shop", "api")) == ["plaintext"]


def test_two_policies_at_one_level_warn_and_the_first_by_name_wins() -> None:
    model = mesh_model(
        PeerAuthentication("shop", "b", "DISABLE"), PeerAuthentication("shop", "a", "STRICT")
    )
    out = translate_node(model, WEB_NODE, security=MTLS)
    assert modes(model, WEB_NODE) == ["tls:any"]
    assert any("a, b" in w and "a applies" in w for w in out.warnings)


def test_inbound_tls_requires_a_client_certificate_of_the_trust_domain() -> None:
    listener = translate_node(mesh_model(), WEB_NODE, security=MTLS).listeners["inbound"]
    assert [f.name for f in listener.listener_filters] == ["envoy.filters.listener.tls_inspector"]
    context = downstream(listener.filter_chains[0])
    assert context.require_client_certificate.value
    common = context.common_tls_context
    assert list(common.alpn_protocols) == ["h2", "http/1.1"]
    assert [c.name for c in common.tls_certificate_sds_secret_configs] == ["default"]
    validation = common.combined_validation_context
    assert validation.validation_context_sds_secret_config.name == "ROOTCA"
    [san] = validation.default_validation_context.match_typed_subject_alt_names
    assert san.matcher.prefix == "spiffe://cluster.local/"


def test_inbound_forwards_the_verified_peer_identity_and_sanitizes_the_header() -> None:
    from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: PLC0415
        http_connection_manager_pb2 as hcm_pb2,
    )

    listener = translate_node(mesh_model(), WEB_NODE, security=MTLS).listeners["inbound"]
    for chain in listener.filter_chains:
        hcm = hcm_pb2.HttpConnectionManager()
        assert chain.filters[0].typed_config.Unpack(hcm)
        assert hcm.forward_client_cert_details == hcm_pb2.HttpConnectionManager.SANITIZE_SET
        assert hcm.set_current_client_cert_details.uri
        assert hcm.rds.route_config_name == contract.ROUTE_INBOUND


def test_node_translation_is_memoized_per_workload_shape() -> None:
    model = mesh_model()
    a = translate_node(model, WEB_NODE, security=MTLS).listeners["inbound"]
    b = translate_node(
        mesh_model(), NodeProfile("shop", "web", app_port=8080), security=MTLS
    ).listeners["inbound"]
    assert a is b
