"""A scenario's world in pods mode (`xdsmesh-conformance run --pods`).

Each backend of the scenario is a pod (`{backend:NAME}` is its address) whose
application is the echo backend on its loopback, behind a sidecar; the
client is the pod `conformance` (node id `conformance.default`, as on
loopback) whose sidecar is the data plane under test, and every sidecar of
the world is that data plane. A request is sent as an application in the
client pod sends it: from a socket inside the pod, to the address its Host
resolves to there (a ClusterIP, or an IP written in the Host; a name that
resolves to nothing goes to `names.NOWHERE`, an unused address of the Service
range), with no knowledge of the sidecar; the capture hands it to the
outbound listener, and the backend pod's capture to its inbound listener.

Services of the scenario without a ClusterIP get one; named ports listen on
8080 and up, every backend on every port, and a backend's sidecar forwards to
the first (its `APP_PORT`).

Who is who: each backend pod runs as its scenario's namespace, service
account and labels; the scenario's other client pods (`clients`) are made
like the default one, and a client with `sidecar: false` gets no capture and
no sidecar (labeled `security.xdsmesh.io/tls-mode: disabled`), so what its
application sends leaves the pod as sent; a request names its client with
`from`. With `ca` the control plane runs the mesh's CA on a root the world
writes first (`identities.py`), so that a client application can speak TLS
itself with a certificate of the mesh, of a foreign CA, or none. Across data
planes (`peer`), the backends' sidecars run `peer` and the clients' the data
plane under test.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from api import contract
from conformance.client import Exchange, Reply, send
from conformance.controlplane import SETTLED, ControlPlaneError
from conformance.dataplanes import DataPlane
from conformance.echo.app import STATS_PATH
from conformance.netplan import NetPlan
from conformance.placeholders import Bindings
from conformance.pods import kube, names
from conformance.pods.bed import Bed, Pod, echo_command, open_bed
from conformance.pods.control import ADMIN_PORT, XDS_PORT
from conformance.pods.identities import Issuer, TlsClients, spiffe_id, write_mesh_root
from conformance.pods.sockets import inside
from conformance.pods.system import PodsError
from conformance.procs import StartError
from conformance.scenario import DEFAULT_CLIENT, Backend, ClientTls, RequestSpec, Scenario
from conformance.world import DEFAULT_PORT, ECHO_PROTOCOL, Settings, World, WorldError

CLIENT = DEFAULT_CLIENT
STARTING = (PodsError, StartError, ControlPlaneError, WorldError, OSError)
FIRST_APP_PORT = 8080
NO_SIDECAR = {"security.xdsmesh.io/tls-mode": "disabled"}  # api/CONTRACT.md: not in the mesh


@dataclass
class PodWorld(World):
    bed: Bed = field(kw_only=True)
    client: Pod = field(kw_only=True)  # the default client pod
    pods: dict[str, Pod] = field(kw_only=True)  # the backends' pods
    clients: dict[str, Pod] = field(kw_only=True)  # every client pod, the default one too
    tls: TlsClients | None = field(default=None, kw_only=True)

    @property
    def app_port(self) -> int:
        return next(iter(self.plan.ports.values()))

    @property
    def sidecars(self) -> list[Pod]:
        return [p for p in self.bed.pods.values() if p.sidecar is not None]

    async def request(self, spec: RequestSpec, index: int = 0) -> Reply:
        client = self.clients[spec.client]
        exchange = self.exchange(spec, index)
        context = None if spec.tls is None else self.tls_context(spec.tls, client, spec.protocol)
        with inside(client.netns):
            return await send(exchange, self.destination(exchange.authority, client), tls=context)

    def tls_context(self, tls: ClientTls, client: Pod, protocol: str) -> ssl.SSLContext:
        if self.tls is None or self.scenario.ca is None:
            raise WorldError(f"scenario {self.scenario.name}: TLS from a client needs `ca`")
        uri = spiffe_id(
            tls.trust_domain or self.scenario.ca.trust_domain,
            tls.namespace or client.namespace,
            tls.service_account or client.info.service_account,
        )
        return self.tls.context(tls.certificate, uri, protocol)

    def destination(self, authority: str, client: Pod | None = None) -> tuple[str, int]:
        """Where a client pod connects for a Host: what its resolver finds, and the port."""
        host, sep, port = authority.rpartition(":")
        if not sep or not port.isdigit() or host.endswith(":"):
            host, port = authority, "80"
        host = host.strip("[]")
        try:
            return str(ipaddress.ip_address(host)), int(port)
        except ValueError:
            namespace = (client or self.client).namespace
            found = kube.resolve(host, namespace, self.bed.names.values())
            return found or names.NOWHERE, int(port)

    def named(self, objects: list[Any]) -> list[Any]:
        """The objects with a ClusterIP on every Service (not headless), each one known by name."""
        out = []
        for obj in objects:
            spec = dict(obj.get("spec") or {})
            if obj.get("kind") != "Service" or spec.get("clusterIP") == "None":
                out.append(obj)
                continue
            meta = obj["metadata"]
            service = self.bed.name_service(
                meta["name"], meta.get("namespace", "default"), spec.get("clusterIP")
            )
            out.append({**obj, "spec": {**spec, "clusterIP": service.cluster_ip}})
        return out

    async def change(self, action: str, objects: tuple[Any, ...]) -> None:
        if action == "apply":
            objects = tuple(self.named(self.bindings.substitute(list(objects))))
        elif action == "delete":
            for ref in objects:
                if ref["kind"] == "Service":
                    self.bed.names.pop((ref["namespace"], ref["name"]), None)
        await super().change(action, objects)
        self.bed.write_hosts()

    async def wait_for_config(self, within: float) -> None:
        """Until the snapshot after the last change is out and every sidecar settled on it."""
        last: object = None
        with trio.move_on_after(within):
            while True:
                version = await self.control.snapshot_version()
                if self.mark is None or version > self.mark:
                    states = {
                        p.name: await self.control.proxy_states(p.node_id) for p in self.sidecars
                    }
                    last = states
                    if all(s and all(v in SETTLED for v in s.values()) for s in states.values()):
                        self.mark = None
                        return
                else:
                    last = f"snapshot still {version}"
                await trio.sleep(0.02)
        raise WorldError(f"the sidecars did not settle on new config within {within}s ({last})")

    async def xds_states(self) -> dict[str, str] | None:
        return await self.control.proxy_states(self.client.node_id)

    async def renewals(self, count: int, within: float) -> tuple[dict[str, int], list[str]]:
        """Wait until every sidecar ACKed `count` new SDS versions (a renewal pushes its
        certificate, `default`); how many each ACKed (at most `count`), and what fell short."""
        first = await self._sds()
        seen: dict[str, set[str]] = {p.name: set() for p in self.sidecars}
        last = first
        with trio.move_on_after(within):
            while True:
                last = await self._sds()
                for pod in self.sidecars:
                    acked = last.get(pod.node_id, {}).get("acked")
                    if acked is not None and acked != first.get(pod.node_id, {}).get("acked"):
                        seen[pod.name].add(acked)
                if all(len(s) >= count for s in seen.values()):
                    break
                await trio.sleep(0.05)
        renewed = {name: min(len(s), count) for name, s in sorted(seen.items())}
        problems = [
            f"sidecar {pod.name} ACKed {renewed[pod.name]} of {count} new certificates within "
            f"{within}s (sds now {last.get(pod.node_id)})"
            for pod in self.sidecars
            if renewed[pod.name] < count
        ]
        return renewed, problems

    async def _sds(self) -> dict[str, dict[str, Any]]:
        """The SDS state of every connected proxy, by node id (`/debug/syncz`)."""
        out = {}
        for proxy in await self.control.get_json("/debug/syncz"):
            sds = proxy["types"].get("sds")
            if sds is not None:
                out[proxy["proxy"]] = sds
        return out

    async def _start_backend(self, backend: Backend) -> None:
        pod = self.pods[backend.name]
        command = echo_command(
            backend.name, list(self.plan.ports.values()), ECHO_PROTOCOL[backend.protocol]
        )
        proc = await self.bed.start_app(pod, command, name="echo", port=self.app_port)
        self.backends[backend.name] = proc

    async def _backend_stats(self, backend: Backend) -> dict[str, Any]:
        address = (contract.APP_ADDRESS, self.app_port)
        protocol = "h1" if ECHO_PROTOCOL[backend.protocol] != "h2" else "h2"
        exchange = Exchange(
            path=STATS_PATH, authority=f"{address[0]}:{address[1]}", protocol=protocol, timeout=5
        )
        with inside(self.pods[backend.name].netns):
            reply = await send(exchange, address)
        if reply.status != 200:
            raise WorldError(f"backend {backend.name} stats: {reply.status or reply.error}")
        stats: dict[str, Any] = json.loads(reply.body)
        return stats

    async def stop_all(self) -> None:
        await self.bed.stop_all()

    def logs(self) -> dict[str, str]:
        return self.bed.logs()


def _plan(bed: Bed, client: Pod, pods: dict[str, Pod], port_names: Sequence[str]) -> NetPlan:
    return NetPlan(
        client=client.address,
        proxy=contract.OUTBOUND_ADDRESS,
        control=bed.world.bridge,
        backends={name: pod.address for name, pod in pods.items()},
        ports={name: FIRST_APP_PORT + i for i, name in enumerate(port_names)},
        admin_port=contract.ADMIN_PORT,
        outbound_port=contract.OUTBOUND_PORT,
        inbound_port=contract.INBOUND_PORT,
        xds_port=XDS_PORT,
        control_admin_port=ADMIN_PORT,
    )


@asynccontextmanager
async def open_pod_world(
    scenario: Scenario, dataplane: DataPlane, settings: Settings, peer: DataPlane | None = None
) -> AsyncIterator[PodWorld]:
    """The scenario's pods with their sidecars, configured; all removed on leaving.

    Every sidecar runs `dataplane`, but the backends' which run `peer` if given."""
    if any(b.name == CLIENT for b in scenario.backends):
        raise WorldError(f"a backend may not be named {CLIENT!r} in pods mode: the client is")
    ca_dir, tls = None, None
    if scenario.ca is not None:
        now = dt.datetime.now(dt.UTC)
        mesh = Issuer.new_root(f"mesh {scenario.ca.trust_domain}", now)
        ca_dir = settings.workdir / "ca"
        write_mesh_root(ca_dir, mesh)
        tls = TlsClients(settings.workdir / "tls", mesh, Issuer.new_root("foreign", now))
    async with open_bed(
        settings.workdir,
        xds_server=settings.xds_server,
        delta=settings.delta,
        inject=settings.inject,
        ca_dir=ca_dir,
        ca_flags=scenario.ca.serve_flags() if scenario.ca is not None else (),
    ) as bed:
        clients = {
            c.name: bed.add_pod(
                c.name,
                namespace=c.namespace,
                service_account=c.service_account,
                labels={**dict(c.labels), **({} if c.sidecar else NO_SIDECAR)},
            )
            for c in scenario.client_pods
        }
        client = clients[CLIENT]
        pods = {
            b.name: bed.add_pod(
                b.name,
                namespace=b.namespace,
                service_account=b.service_account,
                labels=b.pod_labels,
            )
            for b in scenario.backends
        }
        plan = _plan(bed, client, pods, scenario.ports or (DEFAULT_PORT,))
        extra = {plan.client: "{client}", plan.control: "{control}"}
        others = {name: pod for name, pod in clients.items() if name != CLIENT}
        extra |= {pod.address: f"{{client:{name}}}" for name, pod in others.items()}
        bindings = Bindings(plan.backends, plan.ports, extra)
        world = PodWorld(
            scenario, dataplane, settings, plan, bindings, bed.control,
            bed=bed, client=client, pods=pods, clients=clients, tls=tls,
        )  # fmt: skip
        await bed.publish()
        await bed.apply(world.named(bindings.substitute(list(scenario.manifests))))
        if scenario.xds:
            bed.control.apply_xds(bindings.substitute(list(scenario.xds)))
        async with _together() as nursery:
            for backend in scenario.backends:
                nursery.start_soon(world._start_backend, backend)
        async with _together() as nursery:
            for pod in pods.values():
                nursery.start_soon(_start_sidecar, bed, pod, peer or dataplane, world.app_port)
            for c in scenario.client_pods:
                if c.sidecar:
                    pod = clients[c.name]
                    nursery.start_soon(_start_sidecar, bed, pod, dataplane, contract.APP_PORT)
        yield world


async def _start_sidecar(bed: Bed, pod: Pod, dataplane: DataPlane, app_port: int) -> None:
    await bed.start_sidecar(pod, dataplane, app_port=app_port)


@asynccontextmanager
async def _together() -> AsyncIterator[trio.Nursery]:
    """A nursery whose failures come out as one `WorldError` naming each of them."""
    try:
        async with trio.open_nursery() as nursery:
            yield nursery
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if not all(isinstance(e, STARTING) for e in leaves):
            raise
        raise WorldError("\n".join(str(e) for e in leaves)) from None


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for e in group.exceptions:
        out += _leaves(e) if isinstance(e, BaseExceptionGroup) else [e]
    return out
