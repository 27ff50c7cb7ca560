"""Filter chains: the inbound listener in every peer authentication mode, matching, refusals."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2
from hypothesis import given
from hypothesis import strategies as st

from pydp.errors import ConfigError
from pydp.listener.compile import compile_listener
from pydp.listener.config import (
    FilterChainConfig,
    ListenerConfig,
    TcpProxyConfig,
    TlsInspectorConfig,
)
from tests.pydp.listener.builders import listener_dict, message
from xds_server.translate.listeners import inbound_listener

E = "type.googleapis.com/envoy.extensions."
INSPECTOR: dict[str, Any] = {
    "name": "envoy.filters.listener.tls_inspector",
    "typed_config": {"@type": E + "filters.listener.tls_inspector.v3.TlsInspector"},
}
TLS: dict[str, Any] = {
    "name": "envoy.transport_sockets.tls",
    "typed_config": {
        "@type": E + "transport_sockets.tls.v3.DownstreamTlsContext",
        "common_tls_context": {
            "tls_certificate_sds_secret_configs": [{"name": "default", "sds_config": {"ads": {}}}]
        },
    },
}


def chain(name: str, transport: str | None = None, tls: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "filters": copy.deepcopy(listener_dict()["filter_chains"][0]["filters"]),
    }
    if transport is not None:
        out["filter_chain_match"] = {"transport_protocol": transport}
    if tls:
        out["transport_socket"] = copy.deepcopy(TLS)
    return out


def with_chains(*chains: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**listener_dict(), "filter_chains": list(chains), **fields}


def refused(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        compile_listener(message(data))
    return caught.value


def test_strict_is_one_mtls_chain_for_every_connection() -> None:
    config = compile_listener(inbound_listener(15006, "STRICT"))
    (only,) = config.filter_chains
    assert only.tls is not None and only.tls.require_client_certificate
    assert only.transport_protocol == ""
    assert config.tls_inspector is None
    assert config.chain_for("raw_buffer") is only  # a plaintext client meets the TLS chain


def test_permissive_tells_tls_from_plaintext_with_the_inspector() -> None:
    config = compile_listener(inbound_listener(15006, "PERMISSIVE"))
    mtls, plain = config.filter_chains
    assert (mtls.name, mtls.transport_protocol) == ("inbound-mtls", "tls")
    assert (plain.name, plain.transport_protocol, plain.tls) == ("inbound-plaintext", "", None)
    assert config.tls_inspector == TlsInspectorConfig(64 * 1024)
    assert config.chain_for("tls") is mtls
    assert config.chain_for("raw_buffer") is plain
    assert config.listener_filters_timeout == 15.0
    assert not config.continue_on_listener_filters_timeout


def test_disable_is_one_plaintext_chain() -> None:
    config = compile_listener(inbound_listener(15006, "DISABLE"))
    assert [c.tls for c in config.filter_chains] == [None]


def test_the_inspector_is_injected_when_a_chain_matches_tls_without_it() -> None:
    config = compile_listener(message(with_chains(chain("a", "tls", tls=True), chain("b"))))
    assert config.tls_inspector == TlsInspectorConfig()
    plain = compile_listener(message(with_chains(chain("a", "raw_buffer"), chain("b"))))
    assert plain.tls_inspector is None


def test_listener_filter_settings_are_carried() -> None:
    inspector = copy.deepcopy(INSPECTOR)
    inspector["typed_config"]["max_client_hello_size"] = 4096
    data = with_chains(
        chain("a"),
        listener_filters=[inspector],
        listener_filters_timeout="2s",
        continue_on_listener_filters_timeout=True,
    )
    config = compile_listener(message(data))
    assert config.tls_inspector == TlsInspectorConfig(4096)
    assert config.listener_filters_timeout == 2.0
    assert config.continue_on_listener_filters_timeout
    no_timeout = compile_listener(message(with_chains(chain("a"), listener_filters_timeout="0s")))
    assert no_timeout.listener_filters_timeout is None


def test_a_default_chain_takes_what_no_chain_matches_and_ignores_its_match() -> None:
    default = chain("fallback", "tls")
    config = compile_listener(
        message(with_chains(chain("tls-only", "tls", tls=True), default_filter_chain=default))
    )
    assert config.chain_for("raw_buffer") is config.default_filter_chain
    assert config.default_filter_chain is not None
    assert config.default_filter_chain.transport_protocol == ""
    assert config.chain_for("tls") is config.filter_chains[0]
    only_default = compile_listener(message(with_chains(default_filter_chain=chain("d"))))
    assert only_default.chain_for("tls") is only_default.default_filter_chain


def test_without_a_match_or_default_the_connection_has_no_chain() -> None:
    config = compile_listener(message(with_chains(chain("tls-only", "tls", tls=True))))
    assert config.chain_for("raw_buffer") is None


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        (
            with_chains(chain("a"), chain("b")),
            "filter_chains[1].filter_chain_match",
            "filter chain 'b' has the same matching rules defined as 'a'",
        ),
        (
            with_chains(chain("a", "tls"), chain("", "tls")),
            "filter_chains[1].filter_chain_match",
            "filter chain 'filter_chains[1]' has the same matching rules defined as 'a'",
        ),
        (
            with_chains(chain("a", "quic")),
            "filter_chains[0].filter_chain_match.transport_protocol",
            "'quic' is not supported by pydp",
        ),
        (
            with_chains({**chain("a"), "filter_chain_match": {"destination_port": 80}}),
            "filter_chains[0].filter_chain_match.destination_port",
            "not supported",
        ),
        (
            with_chains({**chain("a"), "filter_chain_match": {"application_protocols": ["h2"]}}),
            "filter_chains[0].filter_chain_match.application_protocols",
            "not supported",
        ),
        (
            with_chains({**chain("a"), "use_proxy_proto": True}),
            "filter_chains[0].use_proxy_proto",
            "PROXY protocol",
        ),
        (
            with_chains(chain("a"), listener_filters=[{**INSPECTOR, "filter_disabled": {}}]),
            "listener_filters[0].filter_disabled",
            "not supported",
        ),
        (
            with_chains(
                chain("a"),
                listener_filters=[
                    {
                        "name": "envoy.filters.listener.http_inspector",
                        "typed_config": {
                            "@type": E + "filters.listener.http_inspector.v3.HttpInspector"
                        },
                    }
                ],
            ),
            "listener_filters[0].typed_config",
            "unsupported listener filter envoy.filters.listener.http_inspector",
        ),
        (
            with_chains(
                chain("a"),
                listener_filters=[
                    {
                        **INSPECTOR,
                        "typed_config": {
                            **INSPECTOR["typed_config"],
                            "enable_ja3_fingerprinting": True,
                        },
                    }
                ],
            ),
            "listener_filters[0].typed_config.enable_ja3_fingerprinting",
            "not supported",
        ),
        (
            with_chains(
                chain("a"),
                listener_filters=[
                    {
                        **INSPECTOR,
                        "typed_config": {
                            **INSPECTOR["typed_config"],
                            "max_client_hello_size": 70000,
                        },
                    }
                ],
            ),
            "listener_filters[0].typed_config.max_client_hello_size",
            "must be 1 to 65536",
        ),
    ],
)
def test_what_pydp_cannot_honour_is_refused_by_name(
    data: dict[str, Any], field: str, problem: str
) -> None:
    error = refused(data)
    assert error.resource == "listener outbound"
    assert error.field == field
    assert problem in error.problem


# Registered in protobuf's pool so that a refused listener filter can be written in JSON.
_REGISTERED = (http_inspector_pb2,)


def _config(transports: list[str], default: bool) -> ListenerConfig:
    chains = tuple(
        FilterChainConfig(TcpProxyConfig("s", "c"), name=f"c{i}", transport_protocol=t)
        for i, t in enumerate(transports)
    )
    fallback = FilterChainConfig(TcpProxyConfig("s", "c"), name="default") if default else None
    return ListenerConfig("l", "127.0.0.1", 0, chains, default_filter_chain=fallback)


@given(
    transports=st.lists(st.sampled_from(["", "tls", "raw_buffer"]), unique=True),
    default=st.booleans(),
    transport=st.sampled_from(["tls", "raw_buffer"]),
)
def test_the_most_specific_chain_wins(transports: list[str], default: bool, transport: str) -> None:
    config = _config(transports, default)
    found = config.chain_for(transport)
    if transport in transports:
        assert found is not None and found.transport_protocol == transport
    elif "" in transports:
        assert found is not None and found.transport_protocol == ""
    elif default:
        assert found is config.default_filter_chain
    else:
        assert found is None
