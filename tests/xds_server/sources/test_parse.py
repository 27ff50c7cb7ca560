from __future__ import annotations

from typing import Any

import pytest

from xds_server.model import Endpoint, EndpointPort, EndpointSlice, Pod, Service, ServicePort
from xds_server.sources.fields import FieldProblem, render_path
from xds_server.sources.parse import (
    InvalidObject,
    Skipped,
    check_slice_ports,
    describe,
    parse_object,
)


def service(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "cart", "namespace": "shop"},
        "spec": {"ports": [{"port": 80}], **spec},
    }


def endpoint_slice(**fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "cart-1",
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": "cart"},
        },
        "addressType": "IPv4",
        "ports": [{"port": 8080}],
        "endpoints": [{"addresses": ["127.0.0.11"]}],
        **fields,
    }


def problems(obj: object) -> list[str]:
    with pytest.raises(InvalidObject) as info:
        parse_object(obj)
    return [str(p) for p in info.value.problems]


def test_service_with_all_fields() -> None:
    obj = service(
        clusterIP="10.96.0.12",
        selector={"app": "cart"},
        ports=[
            {
                "name": "http",
                "port": 80,
                "targetPort": 8080,
                "protocol": "TCP",
                "appProtocol": "http",
            },
            {"name": "grpc-web", "port": 9090, "targetPort": "grpc", "protocol": "UDP"},
        ],
    )
    obj["metadata"]["labels"] = {"app": "cart", "example.com/tier": "web"}
    assert parse_object(obj) == Service(
        namespace="shop",
        name="cart",
        ports=(
            ServicePort(80, "http", 8080, "TCP", "http"),
            ServicePort(9090, "grpc-web", "grpc", "UDP", None),
        ),
        cluster_ip="10.96.0.12",
        selector=(("app", "cart"),),
        labels=(("app", "cart"), ("example.com/tier", "web")),
    )


def test_service_defaults_follow_the_api_server() -> None:
    obj = service()
    del obj["metadata"]["namespace"]
    assert parse_object(obj) == Service("default", "cart", (ServicePort(80, "", 80, "TCP"),))


@pytest.mark.parametrize("cluster_ip", ["None", "", None])
def test_headless_or_unassigned_cluster_ip_is_none(cluster_ip: str | None) -> None:
    parsed = parse_object(service(clusterIP=cluster_ip))
    assert isinstance(parsed, Service)
    assert parsed.cluster_ip is None


def test_headless_service_may_have_no_ports() -> None:
    obj = service(clusterIP="None")
    del obj["spec"]["ports"]
    parsed = parse_object(obj)
    assert isinstance(parsed, Service)
    assert parsed.ports == ()


def test_endpoint_slice() -> None:
    obj = endpoint_slice(
        ports=[{"name": "http", "port": 8080, "protocol": "TCP"}],
        endpoints=[
            {
                "addresses": ["127.0.0.11", "127.0.0.12"],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "zone": "zone-a",
                "nodeName": "node-a",
                "targetRef": {"kind": "Pod", "name": "cart-0", "namespace": "shop"},
            }
        ],
    )
    assert parse_object(obj) == EndpointSlice(
        namespace="shop",
        name="cart-1",
        service_name="cart",
        ports=(EndpointPort(8080, "http", "TCP"),),
        endpoints=(
            Endpoint(("127.0.0.11", "127.0.0.12"), True, True, False, "zone-a", "node-a", "cart-0"),
        ),
        address_type="IPv4",
    )


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        (None, (True, True, False)),
        ({}, (True, True, False)),
        ({"ready": False}, (False, False, False)),
        ({"serving": False}, (True, False, False)),
        ({"ready": False, "serving": True, "terminating": True}, (False, True, True)),
        ({"terminating": True}, (True, True, True)),
    ],
)
def test_endpoint_condition_defaults(
    conditions: dict[str, bool] | None, expected: tuple[bool, bool, bool]
) -> None:
    endpoint: dict[str, Any] = {"addresses": ["127.0.0.11"]}
    if conditions is not None:
        endpoint["conditions"] = conditions
    parsed = parse_object(endpoint_slice(endpoints=[endpoint]))
    assert isinstance(parsed, EndpointSlice)
    (ep,) = parsed.endpoints
    assert (ep.ready, ep.serving, ep.terminating) == expected


def test_target_ref_other_than_pod_gives_no_pod_name() -> None:
    ref = {"kind": "Node", "name": "node-a"}
    parsed = parse_object(endpoint_slice(endpoints=[{"addresses": ["10.0.0.1"], "targetRef": ref}]))
    assert isinstance(parsed, EndpointSlice)
    assert parsed.endpoints[0].pod_name is None


