"""Names and addresses of a world: nothing here touches the system.

A world's prefix is `xm<pid>-<tag>-<n>`: the pid of the process that owns it
(so a dead owner can be told), the pytest-xdist worker (`gw3`, or `main`) and
a serial number within the process. Its namespaces are `<prefix>-node` and
`<prefix>-<pod>`. Its pods take addresses from a 10.x /24 chosen by worker and
serial (10.128.0.0/10 and up, apart from the Service range), `.1` being the
node's bridge; its Services take ClusterIPs from Kubernetes' default range
10.96.0.0/12. Addresses of different worlds may coincide without harm: each
world is its own set of namespaces, and nothing outside them is addressed.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
from dataclasses import dataclass, field

OWNER = re.compile(r"^xm(\d+)-")
SERVICE_RANGE = ipaddress.IPv4Network("10.96.0.0/12")
# Allocated ClusterIPs come from the upper half of 10.96.0.0/16, leaving the
# lower half to the addresses scenarios and tests choose themselves.
ALLOCATED = ipaddress.IPv4Network("10.96.128.0/17")
# An address of the Service range that no Service holds: where a client sends
# a request whose Host resolves to nothing (see `conformance/README.md`).
NOWHERE = "10.111.255.254"
FIRST_POD = 10
_serial = itertools.count(1)


def worker() -> tuple[str, int]:
    """The pytest-xdist worker's id and number (`main`, 0 outside xdist)."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    digits = name.removeprefix("gw")
    return (name, int(digits)) if name and digits.isdigit() else ("main", 0)


def owner(name: str) -> int | None:
    """The pid in a world's name, or None if it is not a world's name."""
    found = OWNER.match(name)
    return int(found[1]) if found else None


@dataclass(frozen=True, slots=True)
class WorldNames:
    prefix: str
    subnet: ipaddress.IPv4Network

    @classmethod
    def new(cls) -> WorldNames:
        """Names and a subnet for a new world of this process."""
        tag, index = worker()
        serial = next(_serial)
        subnet = ipaddress.IPv4Network(f"10.{128 + index % 64}.{serial % 256}.0/24")
        return cls(f"xm{os.getpid()}-{tag}-{serial}", subnet)

    @property
    def node(self) -> str:
        return f"{self.prefix}-node"

    def pod(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    @property
    def bridge(self) -> str:
        return str(self.subnet[1])

    def pod_address(self, index: int) -> str:
        """The address of the world's `index`th pod (from 0)."""
        host = FIRST_POD + index
        if host >= self.subnet.num_addresses - 1:
            raise ValueError(
                f"a world holds at most {self.subnet.num_addresses - 1 - FIRST_POD} pods"
            )
        return str(self.subnet[host])


@dataclass
class ClusterIPs:
    """ClusterIPs handed out in a world, and those its objects chose themselves."""

    taken: set[str] = field(default_factory=set)
    _next: int = 1

    def claim(self, address: str) -> None:
        """Note a ClusterIP an object chose (Kubernetes would want it in SERVICE_RANGE)."""
        self.taken.add(address)

    def allocate(self) -> str:
        while self._next < ALLOCATED.num_addresses - 1:
            address = str(ALLOCATED[self._next])
            self._next += 1
            if address not in self.taken:
                self.taken.add(address)
                return address
        raise ValueError(f"no ClusterIP left in {ALLOCATED}")
