"""A private directory for TLS material: Python's `ssl` loads certificates and keys from files only.

Theory of operation. `SecretFiles` makes one directory per process (mode
0700, named `pydp-tls-<pid>-<random>`) under /dev/shm when it exists (memory,
never disk), else the temp directory. `paths(secret)` writes the secret's
material there, each file created exclusively with mode 0600 under a
temporary name and renamed into place, and named by the secret's digest: a
rotated secret gets new files, and files already written are reused. A
context loads the files when it is built and needs them no more, so
`retain(secrets)` deletes every file not of `secrets` (the old certificate
after a rotation) while contexts built from it keep working. `close()`
removes the directory (also run at interpreter exit), and a new
`SecretFiles` removes the directories left by pydp processes that died.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydp.tls.secrets import TlsSecret

PREFIX = "pydp-tls-"
SHM = "/dev/shm"


@dataclass(frozen=True, slots=True)
class SecretPaths:
    """Where a secret's material is: the chain and key, or the trusted CA bundle."""

    certificate_chain: Path | None = None
    private_key: Path | None = None
    trusted_ca: Path | None = None


def default_base() -> str:
    return (
        SHM if os.path.isdir(SHM) and os.access(SHM, os.W_OK | os.X_OK) else tempfile.gettempdir()
    )


class SecretFiles:
    """The process's private directory of TLS material."""

    def __init__(self, base: str | None = None) -> None:
        base = base if base is not None else default_base()
        remove_abandoned(base)
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))
        os.chmod(self.path, 0o700)
        self.closed = False
        atexit.register(self.close)

    def paths(self, secret: TlsSecret) -> SecretPaths:
        """The files of `secret`, written if they are not there yet."""
        if secret.trusted_ca:
            return SecretPaths(trusted_ca=self._write(f"{secret.digest}.ca.pem", secret.trusted_ca))
        return SecretPaths(
            certificate_chain=self._write(f"{secret.digest}.crt.pem", secret.certificate_chain),
            private_key=self._write(f"{secret.digest}.key.pem", secret.private_key),
        )

    def retain(self, secrets: Iterable[TlsSecret]) -> None:
        """Delete the files of every secret but `secrets`."""
        if self.closed:
            return
        keep = {secret.digest for secret in secrets}
        for entry in os.scandir(self.path):
            if entry.name.split(".", 1)[0] not in keep:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)

    def files(self) -> list[Path]:
        return sorted(Path(e.path) for e in os.scandir(self.path)) if not self.closed else []

    def close(self) -> None:
        """Remove the directory and everything in it."""
        if self.closed:
            return
        self.closed = True
        atexit.unregister(self.close)
        shutil.rmtree(self.path, ignore_errors=True)

    def _write(self, name: str, data: bytes) -> Path:
        if self.closed:
            raise RuntimeError(f"{self.path} was closed")
        target = self.path / name
        if target.exists():
            return target
        temporary = self.path / f".{name}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return target


def remove_abandoned(base: str) -> list[str]:
    """Remove this user's `pydp-tls-<pid>-*` directories whose process is gone."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    uid = os.getuid()
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        pid = entry.name[len(PREFIX) :].split("-", 1)[0]
        try:
            if not pid.isdigit() or entry.stat(follow_symlinks=False).st_uid != uid:
                continue
        except OSError:
            continue
        if entry.is_dir(follow_symlinks=False) and not _alive(int(pid)):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
