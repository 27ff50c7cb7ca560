"""The private directory of TLS material: permissions, names by digest, clean-up."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from pydp.tls.files import PREFIX, SecretFiles, default_base, remove_abandoned
from pydp.tls.secrets import compile_secret
from tests.pydp.tls.pki import Pki, cert_secret_message, roots_secret_message

PKI = Pki()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_directory_is_private_and_in_memory_when_it_can_be() -> None:
    files = SecretFiles()
    try:
        assert _mode(files.path) == 0o700
        assert files.path.name.startswith(f"{PREFIX}{os.getpid()}-")
        expected = "/dev/shm" if os.path.isdir("/dev/shm") else default_base()
        assert str(files.path.parent) == expected
    finally:
        files.close()


def test_material_is_written_once_0600_under_its_digest(tmp_path: Path) -> None:
    files = SecretFiles(str(tmp_path))
    cert = compile_secret(cert_secret_message("default", PKI.leaf(uris=("spiffe://a/b",))))
    roots = compile_secret(roots_secret_message("ROOTCA", PKI))
    paths = files.paths(cert)
    assert paths.certificate_chain is not None and paths.private_key is not None
    assert paths.certificate_chain.read_bytes() == cert.certificate_chain
    assert paths.private_key.read_bytes() == cert.private_key
    ca = files.paths(roots).trusted_ca
    assert ca is not None and ca.read_bytes() == roots.trusted_ca
    for path in files.files():
        assert _mode(path) == 0o600
        assert path.name.startswith((cert.digest, roots.digest))
    before = paths.private_key.stat().st_mtime_ns
    assert files.paths(cert) == paths
    assert paths.private_key.stat().st_mtime_ns == before
    assert len(files.files()) == 3


def test_retain_deletes_the_files_of_other_secrets(tmp_path: Path) -> None:
    files = SecretFiles(str(tmp_path))
    old = compile_secret(cert_secret_message("default", PKI.leaf(uris=("spiffe://a/b",))))
    new = compile_secret(cert_secret_message("default", PKI.leaf(uris=("spiffe://a/b",))))
    old_paths, new_paths = files.paths(old), files.paths(new)
    files.retain([new])
    assert old_paths.private_key is not None and not old_paths.private_key.exists()
    assert new_paths.private_key is not None and new_paths.private_key.exists()
    assert len(files.files()) == 2


def test_close_removes_the_directory(tmp_path: Path) -> None:
    files = SecretFiles(str(tmp_path))
    files.paths(compile_secret(roots_secret_message("ROOTCA", PKI)))
    files.close()
    assert not files.path.exists()
    files.close()  # twice is fine
    assert files.files() == []


def test_the_directory_goes_when_the_process_exits(tmp_path: Path) -> None:
    code = (
        f"from pydp.tls.files import SecretFiles; f = SecretFiles({str(tmp_path)!r}); print(f.path)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    made = Path(out.stdout.strip())
    assert made.parent == tmp_path
    assert not made.exists()


def test_directories_of_dead_processes_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    abandoned = tmp_path / f"{PREFIX}{dead}-abc"
    abandoned.mkdir()
    (abandoned / "x.key.pem").write_bytes(b"key")
    alive = tmp_path / f"{PREFIX}{os.getppid()}-def"
    alive.mkdir()
    other = tmp_path / "unrelated-1"
    other.mkdir()
    assert remove_abandoned(str(tmp_path)) == [str(abandoned)]
    assert not abandoned.exists()
    assert alive.exists() and other.exists()
