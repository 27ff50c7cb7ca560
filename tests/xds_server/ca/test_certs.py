"""Workload certificates: chains that verify, the SPIFFE SAN, lifetimes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from xds_server.ca.authority import Authority
from xds_server.ca.certs import (
    CertificateError,
    Signer,
    intermediate,
    new_key,
    self_signed_root,
    signer_from,
    uri_sans,
    workload_certificate,
)
from xds_server.ca.identity import Identity
from xds_server.ca.workloads import issue

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
WEB = Identity("shop", "web")


def verify(root: x509.Certificate, chain_pem: bytes, at: dt.datetime) -> list[str]:
    """Verify a leaf and its intermediates under `root`; the leaf's URI SANs."""
    leaf, *intermediates = x509.load_pem_x509_certificates(chain_pem)
    verifier = PolicyBuilder().store(Store([root])).time(at).build_client_verifier()
    verified = verifier.verify(leaf, intermediates)
    return [
        n.value for n in verified.subjects or [] if isinstance(n, x509.UniformResourceIdentifier)
    ]


@pytest.fixture(scope="module")
def root() -> Signer:
    return self_signed_root(new_key(), "cluster.local", NOW)


def test_workload_chain_verifies_under_the_root_with_its_spiffe_id(root: Signer) -> None:
    issued = issue(Authority.of(root, "cluster.local"), WEB, NOW, HOUR)
    assert verify(root.cert, issued.chain_pem, NOW) == ["spiffe://cluster.local/ns/shop/sa/web"]
    assert uri_sans(issued.cert) == ["spiffe://cluster.local/ns/shop/sa/web"]
    san = issued.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert issued.cert.subject == x509.Name([])
    assert issued.cert.public_key() == _private_key(issued.key_pem).public_key()


def _private_key(data: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    return serialization.load_pem_private_key(data, None)


def test_chain_through_an_intermediate_verifies_and_carries_it(root: Signer) -> None:
    inter = intermediate(root, new_key(), "cluster.local", NOW, dt.timedelta(days=30))
    issued = issue(Authority.of(inter, "cluster.local"), WEB, NOW, HOUR)
    certs = x509.load_pem_x509_certificates(issued.chain_pem)
    assert certs[1] == inter.cert
    assert root.cert not in certs
    assert verify(root.cert, issued.chain_pem, NOW) == ["spiffe://cluster.local/ns/shop/sa/web"]


def test_a_chain_does_not_verify_under_another_root(root: Signer) -> None:
    other = self_signed_root(new_key(), "cluster.local", NOW)
    issued = issue(Authority.of(other, "cluster.local"), WEB, NOW, HOUR)
    with pytest.raises(VerificationError):
        verify(root.cert, issued.chain_pem, NOW)


def test_lifetime_is_the_ttl_and_renewal_is_at_half_life(root: Signer) -> None:
    issued = issue(Authority.of(root, "cluster.local"), WEB, NOW, dt.timedelta(hours=24))
    assert issued.cert.not_valid_after_utc == NOW + dt.timedelta(hours=24)
    assert issued.cert.not_valid_before_utc < NOW  # peers with a slow clock accept it at once
    assert issued.renew_at == NOW + dt.timedelta(hours=12)
    verify(root.cert, issued.chain_pem, NOW + dt.timedelta(hours=23))
    with pytest.raises(VerificationError):
        verify(root.cert, issued.chain_pem, NOW + dt.timedelta(hours=24, seconds=1))


def test_a_certificate_never_outlives_its_signer(root: Signer) -> None:
    short = intermediate(root, new_key(), "cluster.local", NOW, HOUR)
    issued = issue(Authority.of(short, "cluster.local"), WEB, NOW, dt.timedelta(hours=24))
    assert issued.cert.not_valid_after_utc == short.cert.not_valid_after_utc
    assert issued.renew_at == NOW + HOUR / 2
    with pytest.raises(CertificateError, match="expired"):
        workload_certificate(short, new_key(), "spiffe://x/ns/a/sa/b", NOW + 2 * HOUR, HOUR)


def test_certificate_usages(root: Signer) -> None:
    issued = issue(Authority.of(root, "cluster.local"), WEB, NOW, HOUR)
    ext = issued.cert.extensions
    assert not ext.get_extension_for_class(x509.BasicConstraints).value.ca
    usages = set(ext.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == {
        x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
        x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH,
    }


def test_signer_from_checks_key_and_chain(root: Signer) -> None:
    inter = intermediate(root, new_key(), "cluster.local", NOW, HOUR)
    assert signer_from(inter.cert, inter.key, [root.cert]).chain == (inter.cert, root.cert)
    with pytest.raises(CertificateError, match="does not belong"):
        signer_from(inter.cert, new_key(), [root.cert])
    other = self_signed_root(new_key(), "cluster.local", NOW)
    with pytest.raises(CertificateError, match="not issued by"):
        signer_from(inter.cert, inter.key, [other.cert])
    with pytest.raises(CertificateError, match="not a self-signed root"):
        signer_from(inter.cert, inter.key, [])
