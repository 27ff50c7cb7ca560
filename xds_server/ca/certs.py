"""Keys and certificates, as pure functions of their inputs and the time passed in.

Keys are ECDSA P-256. A CA certificate (a root, or an intermediate under a
root) may sign; a workload certificate is an X.509-SVID: an empty subject,
the SPIFFE ID as its only, critical, URI SAN, usable for TLS as client and
server, and short-lived. Its validity starts a little before `now`, so that a
peer whose clock is slightly behind accepts it at once, and never outlasts
the certificate that signed it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from xds_server.ca.identity import CaError

PrivateKey = ec.EllipticCurvePrivateKey
CLOCK_SKEW = dt.timedelta(minutes=1)
ROOT_TTL = dt.timedelta(days=3650)


class CertificateError(CaError):
    """A certificate or key that cannot serve the purpose it was given for."""


@dataclass(frozen=True, slots=True, eq=False)
class Signer:
    """A CA certificate with its key, and the chain from it up to its root.

    `chain` starts with `cert` and ends with the self-signed root; for a
    root signer it is `(cert,)`.
    """

    cert: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...]

    @property
    def root(self) -> x509.Certificate:
        return self.chain[-1]

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        """What a leaf it signs must carry after itself: the chain without the root."""
        return self.chain[:-1]

    @property
    def fingerprint(self) -> bytes:
        return self.cert.fingerprint(hashes.SHA256())


def new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _ca_name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_extensions(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.CertificateBuilder:
    return (
        builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def self_signed_root(
    key: PrivateKey, trust_domain: str, now: dt.datetime, ttl: dt.timedelta = ROOT_TTL
) -> Signer:
    """A new root CA for `trust_domain`, valid from `now` for `ttl`."""
    name = _ca_name(f"xdsmesh root CA {now:%Y-%m-%dT%H:%M:%SZ}", trust_domain)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + ttl)
    )
    cert = _ca_extensions(builder, key).sign(key, hashes.SHA256())
    return Signer(cert, key, (cert,))


def intermediate(
    parent: Signer, key: PrivateKey, trust_domain: str, now: dt.datetime, ttl: dt.timedelta
) -> Signer:
    """A CA certificate for `key` signed by `parent` (tests use it for user-supplied chains)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(_ca_name("xdsmesh intermediate CA", trust_domain))
        .issuer_name(parent.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + ttl, parent.cert.not_valid_after_utc))
        .add_extension(_authority_key_id(parent), critical=False)
    )
    cert = _ca_extensions(builder, key).sign(parent.key, hashes.SHA256())
    return Signer(cert, key, (cert, *parent.chain))


def _authority_key_id(signer: Signer) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.key.public_key())


def workload_certificate(
    signer: Signer, key: PrivateKey, uri: str, now: dt.datetime, ttl: dt.timedelta
) -> x509.Certificate:
    """The X.509-SVID of `uri` for `key`, valid until `now + ttl` (or the signer's end)."""
    if ttl <= dt.timedelta(0):
        raise CertificateError(f"certificate lifetime must be positive, got {ttl}")
    not_after = min(_whole_second(now + ttl), signer.cert.not_valid_after_utc)
    if not_after <= now:
        raise CertificateError(
            f"the signing CA {signer.cert.subject.rfc4514_string()} expired at "
            f"{signer.cert.not_valid_after_utc.isoformat()}"
        )
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(signer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=True
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(_authority_key_id(signer), critical=False)
    )
    return builder.sign(signer.key, hashes.SHA256())


def _whole_second(moment: dt.datetime) -> dt.datetime:
    """`moment` rounded up to a second, as X.509 times have no fraction."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + dt.timedelta(seconds=1)


def uri_sans(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(san.value.get_values_for_type(x509.UniformResourceIdentifier))


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_certs(data: bytes, what: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise CertificateError(f"{what}: not PEM certificates ({e})") from None
    return certs


def load_key(data: bytes, what: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise CertificateError(f"{what}: not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{what}: the CA key must be an ECDSA key, got {type(key).__name__}")
    return key


def signer_from(cert: x509.Certificate, key: PrivateKey, chain: list[x509.Certificate]) -> Signer:
    """Check that `key` belongs to CA certificate `cert` and `chain` leads to a root."""
    if cert.public_key() != key.public_key():
        raise CertificateError("the CA key does not belong to the CA certificate")
    if not is_ca(cert):
        raise CertificateError("the CA certificate is not a CA (basicConstraints CA:FALSE)")
    full = [cert, *[c for c in chain if c != cert]]
    for child, parent in itertools.pairwise(full):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature) as e:
            raise CertificateError(
                f"{child.subject.rfc4514_string()} is not issued by "
                f"{parent.subject.rfc4514_string()}: {e}"
            ) from None
    root = full[-1]
    if root.subject != root.issuer:
        raise CertificateError(
            f"the chain ends with {root.subject.rfc4514_string()}, which is not a self-signed root"
        )
    return Signer(cert, key, tuple(full))
