"""The test bed: a world of pods with sidecars, for tests and the conformance runner.

    async with open_bed(workdir) as bed:
        server = bed.add_pod("reviews-1", labels={"app": "reviews"})
        client = bed.add_pod("client")
        reviews = bed.add_service("reviews", [server], [PortInfo("http", 9080, 9080)])
        await bed.publish()
        await bed.start_app(server, echo_command("reviews-1", [9080]), port=9080)
        await bed.start_sidecar(server, "envoy", app_port=9080)
        await bed.start_sidecar(client, "pydp")
        done = await bed.exec(client, fetch_command("http://reviews:9080/"))

`open_bed` cleans stale worlds, claims a new one, starts the control plane in
its node namespace, and on leaving (normally, on an error, on cancellation or
Ctrl-C) stops every process and removes the world. `start_sidecar` does what
an injected pod does: the capture script runs first (the init container),
then the data plane starts as UID 1337 from its bootstrap, and is ready once
its admin `/ready` answers and it has ACKed its configuration.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from api import contract
from conformance import procs
from conformance.client import Exchange, send
from conformance.controlplane import SETTLED
from conformance.dataplanes import REGISTRY, DataPlane
from conformance.pods import kube, records, sockets, system
from conformance.pods.control import PodControlPlane
from conformance.pods.kube import PodInfo, PortInfo, ServiceName
from conformance.pods.names import ClusterIPs, WorldNames
from conformance.pods.network import Network
from conformance.pods.system import PROXY_UID, PodsError

_serial = itertools.count(1)


@dataclass
class Pod:
    info: PodInfo
    netns: str
    apps: dict[str, procs.Proc] = field(default_factory=dict)
    sidecar: procs.Proc | None = None
    dataplane: str | None = None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def namespace(self) -> str:
        return self.info.namespace

    @property
    def address(self) -> str:
        return self.info.address

    @property
    def node_id(self) -> str:
        return contract.node_id(self.name, self.namespace)


@dataclass(frozen=True)
class Service:
    service: ServiceName
    ports: tuple[PortInfo, ...]
    pods: tuple[Pod, ...]

    @property
    def cluster_ip(self) -> str:
        return self.service.cluster_ip

    @property
    def host(self) -> str:
        return contract.service_host(self.service.name, self.service.namespace)


def echo_command(name: str, ports: Sequence[int], protocol: str = "any") -> list[str]:
    """The conformance echo backend, answering on the pod's loopback on every port."""
    listen = [arg for port in ports for arg in ("--listen", f"127.0.0.1:{port}")]
    return [
        sys.executable,
        "-m",
        "conformance.echo",
        "--name",
        name,
        *listen,
        "--protocol",
        protocol,
    ]


def fetch_command(url: str, *headers: str, method: str = "GET") -> list[str]:
    """A plain HTTP client (`conformance.pods.fetch`) that prints what it got as JSON."""
    args = [sys.executable, "-m", "conformance.pods.fetch", url, "--method", method]
    return args + [arg for h in headers for arg in ("--header", h)]


