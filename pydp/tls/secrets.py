"""SDS secrets as pydp holds them: checked PEM material, named by a digest of it.

The store's compiler for `envoy.extensions.transport_sockets.tls.v3.Secret`
is `compile_secret`: a `tls_certificate` (a certificate chain and its private
key) or a `validation_context` (trusted CA certificates), each given inline
(`inline_bytes` or `inline_string`). Anything else set in the secret is
refused, as is material that does not parse, a key that does not belong to
the chain's first certificate, or a key behind a password. The digest of the
material is what the TLS contexts are cached by: it changes exactly when the
certificate or the roots change (SotW versions change with any resource).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pydp.errors import ConfigError

Message = Any
TLS_CERTIFICATE = "tls_certificate"
VALIDATION_CONTEXT = "validation_context"
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True, slots=True)
class TlsSecret:
    """One SDS secret: a certificate with its key, or a trust bundle (`trusted_ca`)."""

    name: str
    kind: str  # TLS_CERTIFICATE or VALIDATION_CONTEXT
    digest: str  # hex SHA-256 of the kind and material
    certificate_chain: bytes = b""
    private_key: bytes = field(default=b"", repr=False)
    trusted_ca: bytes = b""
    not_after: float = 0.0  # the earliest expiry among its certificates, epoch seconds


class _At:
    """Names the secret in a `ConfigError`."""

    def __init__(self, resource: str) -> None:
        self.resource = resource

    def error(self, path: str, problem: str) -> ConfigError:
        return ConfigError(self.resource, path, problem)


def compile_secrets(resources: Mapping[str, Message]) -> dict[str, TlsSecret]:
    """The store's compiler for SDS: each secret compiled, or `ConfigError`."""
    return {name: compile_secret(message) for name, message in resources.items()}


def compile_secret(secret: Message) -> TlsSecret:
    """Check one `Secret` message and keep its material; raises `ConfigError` naming the field."""
    if not secret.name:
        raise ConfigError("secret", "name", "must not be empty")
    at = _At(f"secret {secret.name}")
    kind = secret.WhichOneof("type")
    if kind == TLS_CERTIFICATE:
        return _tls_certificate(secret.name, secret.tls_certificate, at)
    if kind == VALIDATION_CONTEXT:
        return _validation_context(secret.name, secret.validation_context, at)
    if kind is None:
        raise at.error("(resource)", "has neither tls_certificate nor validation_context")
    raise at.error(kind, "is not supported by pydp (tls_certificate and validation_context are)")


def _only(message: Message, allowed: set[str], at: _At, path: str) -> None:
    for descriptor, _ in message.ListFields():
        if descriptor.name not in allowed:
            raise at.error(f"{path}.{descriptor.name}", "is not supported by pydp")


def inline_data(source: Message, resource: str, path: str) -> bytes:
    """The bytes of a `DataSource`, which must be inline (`resource` and `path` name it)."""
    where = _At(resource)
    kind = source.WhichOneof("specifier")
    if kind == "inline_bytes":
        data: bytes = source.inline_bytes
    elif kind == "inline_string":
        data = source.inline_string.encode()
    elif kind is None:
        raise where.error(path, "is required")
    else:
        raise where.error(
            f"{path}.{kind}",
            "pydp takes TLS material inline only (inline_bytes or inline_string)",
        )
    if not data:
        raise where.error(f"{path}.{kind}", "is empty")
    return data


def _certificates(data: bytes, at: _At, path: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise at.error(path, f"is not a PEM certificate list: {exc}") from None
    return certs


def _not_after(certs: list[x509.Certificate]) -> float:
    return min(cert.not_valid_after_utc.timestamp() for cert in certs)


def _tls_certificate(name: str, cert: Message, at: _At) -> TlsSecret:
    path = TLS_CERTIFICATE
    _only(cert, {"certificate_chain", "private_key"}, at, path)
    chain = inline_data(cert.certificate_chain, at.resource, f"{path}.certificate_chain")
    key_pem = inline_data(cert.private_key, at.resource, f"{path}.private_key")
    certs = _certificates(chain, at, f"{path}.certificate_chain")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise at.error(
            f"{path}.private_key", "is not an unencrypted PEM private key"
        ) from None  # the key's bytes stay out of the message
    if key.public_key().public_bytes(*_SPKI) != certs[0].public_key().public_bytes(*_SPKI):
        raise at.error(
            f"{path}.private_key", "does not match the first certificate of certificate_chain"
        )
    digest = hashlib.sha256(b"cert\0" + chain + b"\0" + key_pem).hexdigest()
    return TlsSecret(
        name,
        TLS_CERTIFICATE,
        digest,
        certificate_chain=chain,
        private_key=key_pem,
        not_after=_not_after(certs),
    )


def _validation_context(name: str, context: Message, at: _At) -> TlsSecret:
    path = VALIDATION_CONTEXT
    _only(context, {"trusted_ca"}, at, path)
    roots = inline_data(context.trusted_ca, at.resource, f"{path}.trusted_ca")
    certs = _certificates(roots, at, f"{path}.trusted_ca")
    digest = hashlib.sha256(b"roots\0" + roots).hexdigest()
    return TlsSecret(
        name, VALIDATION_CONTEXT, digest, trusted_ca=roots, not_after=_not_after(certs)
    )
