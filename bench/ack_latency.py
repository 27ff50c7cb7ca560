"""How long an endpoint change takes to be ACKed by every connected proxy.

    python -m bench.ack_latency [--clients 1000] [--services 1000] [--endpoints 10]
        [--changes 5] [--delta] [--client-procs 1] [--channels 8]

Runs the real server in this process (Hub, Pipeline, `grpc_server.start` on
127.0.0.1, port 0) and `bench.ads_clients` in one or more other processes.
Once every stream has ACKed CDS, EDS, LDS and RDS of the first snapshot,
each of `--changes` rounds moves one endpoint of one Service, calls
`Pipeline.publish_now` and waits until every client has ACKed the EDS
response of the new snapshot. The latency of one client in one round is
from the start of the publish call to the moment the server reads that
client's ACK (the hub's `account`, wrapped here by a subclass).

Prints each round, then p50/p90/p99/max of the latencies over all clients and
rounds, the publish call's own duration (and the part of it spent computing
every stream's push), and the CPU seconds the server process and the client
processes used during the rounds (100% of the wall time is one core busy).
`--profile FILE` writes a cProfile of the server's event loop over the rounds
(read it with `python -m pstats FILE`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from api import contract
from bench.models import change_endpoint, synthetic_model
from xds_server import grpc_server
from xds_server.hub import Hub
from xds_server.pipeline import Pipeline
from xds_server.protocol.state import Phase, Step

ROOT = Path(__file__).resolve().parent.parent
SYNC_TYPES = (
    contract.TYPE_CLUSTER,
    contract.TYPE_ENDPOINT,
    contract.TYPE_LISTENER,
    contract.TYPE_ROUTE,
)


class AckClock(Hub):
    """A hub that times the EDS ACKs of one awaited snapshot version."""

    def __init__(self) -> None:
        super().__init__()
        self.awaited = -1
        self.expected = 0
        self.started = 0.0
        self.latencies: list[float] = []
        self.all_acked = asyncio.Event()

    def expect(self, version: int, clients: int) -> None:
        self.awaited, self.expected = version, clients
        self.latencies = []
        self.all_acked.clear()
        self.started = time.perf_counter()

    def account(self, step: Step) -> None:
        now = time.perf_counter()
        super().account(step)
        for ack in step.acks:
            if ack.type_url == contract.TYPE_ENDPOINT and ack.snapshot_version == self.awaited:
                self.latencies.append(now - self.started)
                if len(self.latencies) >= self.expected:
                    self.all_acked.set()


def synced(hub: Hub, clients: int) -> bool:
    """Whether `clients` streams hold and have ACKed the current CDS, EDS, LDS and RDS."""
    if len(hub.connections) < clients:
        return False
    for conn in hub.connections.values():
        for type_url in SYNC_TYPES:
            state = conn.stream.states.get(type_url)
            if (
                state is None
                or state.phase is not Phase.WAITING
                or state.acked_version != state.version
                or state.nack is not None
            ):
                return False
    return True


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and all its threads, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError as e:
        raise RuntimeError(f"cannot read the CPU time of process {pid} (Linux only): {e}") from e
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Clients:
    """One client process and what it printed."""

    index: int
    proc: asyncio.subprocess.Process
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    lines: list[str] = field(default_factory=list)

    async def echo(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            print(f"  [clients {self.index}] {line}", flush=True)
            if line.startswith("synced "):
                self.synced.set()


async def spawn(args: argparse.Namespace, port: int) -> list[Clients]:
    out = []
    per, extra = divmod(args.clients, args.client_procs)
    first = 0
    for i in range(args.client_procs):
        count = per + (i < extra)
        command = [
            sys.executable,
            "-m",
            "bench.ads_clients",
            f"--server=127.0.0.1:{port}",
            f"--clients={count}",
            f"--first={first}",
            f"--channels={args.channels}",
            f"--namespaces={args.namespaces}",
            *(["--delta"] if args.delta else []),
        ]
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, stdout=asyncio.subprocess.PIPE
        )
        out.append(Clients(i, proc))
        first += count
    return out


async def wait_synced(hub: Hub, clients: list[Clients], count: int, within: float) -> None:
    deadline = time.monotonic() + within
    while not (all(c.synced.is_set() for c in clients) and synced(hub, count)):
        for c in clients:
            if c.proc.returncode is not None:
                raise RuntimeError(f"client process {c.index} exited with {c.proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{len(hub.connections)} of {count} streams connected, "
                f"not all synced after {within:.0f} s"
            )
        await asyncio.sleep(0.05)


def _push_seconds(hub: Hub) -> float:
    return hub.metrics.registry.get_sample_value("xds_push_seconds_sum") or 0.0


async def bench(args: argparse.Namespace) -> int:
    hub = AckClock()
    pipeline = Pipeline(hub)
    model = synthetic_model(args.services, args.endpoints, args.namespaces)
    started = time.perf_counter()
    if not pipeline.publish_now(model):
        raise RuntimeError("the synthetic model was refused; see the log")
    built = time.perf_counter() - started
    server, port = await grpc_server.start(hub, "127.0.0.1:0")
    clusters = sum(len(s.ports) for s in model.services.values())
    print(
        f"server on 127.0.0.1:{port}: {args.services} Services x {args.endpoints} endpoints "
        f"({clusters} clusters) in {args.namespaces} namespaces; "
        f"snapshot 1 built in {built * 1000:.1f} ms"
    )
    print(
        f"clients: {args.clients} {'delta' if args.delta else 'sotw'} ADS streams "
        f"in {args.client_procs} process(es), {args.channels} channels each"
    )
    clients = await spawn(args, port)
    echoes = [asyncio.create_task(c.echo()) for c in clients]
    try:
        began = time.perf_counter()
        await wait_synced(hub, clients, args.clients, args.timeout)
        print(
            f"all {args.clients} streams ACKed CDS, EDS, LDS and RDS of snapshot "
            f"{hub.snapshot.version} after {time.perf_counter() - began:.2f} s"
        )
        latencies, publishes, pushes = [], [], []
        cpu_server = time.process_time()
        cpu_clients = sum(cpu_seconds(c.proc.pid) for c in clients)
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            profiler.enable()
        wall = time.perf_counter()
        for change in range(1, args.changes + 1):
            model, changed = change_endpoint(model, change)
            version = hub.snapshot.version + 1
            push_before = _push_seconds(hub)
            hub.expect(version, args.clients)
            if not pipeline.publish_now(model):
                raise RuntimeError(f"snapshot {version} was refused; see the log")
            publishes.append(time.perf_counter() - hub.started)
            pushes.append(_push_seconds(hub) - push_before)
            try:
                await asyncio.wait_for(hub.all_acked.wait(), args.timeout)
            except TimeoutError:
                raise TimeoutError(
                    f"snapshot {version}: {len(hub.latencies)} of {args.clients} clients "
                    f"ACKed EDS within {args.timeout:.0f} s"
                ) from None
            latencies += hub.latencies
            print(
                f"change {change}: endpoint of {changed} -> snapshot {version}; "
                f"publish {publishes[-1] * 1000:.1f} ms (push {pushes[-1] * 1000:.1f} ms), "
                f"last ACK after {max(hub.latencies) * 1000:.1f} ms"
            )
            await asyncio.sleep(args.pause)
        wall = time.perf_counter() - wall
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        cpu_server = time.process_time() - cpu_server
        cpu_clients = sum(cpu_seconds(c.proc.pid) for c in clients) - cpu_clients
    finally:
        for c in clients:
            if c.proc.returncode is None:
                c.proc.terminate()
        codes = [await c.proc.wait() for c in clients]
        await asyncio.gather(*echoes)
        await server.stop(None)
    ms = {p: percentile(latencies, p) * 1000 for p in (50, 90, 99, 100)}
    print(
        f"EDS ACK latency over {len(latencies)} ACKs ({args.clients} clients x "
        f"{args.changes} changes): p50 {ms[50]:.1f} ms, p90 {ms[90]:.1f} ms, "
        f"p99 {ms[99]:.1f} ms, max {ms[100]:.1f} ms"
    )
    print(
        f"publish_now: median {statistics.median(publishes) * 1000:.1f} ms, "
        f"max {max(publishes) * 1000:.1f} ms; of which pushing to streams: "
        f"median {statistics.median(pushes) * 1000:.1f} ms"
    )
    print(
        f"CPU over the changes ({wall:.2f} s wall): server {cpu_server:.2f} s "
        f"({cpu_server / wall:.0%}), clients {cpu_clients:.2f} s ({cpu_clients / wall:.0%})"
    )
    failed = [c.index for c, code in zip(clients, codes, strict=True) if code != 0]
    if failed:
        print(f"client process(es) {failed} reported failed streams", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ack_latency", description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--delta", action="store_true", help="Delta xDS instead of SotW")
    parser.add_argument("--namespaces", type=int, default=3)
    parser.add_argument("--client-procs", type=int, default=1, help="client processes")
    parser.add_argument("--channels", type=int, default=8, help="channels per client process")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between changes")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per wait")
    parser.add_argument(
        "--profile", metavar="FILE", help="write a cProfile of the server during the changes"
    )
    args = parser.parse_args(argv)
    if args.clients < 1 or args.client_procs < 1 or args.changes < 1:
        parser.error("--clients, --client-procs and --changes must be at least 1")
    args.client_procs = min(args.client_procs, args.clients)
    sys.exit(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