def test_ipv6_and_fqdn_slices() -> None:
    v6 = parse_object(endpoint_slice(addressType="IPv6", endpoints=[{"addresses": ["::1"]}]))
    fqdn = endpoint_slice(addressType="FQDN", endpoints=[{"addresses": ["db.example.com"]}])
    assert isinstance(v6, EndpointSlice)
    assert v6.address_type == "IPv6"
    assert parse_object(fqdn) == EndpointSlice(
        "shop", "cart-1", "cart", (EndpointPort(8080),), (Endpoint(("db.example.com",)),), "FQDN"
    )


def test_pod() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "cart-0", "namespace": "shop", "labels": {"app": "cart"}},
        "spec": {"serviceAccountName": "cart", "containers": [{"name": "app", "image": "x"}]},
        "status": {"podIP": "127.0.0.21", "phase": "Running"},
    }
    assert parse_object(obj) == Pod("shop", "cart-0", "cart", (("app", "cart"),), "127.0.0.21")


def test_pod_defaults() -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    assert parse_object(obj) == Pod("default", "p", "default", (), None)
    obj["spec"] = {"serviceAccount": "legacy"}
    assert parse_object(obj) == Pod("default", "p", "legacy", (), None)


@pytest.mark.parametrize(
    ("api_version", "kind", "reason"),
    [
        ("v1", "ConfigMap", "the mesh does not read v1 ConfigMap"),
        ("apps/v1", "Deployment", "the mesh does not read apps/v1 Deployment"),
        ("serving.knative.dev/v1", "Service", "the mesh does not read serving.knative.dev/v1"),
        ("v1", "Endpoints", "the mesh reads EndpointSlices, not Endpoints"),
    ],
)
def test_kinds_the_mesh_does_not_read_are_skipped(api_version: str, kind: str, reason: str) -> None:
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "n"}}
    skipped = parse_object(obj)
    assert isinstance(skipped, Skipped)
    assert skipped.what == f"{kind} n/x"
    assert reason in skipped.reason


def test_external_name_service_is_skipped() -> None:
    skipped = parse_object(service(type="ExternalName", externalName="db.example.com"))
    assert isinstance(skipped, Skipped)
    assert "ExternalName" in str(skipped)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ([1, 2], "must be a mapping (a Kubernetes object), got a list"),
        ({"kind": "Service"}, "apiVersion: required"),
        ({"apiVersion": "v1"}, "kind: required"),
        ({"apiVersion": 1, "kind": "Service"}, "apiVersion: must be a string, got 1"),
        ({**service(), "apiVersion": "v2"}, "apiVersion: Service is read as 'v1', got 'v2'"),
        (
            {**endpoint_slice(), "apiVersion": "discovery.k8s.io/v1beta1"},
            "apiVersion: EndpointSlice is read as 'discovery.k8s.io/v1', "
            "got 'discovery.k8s.io/v1beta1'",
        ),
    ],
)
def test_not_an_object_the_mesh_can_read(obj: object, expected: str) -> None:
    assert problems(obj) == [expected]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"metadata": {}}, "metadata.name: required"),
        ({"metadata": "cart"}, "metadata: must be a mapping, got 'cart'"),
        ({"metadata": {"name": "Cart"}}, "metadata.name: must be a DNS-1035 label"),
        (
            {"metadata": {"name": "c", "namespace": "a_b"}},
            "metadata.namespace: must be a DNS label",
        ),
        (
            {"metadata": {"name": "c", "labels": {"app": 3}}},
            "metadata.labels.app: must be a string",
        ),
        ({"metadata": {"name": "c", "labels": {"a b": "x"}}}, "metadata.labels: key must be"),
        ({"spec": None}, "spec: required"),
        ({"spec": {}}, "spec.ports: required"),
        ({"spec": {"ports": []}}, "spec.ports: must list at least one port"),
        ({"spec": {"ports": {"port": 80}}}, "spec.ports: must be a list, got a mapping"),
        ({"spec": {"ports": [80]}}, "spec.ports[0]: must be a mapping, got 80"),
        ({"spec": {"ports": [{"name": "http"}]}}, "spec.ports[0].port: required"),
        (
            {"spec": {"ports": [{"port": 0}]}},
            "spec.ports[0].port: must be an integer 1-65535, got 0",
        ),
        ({"spec": {"ports": [{"port": True}]}}, "spec.ports[0].port: must be an integer 1-65535"),
        (
            {"spec": {"ports": [{"port": 80, "targetPort": "8080"}]}},
            "spec.ports[0].targetPort: must be an IANA",
        ),
        (
            {"spec": {"ports": [{"port": 80, "targetPort": 70000}]}},
            "spec.ports[0].targetPort: must be an integer",
        ),
        (
            {"spec": {"ports": [{"port": 80, "protocol": "tcp"}]}},
            "spec.ports[0].protocol: must be one of TCP",
        ),
        ({"spec": {"ports": [{"port": 80, "name": "HTTP"}]}}, "spec.ports[0].name: must be a DNS"),
        (
            {"spec": {"ports": [{"port": 80}], "clusterIP": "10.0.0"}},
            "spec.clusterIP: must be an IP",
        ),
        ({"spec": {"ports": [{"port": 80}], "type": "Weird"}}, "spec.type: must be one of"),
        (
            {"spec": {"ports": [{"port": 80}], "selector": ["app"]}},
            "spec.selector: must be a mapping",
        ),
    ],
)
def test_service_problems_name_the_field(change: dict[str, Any], expected: str) -> None:
    obj = {**service(), **change}
    assert any(p.startswith(expected) for p in problems(obj)), problems(obj)


