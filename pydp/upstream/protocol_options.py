"""The upstream HTTP protocol of a Cluster and its connection-level HTTP options.

HTTP/2 when the typed `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`
says `explicit_http_config.http2_protocol_options` or, without typed options,
when the legacy `http2_protocol_options` is set; the downstream protocol with
`use_downstream_protocol_config` or `protocol_selection:
USE_DOWNSTREAM_PROTOCOL`; otherwise HTTP/1.1. The HTTP/1 and HTTP/2 option
messages are passed through for the connection adapter. ALPN selection
(`auto_config`), HTTP/3 and upstream HTTP filters are refused.
"""

from __future__ import annotations

import enum
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from pydp.errors import ConfigError
from pydp.upstream.fields import duration_or, reject_unknown, wrapped

HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

Cluster = cluster_pb2.Cluster


class UpstreamProtocol(enum.Enum):
    HTTP1 = "http1"
    HTTP2 = "http2"
    USE_DOWNSTREAM = "use_downstream"


_HTTP_OPTIONS_FIELDS = {
    "common_http_protocol_options",
    "explicit_http_config",
    "use_downstream_protocol_config",
}
_COMMON_HTTP_FIELDS = {"idle_timeout", "max_requests_per_connection", "max_connection_duration"}


def common_http_options(cluster: Any, res: str) -> tuple[float | None, int | None, float | None]:
    options = _typed_http_options(cluster, res)
    if options is not None and options.HasField("common_http_protocol_options"):
        common, path = (
            options.common_http_protocol_options,
            "typed_extension_protocol_options.common_http_protocol_options.",
        )
    elif cluster.HasField("common_http_protocol_options"):
        common, path = cluster.common_http_protocol_options, "common_http_protocol_options."
    else:
        common, path = None, ""
    max_requests = int(wrapped(cluster, "max_requests_per_connection", 0)) or None
    if common is None:
        return None, max_requests, None
    reject_unknown(common, _COMMON_HTTP_FIELDS, res, path)
    if common.HasField("max_requests_per_connection"):
        max_requests = int(common.max_requests_per_connection.value) or None
    return (
        duration_or(common, "idle_timeout", None),
        max_requests,
        duration_or(common, "max_connection_duration", None),
    )


def _typed_http_options(cluster: Any, res: str) -> Any:
    options_map = cluster.typed_extension_protocol_options
    for key in options_map:
        if key != HTTP_PROTOCOL_OPTIONS:
            raise ConfigError(
                res, f"typed_extension_protocol_options[{key}]", "unsupported protocol options"
            )
    if HTTP_PROTOCOL_OPTIONS not in options_map:
        return None
    options = http_protocol_options_pb2.HttpProtocolOptions()
    packed = options_map[HTTP_PROTOCOL_OPTIONS]
    if not packed.Unpack(options):
        raise ConfigError(
            res,
            f"typed_extension_protocol_options[{HTTP_PROTOCOL_OPTIONS}]",
            f"unexpected type {packed.type_url}",
        )
    reject_unknown(
        options,
        _HTTP_OPTIONS_FIELDS,
        res,
        f"typed_extension_protocol_options[{HTTP_PROTOCOL_OPTIONS}].",
    )
    return options


def upstream_protocol(cluster: Any, res: str) -> tuple[UpstreamProtocol, Any, Any]:
    options = _typed_http_options(cluster, res)
    path = f"typed_extension_protocol_options[{HTTP_PROTOCOL_OPTIONS}]."
    if options is not None:
        legacy = [
            f for f in ("http_protocol_options", "http2_protocol_options") if cluster.HasField(f)
        ]
        if legacy or cluster.protocol_selection:
            name = legacy[0] if legacy else "protocol_selection"
            raise ConfigError(res, name, "cannot be combined with typed HttpProtocolOptions")
        kind = options.WhichOneof("upstream_protocol_options")
        if kind == "explicit_http_config":
            explicit = options.explicit_http_config
            which = explicit.WhichOneof("protocol_config")
            if which == "http2_protocol_options":
                return UpstreamProtocol.HTTP2, None, explicit.http2_protocol_options
            if which == "http_protocol_options":
                return UpstreamProtocol.HTTP1, explicit.http_protocol_options, None
            raise ConfigError(
                res, path + f"explicit_http_config.{which}", "unsupported upstream protocol"
            )
        if kind == "use_downstream_protocol_config":
            down = options.use_downstream_protocol_config
            reject_unknown(
                down, {"http_protocol_options", "http2_protocol_options"}, res, path + kind + "."
            )
            return (
                UpstreamProtocol.USE_DOWNSTREAM,
                down.http_protocol_options if down.HasField("http_protocol_options") else None,
                down.http2_protocol_options if down.HasField("http2_protocol_options") else None,
            )
        raise ConfigError(
            res, path + "upstream_protocol_options", "an upstream protocol must be chosen"
        )
    http1 = cluster.http_protocol_options if cluster.HasField("http_protocol_options") else None
    http2 = cluster.http2_protocol_options if cluster.HasField("http2_protocol_options") else None
    if cluster.protocol_selection == Cluster.USE_DOWNSTREAM_PROTOCOL:
        return UpstreamProtocol.USE_DOWNSTREAM, http1, http2
    if http2 is not None:
        return UpstreamProtocol.HTTP2, http1, http2
    return UpstreamProtocol.HTTP1, http1, None
