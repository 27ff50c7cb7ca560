"""Renewal at half life and root rotation with an overlap, in simulated time."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from api.contract import NodeProfile
from xds_server.ca.authority import Authority
from xds_server.ca.certs import new_key, self_signed_root
from xds_server.ca.identity import SECRET_ROOT, SECRET_WORKLOAD, Identity
from xds_server.ca.sds import SecretSource
from xds_server.ca.workloads import WorkloadCertificates

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
WEB = Identity("shop", "web")
DB = Identity("shop", "db")


def _verifies(bundle: tuple[x509.Certificate, ...], chain_pem: bytes, at: dt.datetime) -> bool:
    leaf, *rest = x509.load_pem_x509_certificates(chain_pem)
    verifier = PolicyBuilder().store(Store(list(bundle))).time(at).build_client_verifier()
    try:
        verifier.verify(leaf, rest)
    except Exception:
        return False
    return True


def test_certificate_is_kept_until_half_life_then_reissued() -> None:
    certs = WorkloadCertificates(Authority.of(self_signed_root(new_key(), "td", NOW), "td"), HOUR)
    first = certs.get(WEB, NOW)
    assert certs.get(WEB, NOW + HOUR / 2 - dt.timedelta(seconds=1)) is first
    assert certs.next_due(NOW) == NOW + HOUR / 2
    second = certs.get(WEB, NOW + HOUR / 2)
    assert second is not first
    assert second.cert.not_valid_after_utc == NOW + HOUR / 2 + HOUR
    assert second.key_pem != first.key_pem


def test_identities_have_their_own_certificates_and_due_times() -> None:
    certs = WorkloadCertificates(Authority.of(self_signed_root(new_key(), "td", NOW), "td"), HOUR)
    web = certs.get(WEB, NOW)
    db = certs.get(DB, NOW + dt.timedelta(minutes=10))
    assert web.cert != db.cert
    assert certs.next_due(NOW) == NOW + HOUR / 2
    assert certs.prune(NOW + HOUR / 2) == [WEB]
    assert certs.identities() == [DB]


def test_rotation_stages_trust_then_signing_then_retirement() -> None:
    old = self_signed_root(new_key(), "td", NOW)
    new = self_signed_root(new_key(), "td", NOW)
    overlap = dt.timedelta(hours=2)
    start = NOW + dt.timedelta(hours=5)
    authority = Authority.of(old, "td").rotated(new, start, overlap)

    assert authority.roots(start - dt.timedelta(seconds=1)) == (old.cert, new.cert)
    assert authority.roots(start) == (old.cert, new.cert)
    assert authority.signer(start) is old
    assert authority.next_change(start) == start + HOUR
    assert authority.signer(start + HOUR) is new
    assert authority.roots(start + HOUR) == (old.cert, new.cert)
    assert authority.next_change(start + HOUR) == start + overlap
    assert authority.roots(start + overlap) == (new.cert,)


def test_rotation_under_traffic_keeps_every_pair_of_peers_verifying() -> None:
    """At every moment, each certificate a proxy holds verifies under every bundle held."""
    old = self_signed_root(new_key(), "td", NOW)
    new = self_signed_root(new_key(), "td", NOW)
    certs = WorkloadCertificates(Authority.of(old, "td"), dt.timedelta(hours=24))
    start = NOW + HOUR
    certs.authority = certs.authority.rotated(new, start, dt.timedelta(hours=2))
    held: dict[Identity, bytes] = {}
    held_bundle = certs.authority.roots(NOW)
    moment = NOW
    while moment < NOW + dt.timedelta(hours=5):
        # A proxy may still hold the previous bundle or certificate while the next arrives.
        for identity in (WEB, DB):
            fresh = certs.get(identity, moment).chain_pem
            for chain in {fresh, held.get(identity, fresh)}:
                for bundle in {held_bundle, certs.authority.roots(moment)}:
                    assert _verifies(bundle, chain, moment), (identity, moment)
            held[identity] = fresh
        held_bundle = certs.authority.roots(moment)
        moment += dt.timedelta(minutes=10)
    assert certs.authority.roots(moment) == (new.cert,)
    assert certs.authority.signer(moment) is new


def test_signer_change_reissues_at_once() -> None:
    old = self_signed_root(new_key(), "td", NOW)
    new = self_signed_root(new_key(), "td", NOW)
    certs = WorkloadCertificates(Authority.of(old, "td"), dt.timedelta(hours=24))
    before = certs.get(WEB, NOW)
    certs.authority = certs.authority.rotated(new, NOW, dt.timedelta(0))
    after = certs.get(WEB, NOW)
    assert after is not before
    assert after.cert.issuer == new.cert.subject


def test_secret_source_gives_default_and_rootca() -> None:
    root = self_signed_root(new_key(), "cluster.local", NOW)
    source = SecretSource(WorkloadCertificates(Authority.of(root, "cluster.local")), lambda: NOW)
    out = source(NodeProfile("shop", "web"))
    assert sorted(out.secrets) == [SECRET_ROOT, SECRET_WORKLOAD]
    tls = out.secrets[SECRET_WORKLOAD].tls_certificate
    leaf = x509.load_pem_x509_certificates(tls.certificate_chain.inline_bytes)[0]
    assert b"PRIVATE KEY" in tls.private_key.inline_bytes
    trusted = out.secrets[SECRET_ROOT].validation_context.trusted_ca.inline_bytes
    assert x509.load_pem_x509_certificates(trusted) == [root.cert]
    uri = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert uri.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cluster.local/ns/shop/sa/web"
    ]
    again = source(NodeProfile("shop", "web", inbound_port=1234))
    assert again.secrets[SECRET_WORKLOAD] is out.secrets[SECRET_WORKLOAD]
    other = source(NodeProfile("shop", "db"))
    assert other.secrets[SECRET_WORKLOAD] != out.secrets[SECRET_WORKLOAD]
