"""Compile `envoy.filters.network.http_connection_manager` into `HttpConnectionManagerConfig`.

Routes come from RDS over ADS or an inline `route_config`; the HTTP filters
are RBAC filters (`pydp.rbac`), in order, then the router, which must be last
(optional filters pydp does not know are skipped, as Envoy skips optional
filters it lacks); the common HCM options and x-forwarded-client-cert
handling are carried, everything else set is refused.
"""

from __future__ import annotations

from typing import Any

from envoy.extensions.filters.http.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from pydp.errors import ConfigError
from pydp.listener.access_logs import compile_access_logs
from pydp.listener.config import HttpConnectionManagerConfig
from pydp.listener.fields import At, Message, flag, seconds, timeout, type_url, unpack
from pydp.rbac import RBAC_FILTER, RBAC_TYPE, RbacFilter, compile_rbac_filter
from pydp.router import compile_route_config

ROUTER_FILTER = "envoy.filters.http.router"
ROUTER_TYPE = type_url(router_pb2.Router)
_XFCC_SETS = {"APPEND_FORWARD", "SANITIZE_SET"}  # the modes that write the peer's details
MAX_REQUEST_HEADERS_KB = 8192
_CODECS = {
    hcm_pb2.HttpConnectionManager.AUTO: "auto",
    hcm_pb2.HttpConnectionManager.HTTP1: "http1",
    hcm_pb2.HttpConnectionManager.HTTP2: "http2",
}
_HCM_FIELDS = {
    "codec_type",
    "stat_prefix",
    "rds",
    "route_config",
    "http_filters",
    "common_http_protocol_options",
    "http_protocol_options",
    "http2_protocol_options",
    "server_name",
    "server_header_transformation",
    "max_request_headers_kb",
    "stream_idle_timeout",
    "request_timeout",
    "request_headers_timeout",
    "drain_timeout",
    "delayed_close_timeout",
    "access_log",
    "use_remote_address",
    "xff_num_trusted_hops",
    "skip_xff_append",
    "generate_request_id",
    "preserve_external_request_id",
    "normalize_path",
    "merge_slashes",
    "strip_any_host_port",
    "forward_client_cert_details",
    "set_current_client_cert_details",
}
_COMMON_OPTIONS_FIELDS = {"idle_timeout", "max_headers_count"}
_ROUTER_FIELDS = {"dynamic_stats", "start_child_span"}


def compile_http_connection_manager(hcm: Message, at: At) -> HttpConnectionManagerConfig:
    at.only(hcm, _HCM_FIELDS)
    if not hcm.stat_prefix:
        raise (at / "stat_prefix").error("must not be empty")
    if hcm.codec_type not in _CODECS:
        name = hcm_pb2.HttpConnectionManager.CodecType.Name(hcm.codec_type)
        raise (at / "codec_type").error(f"{name} is not supported by pydp")
    if hcm.server_header_transformation != hcm_pb2.HttpConnectionManager.OVERWRITE:
        name = hcm_pb2.HttpConnectionManager.ServerHeaderTransformation.Name(
            hcm.server_header_transformation
        )
        raise (at / "server_header_transformation").error(f"{name} is not supported by pydp")
    for field in ("http_protocol_options", "http2_protocol_options"):
        options = getattr(hcm, field)
        for descriptor, _ in options.ListFields():
            raise (at / field / descriptor.name).error("is not supported by pydp")
    common = hcm.common_http_protocol_options
    (at / "common_http_protocol_options").only(common, _COMMON_OPTIONS_FIELDS)
    rds_name, route_table = _routes(hcm, at)
    rbac_filters = _http_filters(hcm, at / "http_filters")
    forward_client_cert = hcm_pb2.HttpConnectionManager.ForwardClientCertDetails.Name(
        hcm.forward_client_cert_details
    )
    max_kb = hcm.max_request_headers_kb.value if hcm.HasField("max_request_headers_kb") else 60
    if not 0 < max_kb <= MAX_REQUEST_HEADERS_KB:
        raise (at / "max_request_headers_kb").error(
            f"must be between 1 and {MAX_REQUEST_HEADERS_KB}, got {max_kb}"
        )
    max_headers = 100
    if common.HasField("max_headers_count"):
        max_headers = common.max_headers_count.value
        if max_headers < 1:
            raise (at / "common_http_protocol_options" / "max_headers_count").error(
                "must be at least 1"
            )
    return HttpConnectionManagerConfig(
        stat_prefix=hcm.stat_prefix,
        codec=_CODECS[hcm.codec_type],
        rds_name=rds_name,
        route_table=route_table,
        server_name=(hcm.server_name or "envoy").encode(),
        use_remote_address=flag(hcm, "use_remote_address", False),
        xff_num_trusted_hops=int(hcm.xff_num_trusted_hops),
        skip_xff_append=bool(hcm.skip_xff_append),
        generate_request_id=flag(hcm, "generate_request_id", True),
        preserve_external_request_id=bool(hcm.preserve_external_request_id),
        strip_any_host_port=bool(hcm.strip_any_host_port),
        normalize_path=flag(hcm, "normalize_path", False),
        merge_slashes=bool(hcm.merge_slashes),
        request_timeout=timeout(hcm, "request_timeout", None),
        request_headers_timeout=timeout(hcm, "request_headers_timeout", None),
        stream_idle_timeout=timeout(hcm, "stream_idle_timeout", 300.0),
        idle_timeout=timeout(common, "idle_timeout", 3600.0),
        drain_timeout=(seconds(hcm.drain_timeout) if hcm.HasField("drain_timeout") else 5.0),
        max_request_headers_kb=max_kb,
        max_headers_count=max_headers,
        access_logs=compile_access_logs(hcm.access_log, at / "access_log"),
        rbac_filters=rbac_filters,
        forward_client_cert_details=forward_client_cert,
        set_current_client_cert_details=_client_cert_details(hcm, at, forward_client_cert),
    )


