"""Compile a `transport_socket` into what pydp's TLS needs, refusing what it cannot honour.

Supported: `envoy.transport_sockets.raw_buffer` (plaintext: None) and
`envoy.transport_sockets.tls` with a `DownstreamTlsContext` (a listener's
filter chain) or an `UpstreamTlsContext` (a cluster). Certificates and
trusted CAs come by SDS over ADS (`tls_certificate_sds_secret_configs`,
`validation_context_sds_secret_config`, or the SDS half of
`combined_validation_context`), SANs are matched with
`match_typed_subject_alt_names` (URI and DNS), ALPN and TLS 1.2/1.3 bounds
are honoured, and a client certificate is required by
`require_client_certificate`. Every other set field raises
`ConfigError(resource, "<path>.<field>", problem)`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from pydp.errors import ConfigError
from pydp.tls.san import SanMatcher, compile_san_matchers

Message = Any
TLS_SOCKET = "envoy.transport_sockets.tls"
RAW_BUFFER_SOCKET = "envoy.transport_sockets.raw_buffer"
_PREFIX = "type.googleapis.com/"
DOWNSTREAM_TYPE = _PREFIX + tls_pb2.DownstreamTlsContext.DESCRIPTOR.full_name
UPSTREAM_TYPE = _PREFIX + tls_pb2.UpstreamTlsContext.DESCRIPTOR.full_name
RAW_BUFFER_TYPE = _PREFIX + raw_buffer_pb2.RawBuffer.DESCRIPTOR.full_name
# TlsParameters.TlsProtocol: TLS_AUTO, TLSv1_0, TLSv1_1, TLSv1_2, TLSv1_3.
_VERSIONS = {3: ssl.TLSVersion.TLSv1_2, 4: ssl.TLSVersion.TLSv1_3}
_VERSION_NAMES = {0: "TLS_AUTO", 1: "TLSv1_0", 2: "TLSv1_1", 3: "TLSv1_2", 4: "TLSv1_3"}
_COMMON_FIELDS = {
    "tls_params",
    "tls_certificate_sds_secret_configs",
    "validation_context_sds_secret_config",
    "combined_validation_context",
    "alpn_protocols",
}
_COMMON_REASONS = {
    "tls_certificates": "pydp takes certificates by SDS (tls_certificate_sds_secret_configs)",
    "validation_context": "pydp takes trusted CAs by SDS (validation_context_sds_secret_config "
    "or combined_validation_context)",
}
_DOWNSTREAM_FIELDS = {"common_tls_context", "require_client_certificate"}
_UPSTREAM_FIELDS = {"common_tls_context", "sni", "max_session_keys"}


@dataclass(frozen=True, slots=True)
class CommonTls:
    """A `CommonTlsContext`: the SDS secrets to use, SAN matchers, ALPN and versions."""

    certificate: str | None = None  # name of the SDS secret with the certificate and key
    validation: str | None = None  # name of the SDS secret with the trusted CAs
    san_matchers: tuple[SanMatcher, ...] = ()
    alpn: tuple[str, ...] = ()
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion | None = None  # None: Envoy's default for the side

    def secrets(self) -> tuple[str, ...]:
        return tuple(n for n in (self.certificate, self.validation) if n is not None)


@dataclass(frozen=True, slots=True)
class ServerTlsConfig:
    """A `DownstreamTlsContext`: how a filter chain terminates TLS."""

    common: CommonTls
    require_client_certificate: bool = False


@dataclass(frozen=True, slots=True)
class ClientTlsConfig:
    """An `UpstreamTlsContext`: how a cluster originates TLS."""

    common: CommonTls
    sni: str = ""


def compile_downstream_tls(socket: Message, resource: str, path: str) -> ServerTlsConfig | None:
    """A filter chain's `transport_socket`: None for plaintext."""
    context = _unpack(socket, resource, path, DOWNSTREAM_TYPE, tls_pb2.DownstreamTlsContext)
    if context is None:
        return None
    at = f"{path}.typed_config"
    _only(context, _DOWNSTREAM_FIELDS, resource, at)
    common = _common(context.common_tls_context, resource, f"{at}.common_tls_context")
    if common.certificate is None:
        raise ConfigError(
            resource,
            f"{at}.common_tls_context.tls_certificate_sds_secret_configs",
            "a server needs a certificate",
        )
    require = bool(context.require_client_certificate.value)
    if require and common.validation is None:
        raise ConfigError(
            resource,
            f"{at}.require_client_certificate",
            "requiring a client certificate needs trusted CAs (a validation context)",
        )
    return ServerTlsConfig(common, require)


def compile_upstream_tls(socket: Message, resource: str, path: str) -> ClientTlsConfig | None:
    """A cluster's `transport_socket`: None for plaintext."""
    context = _unpack(socket, resource, path, UPSTREAM_TYPE, tls_pb2.UpstreamTlsContext)
    if context is None:
        return None
    at = f"{path}.typed_config"
    _only(context, _UPSTREAM_FIELDS, resource, at)
    common = _common(context.common_tls_context, resource, f"{at}.common_tls_context")
    return ClientTlsConfig(common, context.sni)


