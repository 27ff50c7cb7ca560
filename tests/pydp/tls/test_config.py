"""Transport sockets compiled: what the control plane sends, and refusals naming the field."""

from __future__ import annotations

import copy
import ssl
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from google.protobuf.json_format import ParseDict

from pydp.errors import ConfigError
from pydp.tls.config import (
    ClientTlsConfig,
    ServerTlsConfig,
    compile_downstream_tls,
    compile_upstream_tls,
)
from pydp.upstream.cluster import compile_cluster

T = "type.googleapis.com/envoy.extensions.transport_sockets."
DOWN = T + "tls.v3.DownstreamTlsContext"
UP = T + "tls.v3.UpstreamTlsContext"
ADS: dict[str, Any] = {"ads": {}}
H2 = {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}},
    }
}


def common(alpn: list[str], san: dict[str, Any]) -> dict[str, Any]:
    """The `CommonTlsContext` of `xds_server.translate.security`."""
    return {
        "tls_certificate_sds_secret_configs": [{"name": "default", "sds_config": ADS}],
        "combined_validation_context": {
            "default_validation_context": {
                "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": san}]
            },
            "validation_context_sds_secret_config": {"name": "ROOTCA", "sds_config": ADS},
        },
        "alpn_protocols": alpn,
    }


DOWNSTREAM = {
    "name": "envoy.transport_sockets.tls",
    "typed_config": {
        "@type": DOWN,
        "common_tls_context": common(["h2", "http/1.1"], {"prefix": "spiffe://cluster.local/"}),
        "require_client_certificate": True,
    },
}
UPSTREAM = {
    "name": "envoy.transport_sockets.tls",
    "typed_config": {
        "@type": UP,
        "common_tls_context": common(["http/1.1"], {"exact": "spiffe://cluster.local/ns/a/sa/b"}),
        "sni": "outbound_.80_._.a.b.svc.cluster.local",
    },
}


def socket(data: dict[str, Any]) -> Any:
    return ParseDict(copy.deepcopy(data), base_pb2.TransportSocket())


