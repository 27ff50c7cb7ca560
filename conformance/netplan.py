"""Loopback addresses and ports for one run, private to it.

Each run takes a random /24 in 127.200.0.0-127.254.255.255 (apart from the
ranges the test harness uses): `.1` is the client's source address, `.2` the
proxy's outbound listener and admin, `.3` the control plane, `.11` and up the
backends. Ports come from the kernel (bind to port 0); a named backend port is
checked to be free on every backend address, since all backends share it.
Nothing is fixed, so parallel runs do not collide.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass

FIRST_BACKEND = 11
_rng = random.SystemRandom()


@dataclass(frozen=True)
class NetPlan:
    client: str
    proxy: str
    control: str
    backends: dict[str, str]
    ports: dict[str, int]
    admin_port: int
    outbound_port: int
    inbound_port: int
    xds_port: int
    control_admin_port: int

    @property
    def outbound(self) -> tuple[str, int]:
        return self.proxy, self.outbound_port


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def shared_port(hosts: Sequence[str], attempts: int = 50) -> int:
    """A port free on every one of `hosts`."""
    for _ in range(attempts):
        port = free_port(hosts[0])
        if all(_bindable(h, port) for h in hosts[1:]):
            return port
    raise OSError(f"no port is free on all of {', '.join(hosts)}")


def allocate(backends: Sequence[str], port_names: Sequence[str]) -> NetPlan:
    if len(backends) > 200:
        raise ValueError("a scenario may have at most 200 backends")
    prefix = f"127.{_rng.randint(200, 254)}.{_rng.randint(0, 255)}"
    addresses = {name: f"{prefix}.{FIRST_BACKEND + i}" for i, name in enumerate(backends)}
    hosts = list(addresses.values()) or [f"{prefix}.{FIRST_BACKEND}"]
    ports: dict[str, int] = {}
    for name in port_names:
        port = shared_port(hosts)
        while port in ports.values():
            port = shared_port(hosts)
        ports[name] = port
    proxy, control = f"{prefix}.2", f"{prefix}.3"
    return NetPlan(
        client=f"{prefix}.1",
        proxy=proxy,
        control=control,
        backends=addresses,
        ports=ports,
        admin_port=free_port(proxy),
        outbound_port=free_port(proxy),
        inbound_port=free_port("0.0.0.0"),
        xds_port=free_port(control),
        control_admin_port=free_port(control),
    )
