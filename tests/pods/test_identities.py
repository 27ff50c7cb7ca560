"""The certificates a world makes: the mesh's root for `--ca-dir`, and clients' SVIDs."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from conformance.pods.identities import (
    ROOT_CERT,
    ROOT_KEY,
    Issuer,
    TlsClients,
    spiffe_id,
    write_mesh_root,
)

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_a_workload_certificate_is_an_svid_of_its_root() -> None:
    root = Issuer.new_root("mesh prod.example", NOW)
    uri = spiffe_id("prod.example", "shop", "reviews")
    assert uri == "spiffe://prod.example/ns/shop/sa/reviews"
    cert_pem, key_pem = root.issue(uri, NOW)
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(root.cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [uri]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usage) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_before_utc < NOW < cert.not_valid_after_utc
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert root.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_a_root_of_the_same_name_does_not_sign_for_the_mesh() -> None:
    mesh, impostor = Issuer.new_root("mesh", NOW), Issuer.new_root("mesh", NOW)
    assert impostor.cert.subject == mesh.cert.subject
    cert = x509.load_pem_x509_certificate(impostor.issue(spiffe_id("a", "b", "c"), NOW)[0])
    with pytest.raises(InvalidSignature):
        cert.verify_directly_issued_by(mesh.cert)


def test_the_mesh_root_is_written_as_the_ca_reads_it(tmp_path: Path) -> None:
    root = Issuer.new_root("mesh", NOW)
    folder = tmp_path / "ca"
    write_mesh_root(folder, root)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in (ROOT_CERT, ROOT_KEY):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert (folder / ROOT_CERT).read_bytes() == root.cert_pem
    assert (folder / ROOT_KEY).read_bytes() == root.key_pem


def test_client_contexts_are_made_once_and_keep_their_keys_private(tmp_path: Path) -> None:
    clients = TlsClients(tmp_path / "tls", Issuer.new_root("m", NOW), Issuer.new_root("f", NOW))
    uri = spiffe_id("cluster.local", "default", "batch")
    first = clients.context("mesh", uri, "h1")
    assert clients.context("mesh", uri, "h1") is first
    assert clients.context("mesh", uri, "h2") is not first
    assert clients.context("foreign", uri, "h1") is not first
    clients.context("none", uri, "h1")
    written = sorted(p.name for p in (tmp_path / "tls").iterdir())
    assert len(written) == 6  # a certificate and a key for each context with a certificate
    assert all(stat.S_IMODE((tmp_path / "tls" / n).stat().st_mode) == 0o600 for n in written)
