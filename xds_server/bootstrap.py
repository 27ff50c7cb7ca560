"""The Envoy bootstrap a sidecar starts from (`xds-server bootstrap`).

Stock Envoy accepts it as it is (`envoy -c FILE`), and pydp reads the same
file. It points ADS at the control plane over gRPC (State of the World, or
Delta with `delta=True`) and carries the node metadata of the sidecar
contract (`api/contract.py`), from which the server derives the proxy's
listeners and routes. With a token (a server with a CA demands one), the
ADS stream carries it as `authorization: Bearer <token>` metadata
(`initial_metadata`), proving the workload's identity (`xds_server.auth`).
"""

from __future__ import annotations

from typing import Any

import yaml

from api import contract
from api.contract import NodeProfile

XDS_CLUSTER = "xds_cluster"


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"address {address!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def render(
    node_id: str,
    profile: NodeProfile,
    *,
    xds_address: str = "127.0.0.1:18000",
    admin_address: str = "127.0.0.1",
    admin_port: int = contract.ADMIN_PORT,
    delta: bool = False,
    pod_name: str | None = None,
    xds_token: str | None = None,
) -> dict[str, Any]:
    host, port = split_address(xds_address)
    grpc_service: dict[str, Any] = {"envoy_grpc": {"cluster_name": XDS_CLUSTER}}
    if xds_token is not None:
        grpc_service["initial_metadata"] = [
            {"key": "authorization", "value": f"Bearer {xds_token}"}
        ]
    metadata = profile.metadata()
    metadata[contract.META_POD_NAME] = pod_name or node_id.rsplit(".", 1)[0]
    return {
        "node": {
            "id": node_id,
            "cluster": f"{profile.service_account}.{profile.namespace}",
            "metadata": metadata,
        },
        "admin": {
            "address": {"socket_address": {"address": admin_address, "port_value": admin_port}}
        },
        "dynamic_resources": {
            "ads_config": {
                "api_type": "DELTA_GRPC" if delta else "GRPC",
                "transport_api_version": "V3",
                "set_node_on_first_message_only": True,
                "grpc_services": [grpc_service],
            },
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
        },
        "static_resources": {
            "clusters": [
                {
                    "name": XDS_CLUSTER,
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                            "@type": "type.googleapis.com/"
                            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                            "explicit_http_config": {"http2_protocol_options": {}},
                        }
                    },
                    "load_assignment": {
                        "cluster_name": XDS_CLUSTER,
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": host,
                                                    "port_value": port,
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
            ]
        },
    }


def render_yaml(*args: Any, **kwargs: Any) -> str:
    return yaml.safe_dump(render(*args, **kwargs), sort_keys=False)