class Bed:
    def __init__(
        self, world: WorldNames, record: records.Record, network: Network, control: PodControlPlane
    ) -> None:
        self.world = world
        self.record = record
        self.network = network
        self.control = control
        self.workdir = control.workdir
        self.delta = False
        self.iptables: str | None = None
        self.pods: dict[str, Pod] = {}
        self.services: dict[tuple[str, str], Service] = {}
        self.names: dict[tuple[str, str], ServiceName] = {}
        self.cluster_ips = ClusterIPs()
        self._published: dict[tuple[str, str, str], Any] = {}

    # The cluster's objects.

    def add_pod(
        self,
        name: str,
        *,
        namespace: str = "default",
        service_account: str = "default",
        labels: Mapping[str, str] | None = None,
    ) -> Pod:
        """A new pod: its namespace, veth and address (nothing runs in it yet)."""
        if name in self.pods:
            raise PodsError(f"pod {name} already exists")
        link = self.network.add_pod(name)
        info = PodInfo(name, namespace, link.address, service_account, dict(labels or {}))
        pod = Pod(info, link.netns)
        self.pods[name] = pod
        return pod

    def name_service(self, name: str, namespace: str, cluster_ip: str | None = None) -> ServiceName:
        """Give a Service its ClusterIP (`cluster_ip`, or a free one) and its names in the pods."""
        known = self.names.get((namespace, name))
        if known is not None and cluster_ip in (None, known.cluster_ip):
            return known
        if cluster_ip is None:
            cluster_ip = self.cluster_ips.allocate()
        else:
            self.cluster_ips.claim(cluster_ip)
        self.names[(namespace, name)] = ServiceName(name, namespace, cluster_ip)
        return self.names[(namespace, name)]

    def add_service(
        self,
        name: str,
        pods: Sequence[Pod],
        ports: Sequence[PortInfo],
        *,
        namespace: str = "default",
        cluster_ip: str | None = None,
    ) -> Service:
        service = Service(self.name_service(name, namespace, cluster_ip), tuple(ports), tuple(pods))
        self.services[(namespace, name)] = service
        return service

    async def publish(self) -> None:
        """Write the Pods, Services and slices, and every pod's hosts file; wait until served."""
        objects = [kube.pod_object(p.info) for p in self.pods.values()]
        for s in self.services.values():
            objects += kube.service_objects(s.service, s.ports, [p.info for p in s.pods])
        await self.apply(objects)

    async def apply(self, objects: Sequence[dict[str, Any]]) -> None:
        """Write objects to the control plane's folder and refresh the hosts files;
        return once a snapshot holds them (at once if nothing changed)."""
        self.write_hosts()
        changed = []
        for obj in objects:
            meta = obj["metadata"]
            key = (obj["kind"], meta.get("namespace", "default"), meta["name"])
            if self._published.get(key) != obj:
                changed.append(obj)
                self._published[key] = obj
        if not changed:
            return
        mark = await self.control.snapshot_version()
        self.control.apply(changed)
        with trio.move_on_after(10):
            while True:
                if await self.control.snapshot_version() > mark:
                    return
                await trio.sleep(0.02)
        raise PodsError(f"the control plane did not serve the new objects within 10s: {changed}")

    def write_hosts(self) -> None:
        for pod in self.pods.values():
            link = self.network.pods[pod.name]
            self.network.write_etc(link, hosts=kube.hosts_file(pod.info, self.names.values()))

    # Processes.

    async def start_app(
        self, pod: Pod, args: Sequence[str], *, name: str = "app", port: int | None = None
    ) -> procs.Proc:
        """Start an application in the pod, as root; with `port`, wait until it listens there."""
        log = self.workdir / f"{pod.name}-{name}.log"
        proc = system.start(f"{pod.name} {name}", [*system.in_pod(pod.netns), *args], log)
        pod.apps[name] = proc
        if port is not None:
            await self.wait_listening(pod, proc, port)
        return proc

    async def wait_listening(
        self, pod: Pod, proc: procs.Proc, port: int, within: float = 20
    ) -> None:
        with trio.move_on_after(within), sockets.inside(pod.netns):
            while True:
                if not proc.running:
                    raise PodsError(
                        f"{proc.name} exited with {proc.process.poll()}:\n{proc.output()}"
                    )
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", port)
                except OSError:
                    await trio.sleep(0.03)
                    continue
                await stream.aclose()
                return
        raise PodsError(
            f"{proc.name} did not listen on 127.0.0.1:{port} within {within}s:\n{proc.output()}"
        )

    async def capture(self, pod: Pod, *flags: str) -> None:
        """Run the injected init container's capture script in the pod."""
        if self.iptables is None:
            self.iptables = system.iptables_for(self.world.node)
        script = [sys.executable, "-m", "xds_server.inject.capture", "--proxy-uid", str(PROXY_UID)]
        script += ["--iptables", self.iptables]
        done = await self.exec(pod, [*script, *flags])
        if done.returncode != 0:
            raise PodsError(f"capture in pod {pod.name} failed: {done.stderr or done.stdout}")

    async def start_sidecar(
        self,
        pod: Pod,
        dataplane: DataPlane | str,
        *,
        app_port: int = contract.APP_PORT,
        exclude_inbound_ports: Sequence[int] = (),
        exclude_outbound_ports: Sequence[int] = (),
    ) -> procs.Proc:
        """Capture the pod's traffic, then start its sidecar and wait until it is configured."""
        flags = []
        if exclude_inbound_ports:
            flags += ["--exclude-inbound-ports", ",".join(map(str, exclude_inbound_ports))]
        if exclude_outbound_ports:
            flags += ["--exclude-outbound-ports", ",".join(map(str, exclude_outbound_ports))]
        await self.capture(pod, *flags)
        text = await self.control.pod_bootstrap(
            pod.node_id, pod.namespace, pod.info.service_account, app_port, self.delta
        )
        config = self.record.files / f"{pod.name}-bootstrap.yaml"
        config.write_text(text)
        config.chmod(0o644)
        try:
            plane = REGISTRY[dataplane] if isinstance(dataplane, str) else dataplane
            command = plane.command(config)
        except (KeyError, LookupError) as e:
            raise PodsError(f"pod {pod.name}: no data plane {dataplane!r}: {e}") from None
        args = [*system.in_pod(pod.netns, uid=PROXY_UID), *command]
        log = self.workdir / f"{pod.name}-{plane.name}.log"
        pod.sidecar = system.start(f"{pod.name} {plane.name}", args, log)
        pod.dataplane = plane.name
        admin = (contract.OUTBOUND_ADDRESS, contract.ADMIN_PORT)
        with sockets.inside(pod.netns):
            await procs.wait_ready(pod.sidecar, admin, plane.ready_path, within=30)
        await self.wait_synced([pod])
        return pod.sidecar

    async def admin(self, pod: Pod, path: str) -> str:
        """GET `path` on the pod's sidecar admin endpoint (on the pod's loopback)."""
        address = (contract.OUTBOUND_ADDRESS, contract.ADMIN_PORT)
        exchange = Exchange(path=path, authority=f"{address[0]}:{address[1]}", timeout=5)
        with sockets.inside(pod.netns):
            reply = await send(exchange, address)
        if reply.status != 200:
            raise PodsError(f"pod {pod.name} admin {path}: {reply.status or reply.error}")
        return reply.body.decode(errors="replace")

    async def wait_synced(self, pods: Sequence[Pod], within: float = 20) -> None:
        """Until every one of `pods` has ACKed or NACKed every type it was sent."""
        last: object = None
        with trio.move_on_after(within):
            while True:
                states = [await self.control.proxy_states(p.node_id) for p in pods]
                last = states
                if all(s and all(v in SETTLED for v in s.values()) for s in states):
                    return
                await trio.sleep(0.02)
        raise PodsError(f"sidecars did not settle within {within}s: {last}")

    async def exec(
        self, pod: Pod, args: Sequence[str], *, within: float = 30, uid: int | None = None
    ) -> CompletedRun:
        """Run a command to its end in the pod (as root, or `uid`): its status and output."""
        stem = self.workdir / f"{pod.name}-exec-{next(_serial)}"
        out, err = stem.with_suffix(".out"), stem.with_suffix(".err")
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = system.popen([*system.in_pod(pod.netns, uid=uid), *args], stdout, stderr)
        proc = procs.Proc(f"{pod.name} exec", list(args), out, process)
        try:
            with trio.fail_after(within):
                code = await proc.wait()
        except trio.TooSlowError:
            raise PodsError(f"{args} in pod {pod.name} took more than {within}s") from None
        finally:
            with trio.CancelScope(shield=True):
                await proc.stop(grace=1)
        return CompletedRun(code, out.read_text(errors="replace"), err.read_text(errors="replace"))

    async def stop_all(self) -> None:
        """Stop every process of the world, all at once (shielded from cancellation)."""
        running = [p for pod in self.pods.values() for p in [*pod.apps.values(), pod.sidecar]]
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as nursery:
                for proc in running:
                    if proc is not None:
                        nursery.start_soon(proc.stop, 2.0)
            await self.control.stop()

    def logs(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for pod in self.pods.values():
            for proc in [*pod.apps.values(), pod.sidecar]:
                if proc is not None:
                    found[proc.name] = proc.output()
        if self.control.proc is not None:
            found[self.control.proc.name] = self.control.proc.output()
        return found


@dataclass(frozen=True, slots=True)
class CompletedRun:
    returncode: int
    stdout: str
    stderr: str


@asynccontextmanager
async def open_bed(
    workdir: Path,
    *,
    xds_server: str | None = None,
    delta: bool = False,
    inject: bool = False,
    ca_dir: Path | None = None,
    ca_flags: Sequence[str] = (),
) -> AsyncIterator[Bed]:
    """A new world with its control plane running; everything is removed on leaving.

    With `ca_dir` the control plane runs the mesh's CA there (`ca_flags`: more
    `xds-server serve` flags of the CA, e.g. `--cert-ttl 3s`)."""
    reason = system.unavailable()
    if reason is not None:
        raise PodsError(reason)
    program = xds_server or procs.executable("xds-server")
    if program is None:
        raise PodsError("xds-server is not installed")
    records.clean_stale()
    world = WorldNames.new()
    record = records.Record.claim(world.prefix)
    network = Network(world)
    bed: Bed | None = None
    try:
        os.makedirs(workdir, exist_ok=True)
        control = PodControlPlane(
            program,
            workdir,
            world.node,
            world.bridge,
            inject=inject,
            ca_dir=ca_dir,
            ca_flags=ca_flags,
        )
        for stale in [*control.manifests.iterdir(), *control.overrides.iterdir()]:
            stale.unlink()
        bed = Bed(world, record, network, control)
        bed.delta = delta
        network.create_node()
        await control.start()
        yield bed
    finally:
        try:
            if bed is not None:
                await bed.stop_all()
        finally:
            for netns in [world.node, *(link.netns for link in network.pods.values())]:
                sockets.forget(netns)
            records.remove_world(world.prefix)
