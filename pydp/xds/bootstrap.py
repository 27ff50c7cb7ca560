"""Reading the Envoy bootstrap file pydp is given (YAML or JSON, as stock Envoy).

The whole file is parsed into Envoy's `Bootstrap` message, so a misspelt or
unknown field is an error exactly where Envoy would report one; then the few
things pydp uses are pulled out into a `BootstrapConfig`. Anything pydp needs
that is missing or unsupported raises `BootstrapError` naming the file and
the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import json_format

Message = Any

HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
# Envoy's xDS stream retry: 500 ms doubling to 30 s, or `envoy_grpc.retry_policy.retry_back_off`.
DEFAULT_BACKOFF_BASE = 0.5
DEFAULT_BACKOFF_MAX = 30.0
DEFAULT_INITIAL_FETCH_TIMEOUT = 15.0
USER_AGENT_NAME = "pydp"


class BootstrapError(ValueError):
    """A bootstrap pydp cannot run with. The message names the file and field."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        super().__init__(f"{source}: {field}: {problem}" if field else f"{source}: {problem}")


@dataclass(frozen=True, slots=True)
class BootstrapConfig:
    """What pydp takes from a bootstrap. Build one directly to run without a file."""

    node: Message  # envoy.config.core.v3.Node, as sent to the control plane
    xds_host: str
    xds_port: int
    delta: bool = False
    node_on_first_message_only: bool = False
    admin_address: str | None = None
    admin_port: int | None = None
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_max: float = DEFAULT_BACKOFF_MAX
    initial_fetch_timeout: float = DEFAULT_INITIAL_FETCH_TIMEOUT  # 0: wait forever
    source: str = "<bootstrap>"
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # Sent with the xDS call, as Envoy sends grpc_services[0].initial_metadata
    # (the control plane's per-workload token travels this way).
    initial_metadata: tuple[tuple[str, str], ...] = ()

    @property
    def node_id(self) -> str:
        node_id: str = self.node.id
        return node_id

    @property
    def node_cluster(self) -> str:
        cluster: str = self.node.cluster
        return cluster


def load_bootstrap(path: str | Path) -> BootstrapConfig:
    """Read and check a bootstrap file (`.json` as JSON, anything else as YAML)."""
    source = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise BootstrapError(source, "", f"cannot be read: {exc.strerror}") from exc
    try:
        data = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise BootstrapError(source, "", f"is not valid {_format(source)}: {exc}") from exc
    if not isinstance(data, dict):
        raise BootstrapError(source, "", "must hold a mapping at the top level")
    return parse_bootstrap(data, source)


def parse_bootstrap(data: Mapping[str, Any], source: str = "<bootstrap>") -> BootstrapConfig:
    """Check an already loaded bootstrap (a JSON-shaped mapping)."""
    bootstrap = bootstrap_pb2.Bootstrap()
    try:
        json_format.ParseDict(dict(data), bootstrap)
    except json_format.ParseError as exc:
        raise BootstrapError(source, "", str(exc)) from exc

    node = bootstrap.node
    if not node.id:
        raise BootstrapError(source, "node.id", "is required to talk to an xDS server")
    if not node.cluster:
        raise BootstrapError(source, "node.cluster", "is required to talk to an xDS server")
    node.user_agent_name = USER_AGENT_NAME

    dynamic = bootstrap.dynamic_resources
    if not bootstrap.HasField("dynamic_resources") or not dynamic.HasField("ads_config"):
        raise BootstrapError(source, "dynamic_resources.ads_config", "is required (pydp uses ADS)")
    ads = dynamic.ads_config
    api_types = config_source_pb2.ApiConfigSource.ApiType
    if ads.api_type not in (api_types.GRPC, api_types.DELTA_GRPC):
        raise BootstrapError(
            source,
            "dynamic_resources.ads_config.api_type",
            f"{api_types.Name(ads.api_type)} is not supported: use GRPC or DELTA_GRPC",
        )
    _require_v3(source, "dynamic_resources.ads_config.transport_api_version", ads)
    for name in ("cds_config", "lds_config"):
        _require_ads(source, f"dynamic_resources.{name}", dynamic, name)

    host, port = _control_plane(source, bootstrap)
    base, cap = _backoff(ads)
    timeout = _initial_fetch_timeout(dynamic)
    admin_address, admin_port = None, None
    if bootstrap.admin.address.HasField("socket_address"):
        admin_address = bootstrap.admin.address.socket_address.address
        admin_port = bootstrap.admin.address.socket_address.port_value
    return BootstrapConfig(
        node=node,
        xds_host=host,
        xds_port=port,
        delta=ads.api_type == api_types.DELTA_GRPC,
        node_on_first_message_only=ads.set_node_on_first_message_only,
        admin_address=admin_address,
        admin_port=admin_port,
        backoff_base=base,
        backoff_max=cap,
        initial_fetch_timeout=timeout,
        source=source,
        metadata=json_format.MessageToDict(node.metadata),
        initial_metadata=_initial_metadata(source, ads.grpc_services[0]),
    )


def _initial_metadata(source: str, service: Message) -> tuple[tuple[str, str], ...]:
    out = []
    for i, header in enumerate(service.initial_metadata):
        key = header.key.lower()
        if not key or key.startswith(":") or header.raw_value:
            raise BootstrapError(
                source,
                f"dynamic_resources.ads_config.grpc_services[0].initial_metadata[{i}]",
                "needs a lowercase key that is not a pseudo-header, and a string value",
            )
        out.append((key, header.value))
    return tuple(out)


