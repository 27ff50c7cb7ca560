"""Child processes of a run: started with their output in a log file, always stopped.

Console scripts are looked up next to `sys.executable` first (the project's
virtualenv), then on PATH.

Processes are spawned with `subprocess.Popen` on the calling (main) thread,
not with `trio.lowlevel.open_process`, which spawns from a worker thread:
Envoy sets a parent-death signal, which Linux ties to the thread that forked
it, so Envoy would get SIGTERM when trio retires that idle thread (after
10 s). Exit is awaited by polling.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from conformance.client import Exchange, send

BIN = Path(sys.executable).parent


class StartError(RuntimeError):
    """A process that did not start or did not become ready; carries its log."""


def executable(name: str) -> str | None:
    """The console script `name` of this environment, or from PATH."""
    found = BIN / name
    if found.exists():
        return str(found)
    return shutil.which(name)


POLL = 0.02


@dataclass
class Proc:
    name: str
    args: list[str]
    log: Path
    process: subprocess.Popen[bytes]

    def output(self, tail: int = 4000) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return text[-tail:]

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    async def wait(self) -> int:
        while True:
            code = self.process.poll()
            if code is not None:
                return code
            await trio.sleep(POLL)

    async def stop(self, grace: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        with trio.move_on_after(grace):
            await self.wait()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start(name: str, args: Sequence[str], log: Path) -> Proc:
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(args), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return Proc(name, list(args), log, process)


async def wait_ready(
    proc: Proc, address: tuple[str, int], path: str = "/ready", within: float = 30.0
) -> None:
    """Poll `GET path` on `address` until 200; fail early if the process exits."""
    last = "no answer"
    with trio.move_on_after(within):
        while True:
            if not proc.running:
                raise StartError(
                    f"{proc.name} exited with {proc.process.poll()} before it was ready:\n"
                    + proc.output()
                )
            reply = await send(
                Exchange(path=path, authority=f"{address[0]}:{address[1]}", timeout=2), address
            )
            if reply.status == 200:
                return
            last = reply.error or f"status {reply.status}"
            await trio.sleep(0.05)
    raise StartError(
        f"{proc.name} was not ready at {address[0]}:{address[1]}{path} within {within}s "
        f"(last: {last}):\n" + proc.output()
    )
