"""The namespaces of one world: the node with its bridge, the pods with their veths.

Every interface is made inside the world's namespaces (`ip -n`): the veth
pair of a pod is created in the node namespace with its peer placed directly
in the pod's, so nothing ever appears in the host's namespace. A pod gets
`lo`, `eth0` with its address, and a default route to the node, which the
capture needs (a connection to a ClusterIP must be routable before the OUTPUT
chain redirects it). Its `/etc/netns/<netns>/hosts` and `resolv.conf` are
what `ip netns exec` shows the pod's processes as `/etc/hosts` and
`/etc/resolv.conf`; the resolver points at the pod's own loopback, so a name
the hosts file lacks fails at once instead of asking anyone outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance.pods.names import WorldNames
from conformance.pods.records import ETC_NETNS
from conformance.pods.system import run

BRIDGE = "br0"
POD_INTERFACE = "eth0"
RESOLV_CONF = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"


@dataclass(frozen=True, slots=True)
class PodLink:
    name: str
    netns: str
    address: str


@dataclass
class Network:
    world: WorldNames
    pods: dict[str, PodLink] = field(default_factory=dict)

    @property
    def node(self) -> str:
        return self.world.node

    def create_node(self) -> None:
        node, length = self.node, self.world.subnet.prefixlen
        run(["ip", "netns", "add", node])
        run(["ip", "-n", node, "link", "set", "lo", "up"])
        run(["ip", "-n", node, "link", "add", BRIDGE, "type", "bridge"])
        run(["ip", "-n", node, "addr", "add", f"{self.world.bridge}/{length}", "dev", BRIDGE])
        run(["ip", "-n", node, "link", "set", BRIDGE, "up"])

    def add_pod(self, name: str) -> PodLink:
        if name in self.pods:
            raise ValueError(f"pod {name} already exists in world {self.world.prefix}")
        index = len(self.pods)
        link = PodLink(name, self.world.pod(name), self.world.pod_address(index))
        veth, node, netns = f"v{index}", self.node, link.netns
        run(["ip", "netns", "add", netns])
        self.pods[name] = link
        run(["ip", "-n", netns, "link", "set", "lo", "up"])
        pair = ["type", "veth", "peer", "name", POD_INTERFACE, "netns", netns]
        run(["ip", "-n", node, "link", "add", veth, *pair])
        run(["ip", "-n", node, "link", "set", veth, "master", BRIDGE, "up"])
        address = f"{link.address}/{self.world.subnet.prefixlen}"
        run(["ip", "-n", netns, "addr", "add", address, "dev", POD_INTERFACE])
        run(["ip", "-n", netns, "link", "set", POD_INTERFACE, "up"])
        run(["ip", "-n", netns, "route", "add", "default", "via", self.world.bridge])
        self.write_etc(link, hosts=f"127.0.0.1 localhost\n{link.address} {name}\n")
        return link

    def write_etc(self, link: PodLink, *, hosts: str) -> None:
        """Write the pod's hosts file in place (a running process's mount follows the inode)."""
        folder = ETC_NETNS / link.netns
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        for file, text in (("hosts", hosts), ("resolv.conf", RESOLV_CONF)):
            with (folder / file).open("w") as out:
                out.write(text)
            (folder / file).chmod(0o644)
