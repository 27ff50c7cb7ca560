"""Envoy Listener protos for the listener tests, built from YAML as a control plane would send."""

from __future__ import annotations

import copy
from typing import Any

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.access_loggers.grpc.v3 import als_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2
from google.protobuf import empty_pb2, json_format

import pydp.listener.compile

T = "type.googleapis.com/envoy.extensions."
HCM = T + "filters.network.http_connection_manager.v3.HttpConnectionManager"
TCP = T + "filters.network.tcp_proxy.v3.TcpProxy"
ROUTER = T + "filters.http.router.v3.Router"
FAULT = T + "filters.http.fault.v3.HTTPFault"
FILE_LOG = T + "access_loggers.file.v3.FileAccessLog"
STDOUT_LOG = T + "access_loggers.stream.v3.StdoutAccessLog"
STDERR_LOG = T + "access_loggers.stream.v3.StderrAccessLog"
GRPC_LOG = T + "access_loggers.grpc.v3.HttpGrpcAccessLogConfig"


# Registered in protobuf's pool so that tests can write them in typed_config.
_REGISTERED = (als_pb2, fault_pb2, rbac_pb2, empty_pb2, pydp.listener.compile)


def router() -> dict[str, Any]:
    return {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}


def hcm(**fields: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "@type": HCM,
        "stat_prefix": "outbound",
        "rds": {"config_source": {"ads": {}}, "route_config_name": "outbound"},
        "http_filters": [router()],
    }
    config.update(fields)
    return config


def tcp(**fields: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"@type": TCP, "stat_prefix": "tcp", "cluster": "backend"}
    config.update(fields)
    return config


def listener_dict(
    typed_config: dict[str, Any] | None = None,
    *,
    name: str = "outbound",
    address: str = "127.0.0.1",
    port: int = 15001,
    filter_name: str = "envoy.filters.network.http_connection_manager",
    **fields: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "address": {"socket_address": {"address": address, "port_value": port}},
        "filter_chains": [
            {"filters": [{"name": filter_name, "typed_config": typed_config or hcm()}]}
        ],
    }
    out.update(fields)
    return out


def message(data: dict[str, Any]) -> Any:
    out = listener_pb2.Listener()
    json_format.ParseDict(copy.deepcopy(data), out)
    return out


def listener(typed_config: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    return message(listener_dict(typed_config, **kwargs))
