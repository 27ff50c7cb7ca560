"""One scenario's world on one data plane: backends, control plane, proxy, all real processes.

`open_world` starts everything on the run's own loopback addresses
(`netplan.py`) and waits until the proxy is ready and has ACKed its first
configuration; leaving it stops every process, whatever happened. The world
offers what steps need: sending a request through the proxy, changing what
the control plane serves, stopping and starting backends and the control
plane, and waiting until the proxy has settled on the latest snapshot.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from conformance import netplan, procs
from conformance.client import Exchange, Reply, send
from conformance.controlplane import SETTLED, ControlPlane
from conformance.dataplanes import DataPlane
from conformance.echo.app import STATS_PATH
from conformance.netplan import NetPlan
from conformance.placeholders import Bindings
from conformance.scenario import Backend, RequestSpec, Scenario

NAMESPACE = "default"
NODE_ID = f"conformance.{NAMESPACE}"
ECHO_PROTOCOL = {"h1": "h1", "h2": "h2", "grpc": "h2", "any": "any"}
DEFAULT_PORT = "default"


class WorldError(RuntimeError):
    pass


@dataclass
class Settings:
    """How to run: the control plane program, Delta or SotW, where to keep the files."""

    xds_server: str
    delta: bool
    workdir: Path
    inject: bool = False


@dataclass
class World:
    scenario: Scenario
    dataplane: DataPlane
    settings: Settings
    plan: NetPlan
    bindings: Bindings
    control: ControlPlane
    backends: dict[str, procs.Proc] = field(default_factory=dict)
    proxy: procs.Proc | None = None
    mark: int | None = None  # snapshot version before the latest change

    # Requests.

    def exchange(self, spec: RequestSpec, index: int = 0) -> Exchange:
        """`spec` with its placeholders filled; `{i}` in its path or headers becomes `index`."""

        def fill(text: str) -> str:
            filled: str = self.bindings.substitute(text)
            return filled.replace("{i}", str(index))

        return Exchange(
            method=spec.method,
            path=fill(spec.path),
            authority=self.bindings.substitute(spec.host),
            headers=tuple((n, fill(v)) for n, v in spec.headers),
            body=spec.body,
            protocol=spec.protocol,
            timeout=spec.timeout,
            scheme="http" if spec.tls is None else "https",
        )

    async def request(self, spec: RequestSpec, index: int = 0) -> Reply:
        """Send `spec` through the proxy."""
        return await send(
            self.exchange(spec, index), self.plan.outbound, local_host=self.plan.client
        )

    # Changes.

    async def change(self, action: str, objects: tuple[Any, ...]) -> None:
        self.mark = await self.control.snapshot_version()
        items = self.bindings.substitute(list(objects))
        if action == "apply":
            self.control.apply(items)
        elif action == "delete":
            self.control.delete(items)
        elif action == "xds_apply":
            self.control.apply_xds(items)
        elif action == "xds_delete":
            self.control.delete_xds(items)
        else:
            raise ValueError(f"no change action {action!r}")

    async def wait_for_config(self, within: float) -> None:
        """Until the snapshot after the last change is out and the proxy ACKed or NACKed it."""
        last: object = None
        with trio.move_on_after(within):
            while True:
                version = await self.control.snapshot_version()
                if self.mark is None or version > self.mark:
                    states = await self.control.proxy_states(NODE_ID)
                    last = states
                    if states and all(s in SETTLED for s in states.values()):
                        self.mark = None
                        return
                else:
                    last = f"snapshot still {version}"
                await trio.sleep(0.02)
        raise WorldError(f"the proxy did not settle on new config within {within}s ({last})")

    async def xds_states(self) -> dict[str, str] | None:
        return await self.control.proxy_states(NODE_ID)

    async def renewals(self, count: int, within: float) -> tuple[dict[str, int], list[str]]:
        """Pods mode only (the loader refuses `renewals` elsewhere)."""
        raise WorldError("renewals: certificates exist in pods mode only")

    async def restart_control_plane(self, down: float) -> None:
        await self.control.stop()
        await trio.sleep(down)
        await self.control.start()
        self.mark = None

    async def stop_backend(self, name: str) -> None:
        proc = self.backends.pop(name, None)
        if proc is None:
            raise WorldError(f"backend {name} is not running")
        await proc.stop()

    async def start_backend(self, name: str) -> None:
        if name in self.backends:
            raise WorldError(f"backend {name} is already running")
        backend = next(b for b in self.scenario.backends if b.name == name)
        await self._start_backend(backend)

    async def backend_count(self, key: str) -> int:
        """How many requests carrying `x-echo-key: key` the running backends saw (`*`: all)."""
        total = 0
        for backend in self.scenario.backends:
            if backend.name not in self.backends:
                continue
            stats = await self._backend_stats(backend)
            if key == "*":
                total += int(stats["requests"])
            else:
                total += int(stats.get("keys", {}).get(key, 0))
        return total

    # Starting and stopping.

    async def _start_backend(self, backend: Backend) -> None:
        address = self.plan.backends[backend.name]
        args = [sys.executable, "-m", "conformance.echo", "--name", backend.name]
        for port in self.plan.ports.values():
            args += ["--listen", f"{address}:{port}"]
        args += ["--protocol", ECHO_PROTOCOL[backend.protocol]]
        log = self.settings.workdir / f"backend-{backend.name}.log"
        proc = procs.start(f"backend {backend.name}", args, log)
        self.backends[backend.name] = proc
        with trio.move_on_after(20):
            while True:
                if not proc.running:
                    raise WorldError(f"backend {backend.name} exited:\n{proc.output()}")
                try:
                    await self._backend_stats(backend)
                    return
                except WorldError:
                    await trio.sleep(0.03)
        raise WorldError(f"backend {backend.name} did not answer within 20s:\n{proc.output()}")

    async def _backend_stats(self, backend: Backend) -> dict[str, Any]:
        address = (self.plan.backends[backend.name], next(iter(self.plan.ports.values())))
        protocol = "h1" if ECHO_PROTOCOL[backend.protocol] != "h2" else "h2"
        reply = await send(
            Exchange(
                path=STATS_PATH,
                authority=f"{address[0]}:{address[1]}",
                protocol=protocol,
                timeout=5,
            ),
            address,
        )
        if reply.status != 200:
            raise WorldError(f"backend {backend.name} stats: {reply.status or reply.error}")
        stats: dict[str, Any] = json.loads(reply.body)
        return stats

    async def _start_proxy(self) -> None:
        bootstrap = await self.control.bootstrap(
            NODE_ID, NAMESPACE, netplan.free_port("127.0.0.1"), self.settings.delta
        )
        config = self.settings.workdir / f"{self.dataplane.name}-bootstrap.yaml"
        config.write_text(bootstrap)
        try:
            command = self.dataplane.command(config)
        except LookupError as e:
            raise WorldError(str(e)) from None
        log = self.settings.workdir / f"{self.dataplane.name}.log"
        self.proxy = procs.start(self.dataplane.name, command, log)
        admin = (self.plan.proxy, self.plan.admin_port)
        await procs.wait_ready(self.proxy, admin, self.dataplane.ready_path, within=30)
        await self.wait_for_config(20)

    async def stop_all(self) -> None:
        with trio.CancelScope(shield=True):
            if self.proxy is not None:
                await self.proxy.stop()
            await self.control.stop()
            for proc in list(self.backends.values()):
                await proc.stop()

    def logs(self) -> dict[str, str]:
        found = {}
        for proc in [self.proxy, self.control.proc, *self.backends.values()]:
            if proc is not None:
                found[proc.name] = proc.output()
        return found


@asynccontextmanager
async def open_world(
    scenario: Scenario, dataplane: DataPlane, settings: Settings
) -> AsyncIterator[World]:
    ports = scenario.ports or (DEFAULT_PORT,)
    plan = netplan.allocate([b.name for b in scenario.backends], ports)
    extra = {
        plan.proxy: "{proxy}",
        f"{plan.proxy}:{plan.outbound_port}": "{proxy}:{outbound}",
        plan.client: "{client}",
        plan.control: "{control}",
    }
    bindings = Bindings(plan.backends, plan.ports, extra)
    control = ControlPlane(settings.xds_server, settings.workdir, plan, settings.inject)
    world = World(scenario, dataplane, settings, plan, bindings, control)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(world.stop_all)
        async with trio.open_nursery() as nursery:
            for backend in scenario.backends:
                nursery.start_soon(world._start_backend, backend)
        control.apply(bindings.substitute(list(scenario.manifests)))
        if scenario.xds:
            control.apply_xds(bindings.substitute(list(scenario.xds)))
        await control.start()
        await world._start_proxy()
        yield world
