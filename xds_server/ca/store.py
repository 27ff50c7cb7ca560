"""Where the CA keeps its keys: a directory (`--ca-dir`), or a Kubernetes Secret.

Both hold the same files, named as Istio names its plugged-in CA's:

- `root-cert.pem`, `root-key.pem`: a root that signs workload certificates
  itself (generated on first start, or the user's);
- `ca-cert.pem`, `ca-key.pem`: an intermediate CA that signs instead, under
  the user's root; `cert-chain.pem`: the chain from it up to the root
  (optional when the root signed it directly);
- `trusted-roots.pem`: more roots to trust, such as the previous root during
  a rotation (optional);
- `xds-token.key`: the key of the per-workload xDS tokens (`xds_server.auth`).

`ca-cert.pem` wins over `root-key.pem`: with it, `root-cert.pem` is only the
root the chain ends at. When no CA is found, a root is generated and stored;
two servers starting at once agree on one, since a file is only ever added,
never replaced (`CaFiles.add` fails when another added it first).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import tempfile
from pathlib import Path
from typing import Protocol

from cryptography import x509

from xds_server.ca.authority import Authority
from xds_server.ca.certs import (
    CertificateError,
    Signer,
    key_pem,
    load_certs,
    load_key,
    new_key,
    pem,
    self_signed_root,
    signer_from,
)

ROOT_CERT = "root-cert.pem"
ROOT_KEY = "root-key.pem"
CA_CERT = "ca-cert.pem"
CA_KEY = "ca-key.pem"
CERT_CHAIN = "cert-chain.pem"
TRUSTED_ROOTS = "trusted-roots.pem"
TOKEN_KEY = "xds-token.key"
FILES = (ROOT_CERT, ROOT_KEY, CA_CERT, CA_KEY, CERT_CHAIN, TRUSTED_ROOTS, TOKEN_KEY)
TOKEN_KEY_BYTES = 32


class CaFiles(Protocol):
    """A small store of named files that are only ever added, never replaced."""

    def read(self) -> dict[str, bytes]:
        """Every file of `FILES` present."""

    def add(self, files: dict[str, bytes]) -> bool:
        """Add `files` at once; False (and nothing added) if any of them exists already."""

    def __str__(self) -> str:
        """Where the files are, for messages."""


class DirectoryFiles:
    """The files in one directory, created 0700, every file 0600."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    def read(self) -> dict[str, bytes]:
        out = {}
        for name in FILES:
            try:
                out[name] = (self.path / name).read_bytes()
            except FileNotFoundError:
                continue
        return out

    def add(self, files: dict[str, bytes]) -> bool:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        added: list[Path] = []
        for name, data in files.items():
            fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".{name}.")
            try:
                with os.fdopen(fd, "wb") as f:  # mkstemp creates the file 0600
                    f.write(data)
                os.link(tmp, self.path / name)  # fails if the name exists: never replaces
            except FileExistsError:
                for path in added:
                    path.unlink(missing_ok=True)
                return False
            finally:
                os.unlink(tmp)
            added.append(self.path / name)
        return True


def load_authority(files: CaFiles, trust_domain: str, now: dt.datetime) -> tuple[Authority, bool]:
    """The CA found in `files`, or a new root stored there; True if it was generated."""
    for _ in range(3):
        data = files.read()
        signer = _signer(files, data)
        if signer is not None:
            extra = (
                tuple(load_certs(data[TRUSTED_ROOTS], f"{files}/{TRUSTED_ROOTS}"))
                if (TRUSTED_ROOTS in data)
                else ()
            )
            return Authority.of(signer, trust_domain, extra), False
        if ROOT_CERT in data:
            raise CertificateError(
                f"{files}: {ROOT_CERT} without {ROOT_KEY}; to sign under a root whose key "
                f"you keep, supply an intermediate as {CA_CERT} and {CA_KEY}"
            )
        root = self_signed_root(new_key(), trust_domain, now)
        if files.add({ROOT_KEY: key_pem(root.key), ROOT_CERT: pem(root.cert)}):
            return Authority.of(root, trust_domain), True
    raise CertificateError(f"{files}: the CA files keep changing while being read")


def _signer(files: CaFiles, data: dict[str, bytes]) -> Signer | None:
    def certs(name: str) -> list[x509.Certificate]:
        return load_certs(data[name], f"{files}/{name}") if name in data else []

    if CA_CERT in data:
        if CA_KEY not in data:
            raise CertificateError(f"{files}: {CA_CERT} without {CA_KEY}")
        if ROOT_CERT not in data:
            raise CertificateError(f"{files}: {CA_CERT} needs the root it chains to, {ROOT_CERT}")
        [cert, *rest] = certs(CA_CERT)
        chain = _unique([*rest, *certs(CERT_CHAIN), *certs(ROOT_CERT)])
        return _checked(files, cert, load_key(data[CA_KEY], f"{files}/{CA_KEY}"), chain)
    if ROOT_CERT in data and ROOT_KEY in data:
        [cert, *_] = certs(ROOT_CERT)
        return _checked(files, cert, load_key(data[ROOT_KEY], f"{files}/{ROOT_KEY}"), [])
    return None


def _checked(
    files: CaFiles, cert: x509.Certificate, key: object, chain: list[x509.Certificate]
) -> Signer:
    try:
        return signer_from(cert, key, chain)  # type: ignore[arg-type]
    except CertificateError as e:
        raise CertificateError(f"{files}: {e}") from None


def _unique(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for cert in certs:
        if cert not in out:
            out.append(cert)
    return out


def token_key(files: CaFiles) -> bytes:
    """The key of the xDS tokens, generated and stored on first use."""
    for _ in range(3):
        found = files.read().get(TOKEN_KEY)
        if found is not None:
            if len(found) < TOKEN_KEY_BYTES:
                raise CertificateError(f"{files}/{TOKEN_KEY}: shorter than {TOKEN_KEY_BYTES} bytes")
            return found
        files.add({TOKEN_KEY: secrets.token_bytes(TOKEN_KEY_BYTES)})
    raise CertificateError(f"{files}: cannot store {TOKEN_KEY}")
