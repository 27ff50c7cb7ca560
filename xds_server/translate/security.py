"""TLS transport sockets for mesh traffic, with certificates and roots by SDS.

Every socket refers to the proxy's two SDS secrets over ADS: `default` (its
own certificate) and `ROOTCA` (the trust bundle). Upstream (a client sidecar
calling a mesh Service) the peer must present one of the SPIFFE IDs of the
Service's workloads; downstream (the inbound listener) the client must
present a certificate of the mesh's trust domain. ALPN offers `h2` or
`http/1.1` as the hop speaks, so the protocol survives the mTLS hop.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import any_pb2, wrappers_pb2

from xds_server.ca.identity import SECRET_ROOT, SECRET_WORKLOAD, SPIFFE_SCHEME
from xds_server.translate.common import ads_source

TLS_SOCKET = "envoy.transport_sockets.tls"
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"
ALPN_H2 = "h2"
ALPN_HTTP11 = "http/1.1"

STRICT = "STRICT"
PERMISSIVE = "PERMISSIVE"
DISABLE = "DISABLE"


@dataclass(frozen=True, slots=True)
class MeshSecurity:
    """How the translator secures the mesh.

    `mtls` says whether a CA serves certificates (so that SDS secrets exist);
    without it every hop is plaintext and only authorization applies.
    `mode` is the mesh-wide peer authentication mode, for workloads no
    PeerAuthentication decides.
    """

    mtls: bool = False
    trust_domain: str = "cluster.local"
    mode: str = PERMISSIVE


def _sds(name: str) -> Any:
    return secret_pb2.SdsSecretConfig(name=name, sds_config=ads_source())


def _uri(matcher: Any) -> Any:
    return common_pb2.SubjectAltNameMatcher(
        san_type=common_pb2.SubjectAltNameMatcher.URI, matcher=matcher
    )


def _common(alpn: tuple[str, ...], sans: list[Any]) -> Any:
    return tls_pb2.CommonTlsContext(
        tls_certificate_sds_secret_configs=[_sds(SECRET_WORKLOAD)],
        combined_validation_context=tls_pb2.CommonTlsContext.CombinedCertificateValidationContext(
            default_validation_context=common_pb2.CertificateValidationContext(
                match_typed_subject_alt_names=sans
            ),
            validation_context_sds_secret_config=_sds(SECRET_ROOT),
        ),
        alpn_protocols=list(alpn),
    )


def _socket(context: Any) -> Any:
    packed = any_pb2.Any()
    packed.Pack(context)
    return base_pb2.TransportSocket(name=TLS_SOCKET, typed_config=packed)


def sni(cluster_name: str) -> str:
    """Istio's SNI for a cluster: `outbound_.<port>_.<subset>_.<host>`."""
    return cluster_name.replace("|", "_.")


@lru_cache(maxsize=1 << 16)
def upstream_tls(peers: tuple[str, ...], http2: bool, server_name: str) -> Any:
    """Originate mTLS to a Service whose workloads are the SPIFFE IDs `peers`."""
    context = tls_pb2.UpstreamTlsContext(
        common_tls_context=_common(
            (ALPN_H2,) if http2 else (ALPN_HTTP11,),
            [_uri(string_pb2.StringMatcher(exact=p)) for p in peers],
        ),
        sni=server_name,
    )
    return _socket(context)


@lru_cache(maxsize=64)
def downstream_tls(trust_domain: str) -> Any:
    """Terminate mTLS from any workload of `trust_domain` (a client certificate is required)."""
    context = tls_pb2.DownstreamTlsContext(
        common_tls_context=_common(
            (ALPN_H2, ALPN_HTTP11),
            [_uri(string_pb2.StringMatcher(prefix=f"{SPIFFE_SCHEME}{trust_domain}/"))],
        ),
        require_client_certificate=wrappers_pb2.BoolValue(value=True),
    )
    return _socket(context)


def tls_inspector() -> Any:
    packed = any_pb2.Any()
    packed.Pack(tls_inspector_pb2.TlsInspector())
    return packed


def cache_clear() -> None:
    upstream_tls.cache_clear()
    downstream_tls.cache_clear()
