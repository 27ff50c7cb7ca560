"""The real Envoy accepts the mTLS sockets, the inbound chains and the RBAC filters."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from api.contract import NodeProfile
from tests.xds_server.translate.envoy_bootstrap import envoy_validate, static_bootstrap
from tests.xds_server.translate.models import endpoint_slice, service
from xds_server.ca.authority import Authority
from xds_server.ca.certs import new_key, self_signed_root
from xds_server.ca.sds import SecretSource
from xds_server.ca.workloads import WorkloadCertificates
from xds_server.model import (
    AuthorizationPolicy,
    Endpoint,
    Model,
    PeerAuthentication,
    Pod,
    PolicyOperation,
    PolicyRule,
    PolicySource,
    ServicePort,
)
from xds_server.translate import MeshSecurity, translate_node, translate_shared

NOW = dt.datetime.now(dt.UTC)


def _model(mode: str) -> Model:
    rule = PolicyRule(
        (
            PolicySource(
                principals=("cluster.local/ns/shop/sa/front", "*/sa/admin", "spiffe://x/*", "*"),
                not_namespaces=("test-*",),
            ),
            PolicySource(namespaces=("*",)),
        ),
        (
            PolicyOperation(
                methods=("GET",), not_paths=("/admin*", "*.secret", "*"), ports=(9000,)
            ),
            PolicyOperation(not_methods=("DELETE",), paths=("/exact",), not_ports=(1,)),
        ),
    )
    return Model.build(
        [
            service("web", "shop", ServicePort(80, "http")),
            service("api", "shop", ServicePort(90, "grpc")),
        ],
        [
            endpoint_slice("web", Endpoint(("10.0.0.1",), pod_name="web-1"), namespace="shop"),
            endpoint_slice(
                "api", Endpoint(("10.0.0.2",), pod_name="api-1"), namespace="shop", port_name="grpc"
            ),
        ],
        [Pod("shop", "web-1", "web"), Pod("shop", "api-1", "api")],
        [
            PeerAuthentication("shop", "mode", mode),
            AuthorizationPolicy("shop", "allow", "ALLOW", (), (rule, PolicyRule())),
            AuthorizationPolicy("shop", "deny", "DENY", (), (rule,)),
        ],
    )


def _static_secret_refs(value: Any) -> Any:
    """SDS over ADS -> references to the bootstrap's static secrets (there is no ADS here)."""
    if isinstance(value, dict):
        return {k: _static_secret_refs(v) for k, v in value.items() if k != "sdsConfig"}
    if isinstance(value, list):
        return [_static_secret_refs(v) for v in value]
    return value


@pytest.mark.parametrize("mode", ["STRICT", "PERMISSIVE", "DISABLE"])
def test_envoy_validates_mtls_and_rbac(tmp_path: Path, mode: str) -> None:
    security = MeshSecurity(mtls=True)
    model = _model(mode)
    profile = NodeProfile("shop", "web", app_port=9000)
    root = self_signed_root(new_key(), "cluster.local", NOW)
    secrets = SecretSource(WorkloadCertificates(Authority.of(root, "cluster.local")))(profile)
    resources = translate_shared(model, security=security).merged(
        translate_node(model, profile, security=security)
    )
    tls = [c.HasField("transport_socket") for c in resources.clusters.values()]
    assert any(tls) == (mode != "DISABLE")
    bootstrap = _static_secret_refs(static_bootstrap(resources))
    bootstrap["static_resources"]["secrets"] = [
        json_format.MessageToDict(s) for s in secrets.secrets.values()
    ]
    config = tmp_path / "envoy.json"
    config.write_text(json.dumps(bootstrap, indent=1))
    result = envoy_validate(config)
    assert result.returncode == 0, result.stdout + result.stderr
