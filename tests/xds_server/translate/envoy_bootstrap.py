"""Turn translated resources into a static Envoy bootstrap, for `envoy --mode validate`.

RDS is replaced by the route configuration it names and EDS clusters become
STATIC clusters holding their ClusterLoadAssignment inline; everything else is
the translator's output as is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import json_format

from xds_server.resources import Resources


def envoy_binary() -> Path:
    found = shutil.which("envoy")
    path = Path(found) if found else Path(sys.executable).parent / "envoy"
    assert path.exists(), f"the envoy binary is missing (looked on PATH and at {path})"
    return path


def _inline_routes(listener: Any, routes: dict[str, Any]) -> Any:
    out = type(listener)()
    out.CopyFrom(listener)
    for chain in out.filter_chains:
        for network_filter in chain.filters:
            hcm = hcm_pb2.HttpConnectionManager()
            if not network_filter.typed_config.Unpack(hcm):
                continue
            hcm.route_config.CopyFrom(routes[hcm.rds.route_config_name])
            network_filter.typed_config.Pack(hcm)
    return out


def _inline_endpoints(cluster: Any, endpoints: dict[str, Any]) -> Any:
    out = cluster_pb2.Cluster()
    out.CopyFrom(cluster)
    if out.type == cluster_pb2.Cluster.EDS:
        out.type = cluster_pb2.Cluster.STATIC
        out.load_assignment.CopyFrom(endpoints[out.eds_cluster_config.service_name])
        out.ClearField("eds_cluster_config")
    return out


def static_bootstrap(resources: Resources) -> dict[str, Any]:
    def as_json(message: Any) -> dict[str, Any]:
        out: dict[str, Any] = json_format.MessageToDict(message)
        return out

    return {
        "node": {"id": "validate.test", "cluster": "test"},
        "static_resources": {
            "listeners": [
                as_json(_inline_routes(listener, resources.routes))
                for listener in resources.listeners.values()
            ],
            "clusters": [
                as_json(_inline_endpoints(cluster, resources.endpoints))
                for cluster in resources.clusters.values()
            ],
        },
    }


def envoy_validate(config_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            os.fspath(envoy_binary()),
            "--mode",
            "validate",
            "--use-dynamic-base-id",
            "--log-level",
            "warn",
            "-c",
            os.fspath(config_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