def _client_cert_details(hcm: Message, at: At, mode: str) -> tuple[str, ...]:
    """The XFCC elements to set, in Envoy's order (Cert, Chain, Subject, URI, DNS)."""
    details = hcm.set_current_client_cert_details
    details_at = at / "set_current_client_cert_details"
    if mode in _XFCC_SETS:
        for field in ("cert", "chain"):
            if getattr(details, field):
                raise (details_at / field).error(
                    "is not supported by pydp, which does not keep the peer's certificate in PEM"
                )
    out = []
    if details.HasField("subject") and details.subject.value:
        out.append("subject")
    if details.uri:
        out.append("uri")
    if details.dns:
        out.append("dns")
    return tuple(out)


def _routes(hcm: Message, at: At) -> tuple[str | None, Any]:
    kind = hcm.WhichOneof("route_specifier")
    if kind == "rds":
        rds_at = at / "rds"
        if not hcm.rds.route_config_name:
            raise (rds_at / "route_config_name").error("must not be empty")
        if hcm.rds.HasField("config_source") and not hcm.rds.config_source.HasField("ads"):
            source = hcm.rds.config_source.WhichOneof("config_source_specifier") or "nothing"
            raise (rds_at / "config_source").error(f"uses {source}; pydp supports only `ads: {{}}`")
        return hcm.rds.route_config_name, None
    if kind == "route_config":
        try:
            return None, compile_route_config(hcm.route_config)
        except ConfigError as exc:
            raise (at / "route_config").error(
                f"{exc.resource}: {exc.field}: {exc.problem}"
            ) from None
    raise (at / (kind or "route_specifier")).error("pydp needs `rds` or an inline `route_config`")


def _http_filters(hcm: Message, at: At) -> tuple[RbacFilter, ...]:
    """The RBAC filters before the router, which must come last (optional unknown filters
    are skipped)."""
    rbac: list[RbacFilter] = []
    router_at: int | None = None
    last = len(hcm.http_filters) - 1
    for i, http_filter in enumerate(hcm.http_filters):
        if router_at is not None:
            break
        filter_at = at / f"[{i}]"
        filter_at.only(http_filter, {"name", "typed_config", "is_optional"})
        type_url = http_filter.typed_config.type_url if http_filter.HasField("typed_config") else ""
        is_router = type_url == ROUTER_TYPE or (not type_url and http_filter.name == ROUTER_FILTER)
        if type_url == RBAC_TYPE or (not type_url and http_filter.name == RBAC_FILTER):
            rbac.append(_rbac(http_filter, filter_at))
        elif is_router:
            _router(http_filter, filter_at)
            router_at = i
        elif not http_filter.is_optional:
            raise filter_at.error(
                f"unsupported HTTP filter {http_filter.name or type_url}"
                f"{f' ({type_url})' if type_url else ''}: pydp supports only {RBAC_FILTER} "
                f"and {ROUTER_FILTER}"
            )
    if router_at is None:
        raise at.error(f"the last HTTP filter must be {ROUTER_FILTER}; there is none")
    if router_at != last:
        raise (at / f"[{router_at}]").error(
            f"{ROUTER_FILTER} must be the last and only HTTP filter after the RBAC filters"
        )
    return tuple(rbac)


def _rbac(http_filter: Message, at: At) -> RbacFilter:
    if not http_filter.HasField("typed_config"):
        raise (at / "typed_config").error(f"{RBAC_FILTER} needs a typed_config of type {RBAC_TYPE}")
    config = unpack(
        http_filter.typed_config, {RBAC_TYPE: rbac_pb2.RBAC}, at / "typed_config", "HTTP filter"
    )
    typed_at = at / "typed_config"
    return compile_rbac_filter(config, typed_at.resource, typed_at.path)


def _router(http_filter: Message, at: At) -> None:
    if not http_filter.HasField("typed_config"):
        return
    router = unpack(
        http_filter.typed_config,
        {ROUTER_TYPE: router_pb2.Router},
        at / "typed_config",
        "HTTP filter",
    )
    (at / "typed_config").only(router, _ROUTER_FIELDS)
    if router.HasField("dynamic_stats") and not router.dynamic_stats.value:
        raise (at / "typed_config" / "dynamic_stats").error("false is not supported by pydp")
