"""The CA directory: generated once with private files, or the user's root or intermediate."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest

from xds_server.ca.certs import (
    CertificateError,
    intermediate,
    key_pem,
    new_key,
    pem,
    self_signed_root,
)
from xds_server.ca.identity import Identity
from xds_server.ca.store import (
    CA_CERT,
    CA_KEY,
    CERT_CHAIN,
    ROOT_CERT,
    ROOT_KEY,
    TOKEN_KEY,
    TRUSTED_ROOTS,
    DirectoryFiles,
    load_authority,
    token_key,
)
from xds_server.ca.workloads import issue

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_first_start_generates_a_root_with_private_files(tmp_path: Path) -> None:
    files = DirectoryFiles(tmp_path / "ca")
    authority, generated = load_authority(files, "cluster.local", NOW)
    assert generated
    assert stat.S_IMODE((tmp_path / "ca").stat().st_mode) == 0o700
    for name in (ROOT_CERT, ROOT_KEY):
        assert stat.S_IMODE((tmp_path / "ca" / name).stat().st_mode) == 0o600
    again, generated_again = load_authority(files, "cluster.local", NOW)
    assert not generated_again
    assert again.roots(NOW) == authority.roots(NOW)
    assert again.signer(NOW).key.public_key() == authority.signer(NOW).key.public_key()
    assert [p.name for p in (tmp_path / "ca").iterdir() if p.name.startswith(".")] == []


def test_add_never_replaces(tmp_path: Path) -> None:
    files = DirectoryFiles(tmp_path)
    assert files.add({ROOT_KEY: b"one", ROOT_CERT: b"one"})
    assert not files.add({TOKEN_KEY: b"x" * 32, ROOT_CERT: b"two"})
    assert files.read() == {ROOT_KEY: b"one", ROOT_CERT: b"one"}


def test_user_intermediate_signs_and_the_root_is_trusted(tmp_path: Path) -> None:
    root = self_signed_root(new_key(), "corp", NOW)
    inter = intermediate(root, new_key(), "corp", NOW, dt.timedelta(days=90))
    (tmp_path / CA_CERT).write_bytes(pem(inter.cert))
    (tmp_path / CA_KEY).write_bytes(key_pem(inter.key))
    (tmp_path / CERT_CHAIN).write_bytes(pem(inter.cert, root.cert))
    (tmp_path / ROOT_CERT).write_bytes(pem(root.cert))
    authority, generated = load_authority(DirectoryFiles(tmp_path), "cluster.local", NOW)
    assert not generated
    assert authority.roots(NOW) == (root.cert,)
    issued = issue(authority, Identity("a", "b"), NOW, dt.timedelta(hours=1))
    assert issued.cert.issuer == inter.cert.subject
    assert pem(inter.cert) in issued.chain_pem
    assert pem(root.cert) not in issued.chain_pem


def test_user_root_and_extra_trusted_roots(tmp_path: Path) -> None:
    root = self_signed_root(new_key(), "corp", NOW)
    previous = self_signed_root(new_key(), "corp", NOW)
    (tmp_path / ROOT_CERT).write_bytes(pem(root.cert))
    (tmp_path / ROOT_KEY).write_bytes(key_pem(root.key))
    (tmp_path / TRUSTED_ROOTS).write_bytes(pem(previous.cert))
    authority, _ = load_authority(DirectoryFiles(tmp_path), "cluster.local", NOW)
    assert authority.roots(NOW) == (root.cert, previous.cert)
    assert authority.signer(NOW).cert == root.cert


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({ROOT_CERT: "root"}, "root-cert.pem without root-key.pem"),
        ({CA_CERT: "inter"}, "ca-cert.pem without ca-key.pem"),
        ({CA_CERT: "inter", CA_KEY: "inter-key"}, "needs the root it chains to"),
        ({CA_CERT: "inter", CA_KEY: "other-key", ROOT_CERT: "root"}, "does not belong"),
        ({ROOT_CERT: "garbage", ROOT_KEY: "root-key"}, "not PEM certificates"),
    ],
)
def test_broken_ca_files_are_refused_with_the_reason(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    root = self_signed_root(new_key(), "corp", NOW)
    inter = intermediate(root, new_key(), "corp", NOW, dt.timedelta(days=1))
    contents = {
        "root": pem(root.cert),
        "root-key": key_pem(root.key),
        "inter": pem(inter.cert),
        "inter-key": key_pem(inter.key),
        "other-key": key_pem(new_key()),
        "garbage": b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
    }
    for name, what in files.items():
        (tmp_path / name).write_bytes(contents[what])
    with pytest.raises(CertificateError, match=message) as e:
        load_authority(DirectoryFiles(tmp_path), "cluster.local", NOW)
    assert str(tmp_path) in str(e.value)


def test_token_key_is_made_once(tmp_path: Path) -> None:
    files = DirectoryFiles(tmp_path)
    key = token_key(files)
    assert len(key) == 32
    assert token_key(DirectoryFiles(tmp_path)) == key
    assert stat.S_IMODE((tmp_path / TOKEN_KEY).stat().st_mode) == 0o600
