"""The cost of the mTLS hop: two sidecars of each kind, plaintext and then mTLS.

    python -m bench.mesh_hop [--duration 10] [--connections 10] [--h2] [--quick]
        [--dataplane envoy --dataplane pydp] [--keep DIR]

A request goes from the load generator to a client sidecar's outbound
listener, across the hop to a server sidecar's inbound listener, and on to
the backend (the static Envoy of `bench.dataplane`, the server's
application). Both sidecars of a pair are the same data plane, one worker
each. The pairs run twice, under two control planes serving the same
manifests: one without a CA (every hop plaintext), one with `--ca-dir` (the
server's Pod is known and runs as service account `hop-<plane>`, so the
client sidecar originates mTLS expecting that SPIFFE ID and the server
sidecar terminates it, with certificates by SDS; the mesh default mode,
PERMISSIVE, lets the inbound listener take both). Every mTLS run checks that
the server sidecar counted TLS handshakes, so a plaintext fallback cannot
pass for mTLS.

Printed, per load: a row per (plane, security) with requests/s, p50, p99,
RSS (both sidecars) and CPU per request (both sidecars), then for each plane
mTLS/plaintext ratios (the hop's cost), and pydp/Envoy ratios under each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.dataplane import (
    ROW,
    Load,
    Proc,
    Result,
    Sidecar,
    free_port,
    loads_of,
    program,
    sidecar,
    start_backend,
    started,
    wait_for,
)

PLANES = ("envoy", "pydp")
SERVER_ADDRESS = {"envoy": "127.0.0.31", "pydp": "127.0.0.32"}


def host(plane: str) -> str:
    return f"hop-{plane}.default.svc.cluster.local"


def manifests(inbound: dict[str, int]) -> str:
    """Per plane: the Service `hop-<plane>` whose endpoint is that plane's server sidecar."""
    objects: list[dict[str, object]] = []
    for plane, port in inbound.items():
        name = f"hop-{plane}"
        objects += [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]},
            },
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-1",
                    "namespace": "default",
                    "labels": {"kubernetes.io/service-name": name},
                },
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
                "endpoints": [
                    {
                        "addresses": [SERVER_ADDRESS[plane]],
                        "conditions": {"ready": True},
                        "targetRef": {"kind": "Pod", "name": f"{name}-1", "namespace": "default"},
                    }
                ],
            },
        ]
        for pod, account in ((f"{name}-1", name), (f"client-{plane}-1", f"client-{plane}")):
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": pod, "namespace": "default"},
                    "spec": {"serviceAccountName": account},
                }
            )
    return yaml.safe_dump_all(objects, sort_keys=False)


@contextmanager
def control_plane(workdir: Path, ca_dir: Path | None) -> Iterator[str]:
    xds, admin = f"127.0.0.1:{free_port()}", free_port()
    args = [program("xds-server"), "serve", "--manifests", str(workdir / "manifests")]
    args += ["--xds-address", xds, "--admin-address", f"127.0.0.1:{admin}"]
    if ca_dir is not None:
        args += ["--ca-dir", str(ca_dir)]
    name = "xds-server-mtls" if ca_dir else "xds-server-plaintext"
    with started(name, args, workdir) as server:
        wait_for(server, f"http://127.0.0.1:{admin}/ready")
        yield xds


@dataclass
class Pair:
    plane: str
    client: Sidecar
    server: Sidecar

    @property
    def procs(self) -> list[Proc]:
        return [self.client.proc, self.server.proc]


@contextmanager
def pair(
    plane: str, xds: str, inbound: int, app: int, ca_dir: Path | None, workdir: Path
) -> Iterator[Pair]:
    security = ["--ca-dir", str(ca_dir)] if ca_dir else []
    tag = "mtls" if ca_dir else "plain"
    server_args = [
        *("--node-id", f"hop-{plane}-1.default", "--namespace", "default"),
        *("--service-account", f"hop-{plane}", "--inbound-port", str(inbound)),
        *("--app-port", str(app), *security),
    ]
    client_args = [
        *("--node-id", f"client-{plane}-1.default", "--namespace", "default"),
        *("--service-account", f"client-{plane}", *security),
    ]
    server_name, client_name = f"{plane}-server-{tag}", f"{plane}-client-{tag}"
    with (
        sidecar(
            plane, 1, xds, workdir, name=server_name, host="", bootstrap_args=server_args
        ) as server,
        sidecar(
            plane, 1, xds, workdir, name=client_name, host=host(plane), bootstrap_args=client_args
        ) as client,
    ):
        yield Pair(plane, client, server)