def test_service_port_names_must_be_unique_and_present() -> None:
    obj = service(
        ports=[
            {"name": "http", "port": 80},
            {"port": 81},
            {"name": "http", "port": 82},
            {"name": "admin", "port": 80},
        ]
    )
    assert problems(obj) == [
        "spec.ports[1].name: required when a Service has several ports",
        "spec.ports[2].name: port name 'http' is also used by spec.ports[0]",
        "spec.ports[3].port: port 80/TCP is also used by spec.ports[0]",
    ]


def test_every_problem_of_an_object_is_reported() -> None:
    obj = service(ports=[{"port": "abc"}, {"port": 80, "protocol": "HTTP"}])
    obj["metadata"]["name"] = 5
    assert problems(obj) == [
        "metadata.name: must be a string, got 5",
        "spec.ports[0].port: must be an integer 1-65535, got 'abc'",
        "spec.ports[1].protocol: must be one of TCP, UDP, SCTP, got 'HTTP'",
        "spec.ports[0].name: required when a Service has several ports",
        "spec.ports[1].name: required when a Service has several ports",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"metadata": {"name": "s"}},
            'metadata.labels["kubernetes.io/service-name"]: required: the name of its Service',
        ),
        ({"addressType": None}, "addressType: required"),
        ({"addressType": "IPv5"}, "addressType: must be one of IPv4, IPv6, FQDN, got 'IPv5'"),
        ({"endpoints": None}, "endpoints: required"),
        ({"endpoints": [{}]}, "endpoints[0].addresses: required"),
        ({"endpoints": [{"addresses": []}]}, "endpoints[0].addresses: must list at least one"),
        ({"endpoints": [{"addresses": ["::1"]}]}, "endpoints[0].addresses[0]: must be an IPv4"),
        ({"endpoints": [{"addresses": [7]}]}, "endpoints[0].addresses[0]: must be a string, got 7"),
        (
            {"endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": "yes"}}]},
            "endpoints[0].conditions.ready: must be true or false, got 'yes'",
        ),
        ({"ports": [{"name": "http"}]}, "ports[0].port: required"),
        (
            {"ports": [{"port": 1}, {"port": 2}]},
            "ports[1].name: port name '' is also used by ports[0]",
        ),
    ],
)
def test_endpoint_slice_problems_name_the_field(change: dict[str, Any], expected: str) -> None:
    obj = {**endpoint_slice(), **change}
    assert any(p.startswith(expected) for p in problems(obj)), problems(obj)


def test_slice_ports_must_name_a_service_port() -> None:
    svc = Service("shop", "cart", (ServicePort(80, "http"), ServicePort(81, "admin")))
    es = EndpointSlice(
        "shop", "cart-1", "cart", (EndpointPort(8080, "http"), EndpointPort(9, "grpc")), ()
    )
    assert check_slice_ports(es, svc) == [
        FieldProblem(
            ("ports", 1, "name"),
            "Service shop/cart has no port named 'grpc' (it has 'http', 'admin')",
        )
    ]


def test_unnamed_slice_port_against_a_named_service_port() -> None:
    svc = Service("shop", "cart", (ServicePort(80, "http"),))
    es = EndpointSlice("shop", "cart-1", "cart", (EndpointPort(8080),), ())
    (problem,) = check_slice_ports(es, svc)
    assert str(problem) == "ports[0].name: Service shop/cart has no unnamed port (it has 'http')"


def test_describe_copes_with_broken_objects() -> None:
    assert describe({"kind": "Service", "metadata": {"name": "a"}}) == "Service default/a"
    assert describe({"kind": "Namespace", "metadata": {"name": "shop"}}) == "Namespace shop"
    assert describe({"kind": 3, "metadata": "x"}) == "object (no name)"
    assert describe("text") == ""


def test_render_path() -> None:
    assert render_path(("spec", "ports", 1, "port")) == "spec.ports[1].port"
    assert render_path(("metadata", "labels", "app.kubernetes.io/name")) == (
        'metadata.labels["app.kubernetes.io/name"]'
    )
    assert render_path(()) == ""
