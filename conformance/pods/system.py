"""The system programs a world runs (`ip`, `iptables`, `setpriv`), and whether it can.

`run` runs one command and raises `PodsError` with the command and its stderr
when it fails. `in_pod` is the prefix that starts a program inside a
namespace (`ip netns exec NS setpriv ...`), as a given user, with a
parent-death signal so that a runner killed outright takes its processes
with it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from conformance import procs

PROXY_UID = 1337
REQUIRED = ("ip", "iptables", "setpriv")


class PodsError(RuntimeError):
    """A world could not be made, used or removed; the message names the step."""


def run(args: Sequence[str], *, may_fail: bool = False, timeout: float = 30.0) -> str:
    """Run a command and return its stdout; raise `PodsError` on failure unless `may_fail`."""
    try:
        done = subprocess.run(
            list(args), capture_output=True, text=True, check=False, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        if may_fail:
            return ""
        raise PodsError(f"{shlex.join(args)}: {e}") from None
    if done.returncode != 0 and not may_fail:
        problem = done.stderr.strip() or f"exit status {done.returncode}"
        raise PodsError(f"{shlex.join(args)}: {problem}")
    return done.stdout


def unavailable() -> str | None:
    """Why this machine cannot make worlds (not root, a program missing), or None."""
    if os.geteuid() != 0:
        return "pods need root (network namespaces and iptables)"
    missing = [p for p in REQUIRED if shutil.which(p) is None]
    if missing:
        return f"pods need {', '.join(missing)} (Debian: apt-get install iptables iproute2)"
    return None


def iptables_for(netns: str) -> str:
    """The iptables that works in `netns`: `iptables` (nft on Debian), else `iptables-legacy`."""
    for program in ("iptables", "iptables-legacy"):
        listing = ["ip", "netns", "exec", netns, program, "-t", "nat", "-S"]
        if shutil.which(program) and run(listing, may_fail=True):
            return program
    raise PodsError(f"no iptables works in namespace {netns} (tried iptables, iptables-legacy)")


def in_pod(netns: str, *, uid: int | None = None) -> list[str]:
    """The prefix that runs a program in `netns` (as `uid`, its GID the same), root by default."""
    prefix = ["ip", "netns", "exec", netns, "setpriv"]
    if uid is not None:
        prefix += [f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    return [*prefix, "--pdeathsig", "KILL", "--"]


def clean_env() -> dict[str, str]:
    """The environment of a pod's processes: this one, less any proxy settings."""
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "grpc_proxy"}
    return {k: v for k, v in os.environ.items() if k.lower() not in proxies}


def popen(
    args: Sequence[str], stdout: IO[bytes], stderr: IO[bytes] | int
) -> subprocess.Popen[bytes]:
    """Spawn a pod's process on the calling thread (see `conformance.procs`), without proxies."""
    return subprocess.Popen(
        list(args), stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=clean_env()
    )


def start(name: str, args: Sequence[str], log: Path) -> procs.Proc:
    """Start a long-running process of a pod, its output in `log`."""
    with log.open("ab") as out:
        process = popen(args, out, subprocess.STDOUT)
    return procs.Proc(name, list(args), log, process)
