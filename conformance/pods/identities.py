"""The certificates a world makes itself: the mesh's root, a foreign root, clients' certificates.

The mesh's CA is `xds-server serve --ca-dir DIR`. Before the server starts,
the world writes its own root into DIR (`root-cert.pem`, `root-key.pem`: the
"user's root" of `api/CONTRACT.md`), so that it can sign, as the mesh does,
the certificate of a client application that speaks TLS itself (a pod with
no sidecar), and trust the mesh's servers. A *foreign* root is one the mesh
does not trust. Certificates are X.509-SVIDs as the mesh issues them: ECDSA
P-256, the SPIFFE ID as the only (critical) URI SAN, client and server use.

`TlsClients` gives the client contexts of one world; Python's `ssl` loads
certificates from files only, so each one is written to the world's folder.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT_CERT = "root-cert.pem"
ROOT_KEY = "root-key.pem"
ROOT_TTL = dt.timedelta(days=1)
CLIENT_TTL = dt.timedelta(hours=1)
SKEW = dt.timedelta(minutes=5)
ALPN = {"h1": ["http/1.1"], "h2": ["h2"]}


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class Issuer:
    """A root CA: its certificate and key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def new_root(cls, organization: str, now: dt.datetime) -> Issuer:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{organization} root CA"),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - SKEW)
            .not_valid_after(now + ROOT_TTL)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)

    def issue(self, uri: str, now: dt.datetime) -> tuple[bytes, bytes]:
        """A workload certificate for the SPIFFE ID `uri`: (certificate PEM, key PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - SKEW)
            .not_valid_after(now + CLIENT_TTL)
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=True
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(ca=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def write_mesh_root(ca_dir: Path, root: Issuer) -> None:
    """Give `xds-server serve --ca-dir ca_dir` this root (files 0600 in a 0700 folder)."""
    ca_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_private(ca_dir / ROOT_CERT, root.cert_pem)
    _write_private(ca_dir / ROOT_KEY, root.key_pem)


@dataclass
class TlsClients:
    """The TLS client contexts of one world, each made once: they trust the mesh's root."""

    folder: Path
    mesh: Issuer
    foreign: Issuer
    _made: dict[tuple[str, str, str], ssl.SSLContext] = field(default_factory=dict)

    def context(self, certificate: str, uri: str, protocol: str) -> ssl.SSLContext:
        """A client context presenting `uri` signed by `certificate` (mesh, foreign or none)."""
        key = (certificate, uri, protocol)
        if key not in self._made:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False  # a workload certificate names a SPIFFE ID, no host
            context.load_verify_locations(cadata=self.mesh.cert_pem.decode())
            context.set_alpn_protocols(ALPN[protocol])
            if certificate != "none":
                issuer = self.mesh if certificate == "mesh" else self.foreign
                cert_pem, key_pem = issuer.issue(uri, dt.datetime.now(dt.UTC))
                self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                stem = self.folder / f"client-{len(self._made)}"
                _write_private(stem.with_suffix(".pem"), cert_pem)
                _write_private(stem.with_suffix(".key"), key_pem)
                context.load_cert_chain(stem.with_suffix(".pem"), stem.with_suffix(".key"))
            self._made[key] = context
        return self._made[key]
