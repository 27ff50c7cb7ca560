"""Certificates, keys and SDS secrets for pydp's TLS tests, made with `cryptography`.

The CA is the mesh's own (`xds_server.ca.certs`, used from tests only); leaf
certificates are built here so that they can carry any URI and DNS SANs and
a subject.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from pydp.tls.secrets import TlsSecret, compile_secret
from xds_server.ca.certs import Signer, key_pem, new_key, pem, self_signed_root

NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Leaf:
    cert: x509.Certificate
    chain_pem: bytes
    key_pem: bytes

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


class Pki:
    """A root CA that issues leaf certificates."""

    def __init__(self, name: str = "cluster.local") -> None:
        self.signer: Signer = self_signed_root(new_key(), name, NOW)

    @property
    def roots_pem(self) -> bytes:
        return pem(self.signer.cert)

    def leaf(
        self,
        uris: tuple[str, ...] = (),
        dns: tuple[str, ...] = (),
        common_name: str = "",
        ttl: dt.timedelta = dt.timedelta(hours=1),
    ) -> Leaf:
        key = new_key()
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
        names += [x509.DNSName(d) for d in dns]
        subject = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.signer.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(minutes=5))
            .not_valid_after(NOW + ttl)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(names), critical=not common_name
            )
        cert = builder.sign(self.signer.key, hashes.SHA256())
        return Leaf(cert, pem(cert), key_pem(key))


def cert_secret_message(name: str, leaf: Leaf) -> Any:
    return secret_pb2.Secret(
        name=name,
        tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_bytes=leaf.chain_pem),
            private_key=base_pb2.DataSource(inline_bytes=leaf.key_pem),
        ),
    )


def roots_secret_message(name: str, *pkis: Pki) -> Any:
    bundle = b"".join(p.roots_pem for p in pkis)
    return secret_pb2.Secret(
        name=name,
        validation_context=common_pb2.CertificateValidationContext(
            trusted_ca=base_pb2.DataSource(inline_bytes=bundle)
        ),
    )


def secrets(
    leaf: Leaf, *pkis: Pki, cert: str = "default", roots: str = "ROOTCA"
) -> dict[str, TlsSecret]:
    """The two compiled secrets a mesh proxy holds: its certificate and the trust bundle."""
    return {
        cert: compile_secret(cert_secret_message(cert, leaf)),
        roots: compile_secret(roots_secret_message(roots, *pkis)),
    }