def report(load: Load, results: dict[tuple[str, str], Result], warnings: list[str]) -> None:
    print(f"\n{load.title}, {load.duration:g} s, two sidecars (1 worker each) per row")
    print(ROW.format("", "req/s", "p50 ms", "p99 ms", "RSS MiB", "CPU us/rq"))
    for (plane, security), r in results.items():
        cells = (f"{r.rps:.0f}", f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}", f"{r.rss_mib:.1f}")
        print(ROW.format(f"{plane} {security}", *cells, f"{r.cpu_us:.1f}"))

    def ratios(a: Result, b: Result) -> list[str]:
        pairs = [
            (a.rps, b.rps),
            (a.p50_ms, b.p50_ms),
            (a.p99_ms, b.p99_ms),
            (a.rss_mib, b.rss_mib),
            (a.cpu_us, b.cpu_us),
        ]
        return [f"{x / y:.2f}" if y else "-" for x, y in pairs]

    planes = sorted({plane for plane, _ in results}, key=PLANES.index)
    for plane in planes:
        mtls, plain = results[(plane, "mtls")], results[(plane, "plain")]
        print(ROW.format(f"{plane} m/p", *ratios(mtls, plain)))
    if len(planes) == 2:
        for security in ("plain", "mtls"):
            print(
                ROW.format(
                    f"p/e {security}",
                    *ratios(results[("pydp", security)], results[("envoy", security)]),
                )
            )
    for (plane, security), r in results.items():
        if r.errors:
            warnings.append(f"{plane} {security}: {'; '.join(r.errors)}")
    for warning in warnings:
        print(f"  warning: {warning}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.mesh_hop", description=__doc__)
    parser.add_argument("--duration", type=int, default=10, metavar="SECONDS")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--h2", action="store_true", help="also drive each pair with h2load")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 1 s, 4 connections")
    parser.add_argument("--dataplane", action="append", choices=PLANES, dest="planes")
    parser.add_argument("--keep", type=Path, help="write configs, logs and outputs here")
    args = parser.parse_args(argv)
    args.planes = [p for p in PLANES if p in (args.planes or PLANES)]
    if args.quick:
        args.duration, args.connections = 1, 4
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    loads = loads_of(args)
    with ExitStack() as stack:
        workdir, backend, app = start_backend(stack, args.keep, "mesh-hop-")
        inbound = {plane: free_port() for plane in args.planes}
        (workdir / "manifests").mkdir(exist_ok=True)
        (workdir / "manifests" / "hop.yaml").write_text(manifests(inbound))
        print(
            f"backend: Envoy direct_response; {os.cpu_count()} CPUs; "
            f"GET / Host: hop-<plane>.default.svc.cluster.local"
        )
        results: dict[str, dict[tuple[str, str], Result]] = {load.tool: {} for load in loads}
        warnings: list[str] = []
        for security in ("plain", "mtls"):
            ca_dir = workdir / "ca" if security == "mtls" else None
            with control_plane(workdir, ca_dir) as xds:
                for plane in args.planes:
                    with pair(plane, xds, inbound[plane], app, ca_dir, workdir) as hop:
                        before = hop.server.stat_sum("ssl.handshake")
                        for load in loads:
                            name = f"{plane}-{security}"
                            results[load.tool][(plane, security)] = load.measure(
                                name, hop.client.url, host(plane), hop.procs, backend, workdir
                            )
                        handshakes = hop.server.stat_sum("ssl.handshake") - before
                        if security == "mtls" and handshakes == 0:
                            warnings.append(f"{plane}: the server sidecar counted no TLS handshake")
                        if security == "plain" and handshakes:
                            warnings.append(f"{plane}: TLS handshakes on the plaintext hop")
                        time.sleep(0.2)
        for load in loads:
            report(load, results[load.tool], warnings if load is loads[-1] else [])
    sys.stdout.flush()


if __name__ == "__main__":
    main()
