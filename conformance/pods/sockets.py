"""Sockets opened inside a network namespace, so the runner can act from within a pod.

A socket belongs to the network namespace of the thread that created it, for
its whole life, whichever thread then uses it. So each namespace gets one
thread that enters it once (`setns`) and only ever creates sockets; the
socket it returns is used by trio like any other.

`inside(netns)` makes every trio socket the current task (and the tasks it
starts) creates come from that namespace: a custom trio socket factory
(installed per trio run by `inside`) consults a context variable, and
creates ordinary sockets when it is unset. So the suite's own client and the
control plane's admin calls work unchanged inside a pod, e.g.
`with inside(pod.netns): await send(exchange, ("10.96.0.20", 9080))`.
"""

from __future__ import annotations

import ctypes
import os
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import trio

from conformance.pods.records import NETNS_DIR

CLONE_NEWNET = 0x40000000
_current: ContextVar[str | None] = ContextVar("xdsmesh_pods_netns", default=None)
_installed: trio.lowlevel.RunVar[bool] = trio.lowlevel.RunVar("xdsmesh_pods_factory")
_makers: dict[str, ThreadPoolExecutor] = {}


def _enter(path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def open_socket(netns: str, family: int, type_: int, proto: int = 0) -> socket.socket:
    """A new stdlib socket in network namespace `netns`."""
    maker = _makers.get(netns)
    if maker is None:
        maker = ThreadPoolExecutor(1, f"netns-{netns}", _enter, (NETNS_DIR / netns,))
        _makers[netns] = maker
    return maker.submit(socket.socket, family, type_, proto).result()


def forget(netns: str) -> None:
    """Retire the socket thread of a namespace that is going away."""
    maker = _makers.pop(netns, None)
    if maker is not None:
        maker.shutdown(wait=True)  # its thread keeps the namespace alive until it ends


class _Factory(trio.abc.SocketFactory):
    def __init__(self, fallback: trio.abc.SocketFactory | None) -> None:
        self.fallback = fallback

    def socket(
        self,
        family: socket.AddressFamily | int = socket.AF_INET,
        type: socket.SocketKind | int = socket.SOCK_STREAM,
        proto: int = 0,
    ) -> trio.socket.SocketType:
        netns = _current.get()
        if netns is not None:
            return trio.socket.from_stdlib_socket(open_socket(netns, family, type, proto))
        if self.fallback is not None:
            return self.fallback.socket(family, type, proto)
        return trio.socket.from_stdlib_socket(socket.socket(family, type, proto))


@contextmanager
def inside(netns: str) -> Iterator[None]:
    """Within this block, trio sockets of this task (and its new children) are in `netns`."""
    if not _installed.get(False):
        previous = trio.socket.set_custom_socket_factory(None)
        trio.socket.set_custom_socket_factory(_Factory(previous))
        _installed.set(True)
    token = _current.set(netns)
    try:
        yield
    finally:
        _current.reset(token)