def _format(source: str) -> str:
    return "JSON" if source.endswith(".json") else "YAML"


def _require_v3(source: str, path: str, message: Message) -> None:
    version = message.transport_api_version
    if version != config_source_pb2.ApiVersion.V3:
        name = config_source_pb2.ApiVersion.Name(version)
        raise BootstrapError(source, path, f"{name} is not supported: set V3")


def _require_ads(source: str, path: str, dynamic: Message, name: str) -> None:
    if not dynamic.HasField(name):
        raise BootstrapError(source, path, "is required: set `ads: {}`")
    config = getattr(dynamic, name)
    if not config.HasField("ads"):
        kind = config.WhichOneof("config_source_specifier") or "nothing"
        raise BootstrapError(source, path, f"uses {kind}; pydp supports only `ads: {{}}`")
    if config.resource_api_version not in (
        config_source_pb2.ApiVersion.AUTO,
        config_source_pb2.ApiVersion.V3,
    ):
        raise BootstrapError(source, f"{path}.resource_api_version", "must be V3")


def _control_plane(source: str, bootstrap: Message) -> tuple[str, int]:
    path = "dynamic_resources.ads_config.grpc_services"
    services = bootstrap.dynamic_resources.ads_config.grpc_services
    if not services:
        raise BootstrapError(source, path, "names no gRPC service")
    service = services[0]
    kind = service.WhichOneof("target_specifier")
    if kind == "google_grpc":
        google = service.google_grpc
        if google.HasField("channel_credentials") or google.call_credentials:
            raise BootstrapError(
                source, f"{path}[0].google_grpc", "credentials are not supported (plaintext only)"
            )
        return _split_target(source, f"{path}[0].google_grpc.target_uri", google.target_uri)
    if kind != "envoy_grpc":
        raise BootstrapError(source, f"{path}[0]", "needs envoy_grpc or google_grpc")
    name = service.envoy_grpc.cluster_name
    where = f"{path}[0].envoy_grpc.cluster_name"
    for i, cluster in enumerate(bootstrap.static_resources.clusters):
        if cluster.name == name:
            return _static_address(source, f"static_resources.clusters[{i}]", cluster)
    raise BootstrapError(source, where, f"{name!r} is not a cluster in static_resources.clusters")


def _static_address(source: str, path: str, cluster: Message) -> tuple[str, int]:
    types = cluster_pb2.Cluster.DiscoveryType
    if cluster.WhichOneof("cluster_discovery_type") == "cluster_type" or cluster.type not in (
        types.STATIC,
        types.STRICT_DNS,
        types.LOGICAL_DNS,
    ):
        raise BootstrapError(source, f"{path}.type", "the xDS cluster must be STATIC or DNS")
    if cluster.HasField("transport_socket"):
        raise BootstrapError(
            source, f"{path}.transport_socket", "TLS to the xDS server is not supported"
        )
    if not _uses_http2(cluster):
        raise BootstrapError(
            source,
            f"{path}.typed_extension_protocol_options",
            f"{HTTP_PROTOCOL_OPTIONS} must set explicit_http_config.http2_protocol_options "
            "(gRPC needs HTTP/2)",
        )
    for i, locality in enumerate(cluster.load_assignment.endpoints):
        for j, lb_endpoint in enumerate(locality.lb_endpoints):
            address = lb_endpoint.endpoint.address.socket_address
            where = f"{path}.load_assignment.endpoints[{i}].lb_endpoints[{j}]"
            if not address.address or address.WhichOneof("port_specifier") != "port_value":
                raise BootstrapError(
                    source, f"{where}.endpoint.address.socket_address", "needs address, port_value"
                )
            return address.address, address.port_value
    raise BootstrapError(source, f"{path}.load_assignment", "has no endpoint")


def _uses_http2(cluster: Message) -> bool:
    if cluster.HasField("http2_protocol_options"):
        return True
    packed = cluster.typed_extension_protocol_options.get(HTTP_PROTOCOL_OPTIONS)
    if packed is None:
        return False
    options = http_protocol_options_pb2.HttpProtocolOptions()
    if not packed.Unpack(options):
        return False
    return bool(options.explicit_http_config.HasField("http2_protocol_options"))


def _split_target(source: str, path: str, target: str) -> tuple[str, int]:
    rest = target.removeprefix("dns:///").removeprefix("dns:").removeprefix("ipv4:")
    rest = rest.removeprefix("ipv6:")
    host, _, port = rest.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BootstrapError(source, path, f"{target!r} is not of the form host:port")
    return host, int(port)


def _backoff(ads: Message) -> tuple[float, float]:
    service = ads.grpc_services[0]
    if not service.envoy_grpc.retry_policy.HasField("retry_back_off"):
        return DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_MAX
    back_off = service.envoy_grpc.retry_policy.retry_back_off
    base = back_off.base_interval.ToTimedelta().total_seconds()
    if back_off.HasField("max_interval"):
        return base, back_off.max_interval.ToTimedelta().total_seconds()
    return base, base * 10


def _initial_fetch_timeout(dynamic: Message) -> float:
    for config in (dynamic.cds_config, dynamic.lds_config):
        if config.HasField("initial_fetch_timeout"):
            return float(config.initial_fetch_timeout.ToTimedelta().total_seconds())
    return DEFAULT_INITIAL_FETCH_TIMEOUT