def _only(message: Message, allowed: set[str], resource: str, path: str) -> None:
    for descriptor, _ in message.ListFields():
        if descriptor.name not in allowed:
            problem = _COMMON_REASONS.get(descriptor.name, "is not supported by pydp")
            raise ConfigError(resource, f"{path}.{descriptor.name}", problem)


def _unpack(socket: Message, resource: str, path: str, expected: str, cls: Any) -> Message | None:
    for descriptor, _ in socket.ListFields():
        if descriptor.name not in ("name", "typed_config"):
            raise ConfigError(resource, f"{path}.{descriptor.name}", "is not supported by pydp")
    if not socket.HasField("typed_config"):
        if socket.name == RAW_BUFFER_SOCKET:
            return None
        raise ConfigError(resource, f"{path}.typed_config", f"is required ({socket.name!r})")
    type_url = socket.typed_config.type_url
    if type_url == RAW_BUFFER_TYPE:
        return None
    if type_url != expected:
        raise ConfigError(
            resource,
            f"{path}.typed_config",
            f"unsupported transport socket {socket.name or type_url} ({type_url}): pydp supports "
            f"{TLS_SOCKET} ({expected.removeprefix(_PREFIX)}) and {RAW_BUFFER_SOCKET}",
        )
    message = cls()
    if not socket.typed_config.Unpack(message):
        raise ConfigError(resource, f"{path}.typed_config", f"does not decode as {type_url}")
    return message


def _sds_name(config: Message, resource: str, path: str) -> str:
    _only(config, {"name", "sds_config"}, resource, path)
    if not config.name:
        raise ConfigError(resource, f"{path}.name", "must name a secret")
    if not config.HasField("sds_config"):
        raise ConfigError(
            resource, f"{path}.sds_config", "static secrets are not supported by pydp (use SDS)"
        )
    if config.sds_config.WhichOneof("config_source_specifier") != "ads":
        raise ConfigError(resource, f"{path}.sds_config", "pydp fetches secrets over ADS only")
    return str(config.name)


def _common(common: Message, resource: str, path: str) -> CommonTls:
    _only(common, _COMMON_FIELDS, resource, path)
    certificate = None
    certs = common.tls_certificate_sds_secret_configs
    if len(certs) > 1:
        raise ConfigError(
            resource,
            f"{path}.tls_certificate_sds_secret_configs",
            f"pydp serves one certificate, got {len(certs)}",
        )
    if certs:
        certificate = _sds_name(certs[0], resource, f"{path}.tls_certificate_sds_secret_configs[0]")
    validation = None
    matchers: tuple[SanMatcher, ...] = ()
    if common.HasField("validation_context_sds_secret_config"):
        validation = _sds_name(
            common.validation_context_sds_secret_config,
            resource,
            f"{path}.validation_context_sds_secret_config",
        )
    elif common.HasField("combined_validation_context"):
        combined = common.combined_validation_context
        at = f"{path}.combined_validation_context"
        _only(
            combined,
            {"default_validation_context", "validation_context_sds_secret_config"},
            resource,
            at,
        )
        if not combined.HasField("validation_context_sds_secret_config"):
            raise ConfigError(resource, f"{at}.validation_context_sds_secret_config", "is required")
        validation = _sds_name(
            combined.validation_context_sds_secret_config,
            resource,
            f"{at}.validation_context_sds_secret_config",
        )
        default = combined.default_validation_context
        _only(
            default, {"match_typed_subject_alt_names"}, resource, f"{at}.default_validation_context"
        )
        matchers = compile_san_matchers(
            default.match_typed_subject_alt_names,
            resource,
            f"{at}.default_validation_context.match_typed_subject_alt_names",
        )
    minimum, maximum = _versions(common.tls_params, resource, f"{path}.tls_params")
    alpn = tuple(common.alpn_protocols)
    for i, protocol in enumerate(alpn):
        if not protocol or len(protocol.encode()) > 255:
            raise ConfigError(resource, f"{path}.alpn_protocols[{i}]", "must be 1 to 255 bytes")
    return CommonTls(certificate, validation, matchers, alpn, minimum, maximum)


def _versions(
    params: Message, resource: str, path: str
) -> tuple[ssl.TLSVersion, ssl.TLSVersion | None]:
    _only(params, {"tls_minimum_protocol_version", "tls_maximum_protocol_version"}, resource, path)
    found: list[ssl.TLSVersion | None] = []
    for field in ("tls_minimum_protocol_version", "tls_maximum_protocol_version"):
        value = getattr(params, field)
        if value == 0:
            found.append(None)
            continue
        version = _VERSIONS.get(value)
        if version is None:
            raise ConfigError(
                resource,
                f"{path}.{field}",
                f"{_VERSION_NAMES.get(value, value)} is not supported by pydp (TLSv1_2 and "
                "TLSv1_3 are)",
            )
        found.append(version)
    minimum = found[0] or ssl.TLSVersion.TLSv1_2
    maximum = found[1]
    if maximum is not None and maximum < minimum:
        raise ConfigError(
            resource, f"{path}.tls_maximum_protocol_version", "is below the minimum version"
        )
    return minimum, maximum