def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`base` with `value` at the dotted `path` (None deletes)."""
    out = copy.deepcopy(base)
    node = out
    *parents, last = path.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if value is None:
        del node[last]
    else:
        node[last] = value
    return out


def test_the_control_planes_downstream_context() -> None:
    config = compile_downstream_tls(socket(DOWNSTREAM), "listener inbound", "filter_chains[0]")
    assert isinstance(config, ServerTlsConfig)
    assert config.require_client_certificate
    assert (config.common.certificate, config.common.validation) == ("default", "ROOTCA")
    assert config.common.alpn == ("h2", "http/1.1")
    assert [m.match.kind for m in config.common.san_matchers] == ["prefix"]
    assert config.common.min_version is ssl.TLSVersion.TLSv1_2
    assert config.common.max_version is None


def test_the_control_planes_upstream_context() -> None:
    config = compile_upstream_tls(socket(UPSTREAM), "cluster c", "transport_socket")
    assert isinstance(config, ClientTlsConfig)
    assert config.sni == "outbound_.80_._.a.b.svc.cluster.local"
    assert config.common.san_matchers[0].match.value == "spiffe://cluster.local/ns/a/sa/b"


def test_raw_buffer_is_plaintext() -> None:
    assert (
        compile_upstream_tls(socket({"name": "envoy.transport_sockets.raw_buffer"}), "c", "t")
        is None
    )
    typed = {"name": "raw", "typed_config": {"@type": T + "raw_buffer.v3.RawBuffer"}}
    assert compile_downstream_tls(socket(typed), "l", "t") is None


def test_tls_versions_from_tls_params() -> None:
    data = changed(
        DOWNSTREAM,
        "typed_config.common_tls_context.tls_params",
        {"tls_minimum_protocol_version": "TLSv1_3", "tls_maximum_protocol_version": "TLSv1_3"},
    )
    config = compile_downstream_tls(socket(data), "l", "t")
    assert config is not None
    assert config.common.min_version is config.common.max_version is ssl.TLSVersion.TLSv1_3


CTX = "typed_config.common_tls_context"


@pytest.mark.parametrize(
    ("path", "value", "field", "problem"),
    [
        ("typed_config.require_sni", True, "typed_config.require_sni", "not supported"),
        (
            "typed_config.session_ticket_keys",
            {"keys": [{"inline_bytes": "eA=="}]},
            "typed_config.session_ticket_keys",
            "not supported",
        ),
        (
            f"{CTX}.tls_certificates",
            [{"certificate_chain": {"filename": "/c.pem"}}],
            f"{CTX}.tls_certificates",
            "by SDS",
        ),
        (
            f"{CTX}.tls_params",
            {"cipher_suites": ["ECDHE-RSA-AES128-GCM-SHA256"]},
            f"{CTX}.tls_params.cipher_suites",
            "not supported",
        ),
        (
            f"{CTX}.tls_params",
            {"tls_minimum_protocol_version": "TLSv1_1"},
            f"{CTX}.tls_params.tls_minimum_protocol_version",
            "TLSv1_1 is not supported",
        ),
        (
            f"{CTX}.tls_params",
            {"tls_minimum_protocol_version": "TLSv1_3", "tls_maximum_protocol_version": "TLSv1_2"},
            f"{CTX}.tls_params.tls_maximum_protocol_version",
            "below the minimum",
        ),
        (
            f"{CTX}.tls_certificate_sds_secret_configs",
            [{"name": "default"}],
            f"{CTX}.tls_certificate_sds_secret_configs[0].sds_config",
            "static secrets",
        ),
        (
            f"{CTX}.tls_certificate_sds_secret_configs",
            [{"name": "default", "sds_config": {"path_config_source": {"path": "/x"}}}],
            f"{CTX}.tls_certificate_sds_secret_configs[0].sds_config",
            "over ADS only",
        ),
        (
            f"{CTX}.tls_certificate_sds_secret_configs",
            [{"name": "a", "sds_config": ADS}, {"name": "b", "sds_config": ADS}],
            f"{CTX}.tls_certificate_sds_secret_configs",
            "one certificate, got 2",
        ),
        (
            f"{CTX}.tls_certificate_sds_secret_configs",
            None,
            f"{CTX}.tls_certificate_sds_secret_configs",
            "a server needs a certificate",
        ),
        (
            f"{CTX}.combined_validation_context",
            None,
            "typed_config.require_client_certificate",
            "needs trusted CAs",
        ),
        (
            f"{CTX}.combined_validation_context.default_validation_context.crl",
            {"filename": "/crl.pem"},
            f"{CTX}.combined_validation_context.default_validation_context.crl",
            "not supported",
        ),
        (f"{CTX}.alpn_protocols", [""], f"{CTX}.alpn_protocols[0]", "1 to 255 bytes"),
        ("typed_config", None, "typed_config", "is required"),
        (
            "typed_config",
            {"@type": UP},
            "typed_config",
            "unsupported transport socket envoy.transport_sockets.tls",
        ),
    ],
)
def test_what_pydp_cannot_honour_downstream_is_refused(
    path: str, value: Any, field: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        compile_downstream_tls(socket(changed(DOWNSTREAM, path, value)), "listener l", "chain")
    assert raised.value.resource == "listener l"
    assert raised.value.field == f"chain.{field}"
    assert problem in raised.value.problem


def test_an_inline_validation_context_is_refused() -> None:
    data = changed(DOWNSTREAM, f"{CTX}.combined_validation_context", None)
    data = changed(data, f"{CTX}.validation_context", {"trusted_ca": {"filename": "/ca.pem"}})
    with pytest.raises(ConfigError) as raised:
        compile_downstream_tls(socket(data), "listener l", "chain")
    assert raised.value.field == f"chain.{CTX}.validation_context"
    assert "trusted CAs by SDS" in raised.value.problem


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("typed_config.auto_host_sni", True, "typed_config.auto_host_sni"),
        ("typed_config.allow_renegotiation", True, "typed_config.allow_renegotiation"),
    ],
)
def test_what_pydp_cannot_honour_upstream_is_refused(path: str, value: Any, field: str) -> None:
    with pytest.raises(ConfigError) as raised:
        compile_upstream_tls(
            socket(changed(UPSTREAM, path, value)), "cluster c", "transport_socket"
        )
    assert raised.value.field == f"transport_socket.{field}"


def cluster(transport_socket: dict[str, Any], **fields: Any) -> Any:
    return ParseDict(
        {
            "name": "outbound|80||a.b.svc.cluster.local",
            "type": "EDS",
            "eds_cluster_config": {"eds_config": ADS},
            "transport_socket": transport_socket,
            **fields,
        },
        cluster_pb2.Cluster(),
    )


def test_a_cluster_carries_its_tls_and_its_alpn_must_offer_its_protocol() -> None:
    assert compile_cluster(cluster(UPSTREAM)).tls is not None
    h2 = changed(UPSTREAM, f"{CTX}.alpn_protocols", ["h2"])
    assert compile_cluster(cluster(h2, typed_extension_protocol_options=H2)).tls is not None
    with pytest.raises(ConfigError) as raised:
        compile_cluster(cluster(UPSTREAM, typed_extension_protocol_options=H2))
    assert raised.value.field == f"transport_socket.{CTX}.alpn_protocols"
    assert "does not offer 'h2'" in raised.value.problem
    with pytest.raises(ConfigError) as raised:
        compile_cluster(cluster(h2))
    assert "does not offer 'http/1.1'" in raised.value.problem
    no_alpn = changed(UPSTREAM, f"{CTX}.alpn_protocols", None)
    assert compile_cluster(cluster(no_alpn, typed_extension_protocol_options=H2)).tls is not None


def test_transport_socket_matches_are_refused() -> None:
    message = cluster(
        UPSTREAM, transport_socket_matches=[{"name": "m", "transport_socket": UPSTREAM}]
    )
    with pytest.raises(ConfigError) as raised:
        compile_cluster(message)
    assert raised.value.field == "transport_socket_matches"
