"""Listener protos to `ListenerConfig`: every supported field, and every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from pydp.errors import ConfigError
from pydp.listener.compile import check_addresses, compile_listener, compile_listeners
from pydp.listener.config import (
    AccessLogConfig,
    HttpConnectionManagerConfig,
    ListenerConfig,
    TcpProxyConfig,
)
from tests.pydp.listener.builders import (
    FAULT,
    FILE_LOG,
    GRPC_LOG,
    HCM,
    STDERR_LOG,
    STDOUT_LOG,
    hcm,
    listener,
    listener_dict,
    message,
    router,
    tcp,
)


def http_filter(config: ListenerConfig) -> HttpConnectionManagerConfig:
    assert len(config.filter_chains) == 1
    found = config.filter_chains[0].filter
    assert isinstance(found, HttpConnectionManagerConfig)
    return found


def refused(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        compile_listener(message(data))
    return caught.value


def test_the_control_planes_listener_compiles_to_envoys_defaults() -> None:
    config = compile_listener(listener(traffic_direction="OUTBOUND"))
    assert (config.name, config.address, config.port) == ("outbound", "127.0.0.1", 15001)
    assert config.direction == "OUTBOUND"
    assert config.reuse_port is True
    assert http_filter(config) == HttpConnectionManagerConfig(
        stat_prefix="outbound", rds_name="outbound"
    )


def test_every_supported_connection_manager_field_is_carried() -> None:
    config = http_filter(
        compile_listener(
            listener(
                hcm(
                    codec_type="HTTP2",
                    server_name="pydp-test",
                    use_remote_address=True,
                    xff_num_trusted_hops=2,
                    skip_xff_append=True,
                    generate_request_id=False,
                    preserve_external_request_id=True,
                    strip_any_host_port=True,
                    normalize_path=True,
                    merge_slashes=True,
                    request_timeout="2s",
                    request_headers_timeout="1.500s",
                    stream_idle_timeout="0s",
                    drain_timeout="7s",
                    max_request_headers_kb=96,
                    common_http_protocol_options={"idle_timeout": "30s", "max_headers_count": 50},
                    http_protocol_options={},
                    http2_protocol_options={},
                    delayed_close_timeout="1s",
                )
            )
        )
    )
    assert config.codec == "http2"
    assert config.server_name == b"pydp-test"
    assert config.use_remote_address and config.skip_xff_append
    assert config.xff_num_trusted_hops == 2
    assert not config.generate_request_id
    assert config.preserve_external_request_id and config.strip_any_host_port
    assert config.normalize_path and config.merge_slashes
    assert config.request_timeout == 2.0
    assert config.request_headers_timeout == 1.5
    assert config.stream_idle_timeout is None  # zero disables, as in Envoy
    assert config.idle_timeout == 30.0
    assert config.drain_timeout == 7.0
    assert (config.max_request_headers_kb, config.max_headers_count) == (96, 50)


def test_an_inline_route_config_is_compiled() -> None:
    route_config = {
        "name": "local",
        "virtual_hosts": [
            {
                "name": "all",
                "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "c"}}],
            }
        ],
    }
    config = http_filter(compile_listener(listener(hcm(rds=None, route_config=route_config))))
    assert config.rds_name is None
    assert config.route_table is not None and config.route_table.name == "local"


def test_a_tcp_proxy_listener() -> None:
    config = compile_listener(
        listener(tcp(idle_timeout="10s"), name="db", filter_name="envoy.filters.network.tcp_proxy")
    )
    assert config.filter_chains[0].filter == TcpProxyConfig(
        stat_prefix="tcp", cluster="backend", idle_timeout=10.0
    )


def test_access_logs_file_stdout_stderr_and_formats() -> None:
    logs = [
        {"name": "f", "typed_config": {"@type": FILE_LOG, "path": "/tmp/a.log"}},
        {
            "name": "g",
            "typed_config": {
                "@type": FILE_LOG,
                "path": "/tmp/b.log",
                "log_format": {"text_format_source": {"inline_string": "%PROTOCOL%\n"}},
            },
        },
        {"name": "o", "typed_config": {"@type": STDOUT_LOG}},
        {
            "name": "e",
            "typed_config": {"@type": STDERR_LOG, "log_format": {"text_format": "%DURATION%\n"}},
        },
        {"name": "old", "typed_config": {"@type": FILE_LOG, "path": "/tmp/c.log", "format": "x\n"}},
    ]
    config = http_filter(compile_listener(listener(hcm(access_log=logs))))
    assert config.access_logs == (
        AccessLogConfig("/tmp/a.log", None),
        AccessLogConfig("/tmp/b.log", "%PROTOCOL%\n"),
        AccessLogConfig("/dev/stdout", None),
        AccessLogConfig("/dev/stderr", "%DURATION%\n"),
        AccessLogConfig("/tmp/c.log", "x\n"),
    )
    tcp_logs = [{"name": "o", "typed_config": {"@type": STDOUT_LOG}}]
    tcp_config = compile_listener(listener(tcp(access_log=tcp_logs)))
    assert tcp_config.filter_chains[0].filter.access_logs == (AccessLogConfig("/dev/stdout", None),)
    assert tcp_config.access_logs == (AccessLogConfig("/dev/stdout", None),)


def test_reuse_port_follows_enable_reuse_port_and_ipv6_addresses_are_normalized() -> None:
    assert compile_listener(listener(enable_reuse_port=False)).reuse_port is False
    config = compile_listener(listener(address="0:0::1", port=0))
    assert (config.address, config.port) == ("::1", 0)


def test_optional_unknown_http_filters_are_skipped() -> None:
    optional = {
        "name": "envoy.filters.http.wasm",
        "is_optional": True,
        "typed_config": {"@type": "type.googleapis.com/google.protobuf.Empty"},
    }
    config = compile_listener(listener(hcm(http_filters=[optional, router()])))
    assert http_filter(config).rds_name == "outbound"


def test_fields_without_effect_are_accepted() -> None:
    compile_listener(
        listener(
            metadata={"filter_metadata": {"x": {"a": 1}}},
            per_connection_buffer_limit_bytes=32768,
            drain_type="MODIFY_ONLY",
            tcp_backlog_size=512,
        )
    )


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        (listener_dict(name=""), "name", "must not be empty"),
        (listener_dict(use_original_dst=True), "use_original_dst", "not supported"),
        (
            listener_dict(listener_filters=[{"name": "envoy.filters.listener.original_dst"}]),
            "listener_filters[0].typed_config",
            "pydp supports envoy.filters.listener.tls_inspector",
        ),
        (listener_dict(address="localhost"), "address.socket_address.address", "malformed IP"),
        (
            {**listener_dict(), "address": {"pipe": {"path": "/tmp/s"}}},
            "address.pipe",
            "TCP socket addresses only",
        ),
        (
            {
                **listener_dict(),
                "address": {"socket_address": {"address": "127.0.0.1", "named_port": "http"}},
            },
            "address.socket_address.named_port",
            "not supported",
        ),
        ({**listener_dict(), "filter_chains": []}, "filter_chains", "at least one filter chain"),
        (
            {
                **listener_dict(),
                "filter_chains": [
                    {
                        "filter_chain_match": {"server_names": ["a.example"]},
                        "filters": listener_dict()["filter_chains"][0]["filters"],
                    }
                ],
            },
            "filter_chains[0].filter_chain_match.server_names",
            "not supported",
        ),
        (
            {
                **listener_dict(),
                "filter_chains": [
                    {
                        "transport_socket": {"name": "envoy.transport_sockets.tls"},
                        "filters": listener_dict()["filter_chains"][0]["filters"],
                    }
                ],
            },
            "filter_chains[0].transport_socket.typed_config",
            "is required",
        ),
        (
            {
                **listener_dict(),
                "filter_chains": [
                    {
                        "filters": [
                            {"name": "envoy.filters.network.rbac"},
                            *listener_dict()["filter_chains"][0]["filters"],
                        ]
                    }
                ],
            },
            "filter_chains[0].filters",
            "envoy.filters.network.rbac",
        ),
        (
            listener_dict(
                {"@type": "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"},
                filter_name="envoy.filters.network.rbac",
            ),
            "filter_chains[0].filters[0].typed_config",
            "unsupported network filter envoy.filters.network.rbac",
        ),
    ],
)
def test_listener_fields_pydp_cannot_honour_are_refused(
    data: dict[str, Any], field: str, problem: str
) -> None:
    error = refused(data)
    assert error.resource == f"listener {data['name']}" if data["name"] else "listener"
    assert error.field == field
    assert problem in error.problem


FILTER = "filter_chains[0].filters[0].typed_config"


@pytest.mark.parametrize(
    ("config", "field", "problem"),
    [
        (hcm(stat_prefix=""), "stat_prefix", "must not be empty"),
        (hcm(codec_type="HTTP3"), "codec_type", "HTTP3 is not supported"),
        (
            hcm(server_header_transformation="PASS_THROUGH"),
            "server_header_transformation",
            "PASS_THROUGH",
        ),
        (hcm(via="pydp"), "via", "not supported"),
        (hcm(tracing={}), "tracing", "not supported"),
        (hcm(add_user_agent=True), "add_user_agent", "not supported"),
        (hcm(strip_matching_host_port=True), "strip_matching_host_port", "not supported"),
        (hcm(upgrade_configs=[{"upgrade_type": "websocket"}]), "upgrade_configs", "not supported"),
        (
            hcm(http_protocol_options={"accept_http_10": True}),
            "http_protocol_options.accept_http_10",
            "not supported",
        ),
        (
            hcm(common_http_protocol_options={"max_connection_duration": "1s"}),
            "common_http_protocol_options.max_connection_duration",
            "not supported",
        ),
        (
            hcm(common_http_protocol_options={"max_headers_count": 0}),
            "common_http_protocol_options.max_headers_count",
            "at least 1",
        ),
        (hcm(max_request_headers_kb=9000), "max_request_headers_kb", "between 1 and 8192"),
        (hcm(rds=None, scoped_routes={"name": "s"}), "scoped_routes", "not supported"),
        (
            hcm(
                rds={
                    "route_config_name": "r",
                    "config_source": {"path_config_source": {"path": "/x"}},
                }
            ),
            "rds.config_source",
            "path_config_source",
        ),
        (hcm(rds={"config_source": {"ads": {}}}), "rds.route_config_name", "must not be empty"),
        (
            hcm(
                rds=None,
                route_config={
                    "name": "r",
                    "virtual_hosts": [
                        {
                            "name": "v",
                            "domains": ["*"],
                            "rate_limits": [
                                {"actions": [{"generic_key": {"descriptor_value": "x"}}]}
                            ],
                            "routes": [
                                {"match": {"prefix": "/"}, "route": {"cluster_header": "x-c"}}
                            ],
                        }
                    ],
                },
            ),
            "route_config",
            "virtual_hosts[0].rate_limits: unsupported field",
        ),
        (
            hcm(
                http_filters=[
                    {
                        "name": "envoy.filters.http.fault",
                        "typed_config": {"@type": FAULT},
                    },
                    router(),
                ]
            ),
            "http_filters[0]",
            "unsupported HTTP filter envoy.filters.http.fault",
        ),
        (hcm(http_filters=[]), "http_filters", "must be envoy.filters.http.router"),
        (
            hcm(http_filters=[router(), router()]),
            "http_filters[0]",
            "last and only HTTP filter",
        ),
        (
            hcm(
                http_filters=[
                    {
                        **router(),
                        "typed_config": {
                            "@type": router()["typed_config"]["@type"],
                            "suppress_envoy_headers": True,
                        },
                    }
                ]
            ),
            "http_filters[0].typed_config.suppress_envoy_headers",
            "not supported",
        ),
        (
            hcm(
                access_log=[
                    {
                        "name": "f",
                        "filter": {"not_health_check_filter": {}},
                        "typed_config": {"@type": STDOUT_LOG},
                    }
                ]
            ),
            "access_log[0].filter",
            "not supported",
        ),
        (
            hcm(
                access_log=[
                    {
                        "name": "f",
                        "typed_config": {
                            "@type": FILE_LOG,
                            "path": "/x",
                            "json_format": {"a": "b"},
                        },
                    }
                ]
            ),
            "access_log[0].typed_config.json_format",
            "not supported",
        ),
        (
            hcm(access_log=[{"name": "f", "typed_config": {"@type": FILE_LOG, "path": ""}}]),
            "access_log[0].typed_config.path",
            "must not be empty",
        ),
        (
            hcm(
                access_log=[
                    {
                        "name": "f",
                        "typed_config": {
                            "@type": STDOUT_LOG,
                            "log_format": {"json_format": {"a": "b"}},
                        },
                    }
                ]
            ),
            "access_log[0].typed_config.log_format.json_format",
            "not supported",
        ),
        (
            hcm(
                access_log=[
                    {
                        "name": "f",
                        "typed_config": {
                            "@type": STDOUT_LOG,
                            "log_format": {"text_format": "%NOPE%"},
                        },
                    }
                ]
            ),
            "access_log[0].typed_config",
            "Not supported field in StreamInfo: NOPE",
        ),
        (
            hcm(
                access_log=[
                    {
                        "name": "f",
                        "typed_config": {
                            "@type": STDOUT_LOG,
                            "log_format": {"text_format_source": {"filename": "/f"}},
                        },
                    }
                ]
            ),
            "access_log[0].typed_config.log_format.text_format_source.filename",
            "inline only",
        ),
        (
            hcm(
                access_log=[
                    {
                        "name": "grpc",
                        "typed_config": {"@type": GRPC_LOG},
                    }
                ]
            ),
            "access_log[0].typed_config",
            "unsupported access logger type",
        ),
    ],
)
def test_connection_manager_fields_pydp_cannot_honour_are_refused(
    config: dict[str, Any], field: str, problem: str
) -> None:
    if config.get("rds", "") is None:
        del config["rds"]
    error = refused(listener_dict(config))
    assert error.resource == "listener outbound"
    assert error.field == f"{FILTER}.{field}"
    assert problem in error.problem


@pytest.mark.parametrize(
    ("config", "field", "problem"),
    [
        (tcp(cluster=""), "cluster", "must name a cluster"),
        (
            tcp(cluster="", weighted_clusters={"clusters": [{"name": "a", "weight": 1}]}),
            "weighted_clusters",
            "not supported",
        ),
        (tcp(stat_prefix=""), "stat_prefix", "must not be empty"),
        (tcp(max_connect_attempts=3), "max_connect_attempts", "not supported"),
        (tcp(hash_policy=[{"source_ip": {}}]), "hash_policy", "not supported"),
    ],
)
def test_tcp_proxy_fields_pydp_cannot_honour_are_refused(
    config: dict[str, Any], field: str, problem: str
) -> None:
    if config.get("cluster") == "" and "weighted_clusters" in config:
        del config["cluster"]
    error = refused(listener_dict(config, filter_name="envoy.filters.network.tcp_proxy"))
    assert error.field == f"{FILTER}.{field}"
    assert problem in error.problem


def test_the_error_message_names_listener_field_and_problem() -> None:
    error = refused(listener_dict(hcm(via="x")))
    assert str(error) == f"listener outbound: {FILTER}.via: is not supported by pydp"


def test_two_listeners_on_one_address_are_refused_naming_both() -> None:
    with pytest.raises(ConfigError) as caught:
        compile_listeners({"a": listener(name="a"), "b": listener(name="b")})
    assert caught.value.resource == "listener b"
    assert caught.value.field == "address"
    assert "127.0.0.1:15001 is already the address of listener a" in caught.value.problem


def test_port_zero_listeners_may_share_an_address() -> None:
    configs = {n: compile_listener(listener(name=n, port=0)) for n in ("a", "b")}
    check_addresses(configs)
    assert set(
        compile_listeners({"a": listener(name="a", port=0), "b": listener(name="b", port=0)})
    ) == {"a", "b"}


def test_an_hcm_filter_without_typed_config_is_refused() -> None:
    data = listener_dict()
    del data["filter_chains"][0]["filters"][0]["typed_config"]
    error = refused(data)
    assert error.field == "filter_chains[0].filters[0].typed_config"
    assert "is required" in error.problem
    assert HCM.endswith("HttpConnectionManager")
