"""Envoy and pydp side by side: requests/s, latency and memory through one sidecar each.

    python -m bench.dataplane [--duration 10] [--connections 10] [--workers 1 2] [--h2]
        [--quick] [--backend-concurrency 1] [--keep DIR]

One run starts, on loopback ports picked free: a backend (a static Envoy
answering every request with a `direct_response`, so it costs little CPU),
`xds-server serve` on a generated manifests folder holding one Service
(`backend.default`, port 80) whose one endpoint is that backend, then for
each `--workers` count an Envoy sidecar (`envoy --concurrency N`) and a pydp
sidecar (`pydp run --concurrency N`) from `xds-server bootstrap` (distinct
node ids and ports). Each proxy is checked to answer the backend's body
through its outbound listener, then driven in turn with

* `wrk -t1 -c C --latency` (HTTP/1.1 keep-alive) for `--duration` seconds
  after a discarded warm-up of a tenth of it (at least one second);
* with `--h2`, `h2load -t1 -c C -m 10` (h2c with prior knowledge) with the
  same duration and warm-up; p50/p99 come from its per-request log.

Every request is a `GET /` with `Host: backend.default.svc.cluster.local`.
For each (load generator, worker count) it prints one row per proxy -
requests/s, p50 and p99 in ms, RSS in MiB (summed over the proxy's
processes, read from /proc after the run), CPU per request in us (user+system
of the proxy's processes over the run, divided by the requests) - then the
ratios pydp/Envoy, and the CPU the backend and the load generator used (a
backend near 100% of a core would be the bottleneck: raise
`--backend-concurrency`). Runs with errors (non-2xx answers, socket errors)
are reported on a `warning:` line.

`--quick` is a smoke test: one second, one worker, four connections.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HOST = "backend.default.svc.cluster.local"
BODY = b"hello from the backend\n"
BIN = Path(sys.executable).parent
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
STREAMS_PER_CONNECTION = 10
MANAGER = "envoy.filters.network.http_connection_manager"


def program(name: str) -> str:
    """A console script of this environment, else from PATH; exits naming the package."""
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        hint = {"wrk": "the Debian package wrk", "h2load": "the Debian package nghttp2-client"}
        sys.exit(f"bench.dataplane: {name} is not installed ({hint.get(name, 'the project')})")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- processes and what they use -----------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def pids(self) -> list[int]:
        """This process and its descendants (pydp's workers)."""
        found, queue = [], [self.popen.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                with suppress(OSError):
                    queue += [int(c) for c in task.read_text().split()]
        return found

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / CLOCK_TICK

    def rss_mib(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
            total += int(match.group(1)) if match else 0
        return total / 1024

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@contextmanager
def started(name: str, args: Sequence[str], workdir: Path) -> Iterator[Proc]:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    proc = Proc(name, popen, log)
    try:
        yield proc
    finally:
        proc.stop()


def http_get(url: str, host: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=2) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def wait_for(proc: Proc, url: str, host: str | None = None, body: bytes | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            break
        status, got = http_get(url, host)
        if status == 200 and (body is None or got == body):
            return
        time.sleep(0.1)
    sys.exit(f"bench.dataplane: {proc.name} did not answer {url}:\n{proc.output()}")


# -- the world -----------------------------------------------------------------------------


def backend_config(port: int, admin_port: int) -> str:
    """A static Envoy answering every request with `BODY` (JSON, which is YAML too)."""
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network"
        ".http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "backend",
        "codec_type": "AUTO",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [
                        {
                            "match": {"prefix": "/"},
                            "direct_response": {
                                "status": 200,
                                "body": {"inline_string": BODY.decode()},
                            },
                        }
                    ],
                }
            ]
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            }
        ],
    }
    listener = {
        "name": "backend",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }
    admin = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}}
    return json.dumps({"admin": admin, "static_resources": {"listeners": [listener]}}, indent=1)


def service_manifest(backend_port: int) -> str:
    """The Service `backend.default` (port 80) and its EndpointSlice: the backend."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "backend", "namespace": "default"},
        "spec": {
            "clusterIP": "10.96.0.50",
            "ports": [{"name": "http", "port": 80, "targetPort": backend_port}],
        },
    }
    endpoints = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "backend-1",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "backend"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": backend_port, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
    }
    return yaml.safe_dump_all([service, endpoints], sort_keys=False)


@dataclass
class Sidecar:
    kind: str  # "envoy" or "pydp"
    proc: Proc
    port: int
    host: str = HOST
    admin_port: int = 0

    def stat_sum(self, suffix: str) -> int:
        """The sum of the admin endpoint's counters whose names end in `suffix`."""
        _, text = http_get(f"http://127.0.0.1:{self.admin_port}/stats")
        total = 0
        for line in text.decode(errors="replace").splitlines():
            key, _, value = line.partition(": ")
            if key.endswith(suffix) and value.strip().isdigit():
                total += int(value)
        return total

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@contextmanager
def sidecar(
    kind: str,
    workers: int,
    xds: str,
    workdir: Path,
    *,
    name: str | None = None,
    host: str = HOST,
    bootstrap_args: Sequence[str] = (),
) -> Iterator[Sidecar]:
    """A sidecar from `xds-server bootstrap`, ready and answering `host` with `BODY`.

    `bootstrap_args` go to `xds-server bootstrap` (identity, ports, `--ca-dir`)."""
    name = name or f"{kind}-{workers}"
    port, admin = free_port(), free_port()
    ports = ["--admin-port", str(admin), "--outbound-port", str(port)]
    if "--inbound-port" not in bootstrap_args:
        ports += ["--inbound-port", str(free_port())]
    if "--node-id" not in bootstrap_args:
        ports += ["--node-id", f"{name}.default", "--namespace", "default"]
    bootstrap = subprocess.run(
        [program("xds-server"), "bootstrap", "--xds-address", xds, *ports, *bootstrap_args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    config = workdir / f"{name}.yaml"
    config.write_text(bootstrap)
    if kind == "envoy":
        args = [program("envoy"), "-c", str(config), "--use-dynamic-base-id"]
        args += ["--log-level", "warn", "--concurrency", str(workers)]
    else:
        args = [program("pydp"), "run", "-c", str(config), "--log-level", "warning"]
        args += ["--concurrency", str(workers)]
    with started(name, args, workdir) as proc:
        wait_for(proc, f"http://127.0.0.1:{admin}/ready")
        car = Sidecar(kind, proc, port, host, admin)
        if host:
            wait_for(proc, car.url, host, BODY)
        yield car


# -- load ----------------------------------------------------------------------------------


@dataclass
class Result:
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: list[str] = field(default_factory=list)
    proxy_cpu: float = 0.0
    backend_cpu: float = 0.0
    load_cpu: float = 0.0
    rss_mib: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float:
        return self.proxy_cpu / self.requests * 1e6 if self.requests else 0.0


def run_tool(
    args: Sequence[str], log: Path, warm: Callable[[], None] | None = None, warmup: float = 0
) -> tuple[str, float]:
    """The tool's output and the CPU seconds it used; `warm` is called `warmup` seconds
    after the start (when a tool that warms up itself starts measuring)."""
    with log.open("wb") as out:
        popen = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    if warm is not None:
        time.sleep(warmup)
        warm()
    _, status, usage = os.wait4(popen.pid, 0)
    popen.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    if popen.returncode != 0:
        sys.exit(f"bench.dataplane: {args[0]} exited {popen.returncode}:\n{text}")
    return text, usage.ru_utime + usage.ru_stime


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(text: str) -> Result:
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    if done is None or p50 is None or p99 is None:
        raise ValueError(f"unreadable wrk output:\n{text}")
    result = Result(int(done.group(1)), _ms(done.group(2) + done.group(3)) / 1e3)
    result.p50_ms, result.p99_ms = _ms(p50.group(1)), _ms(p99.group(1))
    for pattern in (r"Non-2xx or 3xx responses: \d+", r"Socket errors: [^\n]+"):
        found = re.search(pattern, text)
        if found:
            result.errors.append(found.group(0))
    return result


def parse_h2load(text: str, log: Path, duration: float) -> Result:
    latencies, failed = [], 0
    for line in log.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 3:
            latencies.append(int(fields[2]) / 1e3)
            failed += not fields[1].startswith("2")
    if len(latencies) < 2:
        raise ValueError(f"h2load logged {len(latencies)} requests:\n{text}")
    result = Result(len(latencies), duration)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    result.p50_ms, result.p99_ms = cuts[49], cuts[98]
    summary = re.search(r"requests: .*", text)
    if failed or (summary and not re.search(r" 0 failed, 0 errored", summary.group(0))):
        result.errors.append(f"{failed} non-2xx; h2load {summary.group(0) if summary else ''}")
    return result


@dataclass(frozen=True)
class Load:
    tool: str  # "wrk" or "h2load"
    duration: int
    connections: int
    warmup: int

    @property
    def title(self) -> str:
        if self.tool == "wrk":
            return f"HTTP/1.1, wrk -t1 -c{self.connections}"
        return f"HTTP/2 (h2c), h2load -t1 -c{self.connections} -m{STREAMS_PER_CONNECTION}"

    def command(self, url: str, host: str, seconds: int, log: Path) -> list[str]:
        if self.tool == "wrk":
            return [
                *(program("wrk"), "-t1", f"-c{self.connections}", f"-d{seconds}s", "--latency"),
                *("-H", f"Host: {host}", url),
            ]
        warmup = [f"--warm-up-time={self.warmup}"] if self.warmup else []
        return [
            *(program("h2load"), "-t1", f"-c{self.connections}", f"-m{STREAMS_PER_CONNECTION}"),
            *(f"-D{seconds}", *warmup, "-H", f":authority: {host}", f"--log-file={log}", url),
        ]

    def run(self, car: Sidecar, backend: Proc, workdir: Path) -> Result:
        return self.measure(car.proc.name, car.url, car.host, [car.proc], backend, workdir)

    def measure(
        self, name: str, url: str, host: str, proxies: Sequence[Proc], backend: Proc, workdir: Path
    ) -> Result:
        """Drive `url` (as `host`); CPU and memory are summed over `proxies`."""
        name = f"{self.tool}-{name}"
        requests_log = workdir / f"{name}.requests"
        if self.tool == "wrk" and self.warmup:
            warmup = self.command(url, host, self.warmup, requests_log)
            run_tool(warmup, workdir / f"{name}.warmup")
        cpu = sum(p.cpu_seconds() for p in proxies), backend.cpu_seconds()

        def warm() -> None:  # h2load counts requests from the end of its warm-up
            nonlocal cpu
            cpu = sum(p.cpu_seconds() for p in proxies), backend.cpu_seconds()

        text, load_cpu = run_tool(
            self.command(url, host, self.duration, requests_log),
            workdir / f"{name}.out",
            warm if self.tool == "h2load" and self.warmup else None,
            self.warmup,
        )
        if self.tool == "wrk":
            result = parse_wrk(text)
        else:
            result = parse_h2load(text, requests_log, self.duration)
        result.proxy_cpu = sum(p.cpu_seconds() for p in proxies) - cpu[0]
        result.backend_cpu = backend.cpu_seconds() - cpu[1]
        result.load_cpu = load_cpu
        result.rss_mib = sum(p.rss_mib() for p in proxies)
        return result


# -- report --------------------------------------------------------------------------------


ROW = "  {:<12} {:>10} {:>8} {:>8} {:>9} {:>10}"


def report(load: Load, workers: int, results: dict[str, Result]) -> None:
    print(f"\n{load.title}, {load.duration:g} s, {workers} worker(s)")
    print(ROW.format("", "req/s", "p50 ms", "p99 ms", "RSS MiB", "CPU us/rq"))
    for kind, r in results.items():
        cells = (f"{r.rps:.0f}", f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}", f"{r.rss_mib:.1f}")
        print(ROW.format(kind, *cells, f"{r.cpu_us:.1f}"))
    envoy, pydp = results["envoy"], results["pydp"]
    ratios = [
        pydp.rps / envoy.rps if envoy.rps else 0.0,
        pydp.p50_ms / envoy.p50_ms if envoy.p50_ms else 0.0,
        pydp.p99_ms / envoy.p99_ms if envoy.p99_ms else 0.0,
        pydp.rss_mib / envoy.rss_mib if envoy.rss_mib else 0.0,
        pydp.cpu_us / envoy.cpu_us if envoy.cpu_us else 0.0,
    ]
    print(ROW.format("pydp/envoy", *(f"{x:.2f}" for x in ratios)))
    for kind, r in results.items():
        print(
            f"  during {kind}: backend CPU {r.backend_cpu / r.seconds:.0%} of a core, "
            f"{load.tool} CPU {r.load_cpu / r.seconds:.0%}"
        )
        if r.errors:
            print(f"  warning: {kind}: {'; '.join(r.errors)}")


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.dataplane", description=__doc__)
    parser.add_argument("--duration", type=int, default=10, metavar="SECONDS")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--h2", action="store_true", help="also drive each proxy with h2load")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 1 s, 1 worker")
    parser.add_argument("--backend-concurrency", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write configs, logs and outputs here")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.workers, args.connections = 1, [1], 4
    return args


def loads_of(args: argparse.Namespace) -> list[Load]:
    """The loads `--h2`, `--duration`, `--connections` and `--quick` ask for."""
    tools = ["wrk", "h2load"] if args.h2 else ["wrk"]
    for tool in tools:
        program(tool)
    warmup = 0 if args.quick else max(1, args.duration // 10)
    return [Load(tool, args.duration, args.connections, warmup) for tool in tools]


def start_backend(
    stack: ExitStack, keep: Path | None, prefix: str, concurrency: int = 1
) -> tuple[Path, Proc, int]:
    """The work directory (`keep`, or a temporary one) and the backend, answering on its port."""
    if keep is not None:
        workdir = keep
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
    port, admin = free_port(), free_port()
    (workdir / "backend.yaml").write_text(backend_config(port, admin))
    args = [program("envoy"), "-c", str(workdir / "backend.yaml"), "--use-dynamic-base-id"]
    args += ["--log-level", "warn", "--concurrency", str(concurrency)]
    backend = stack.enter_context(started("backend", args, workdir))
    wait_for(backend, f"http://127.0.0.1:{port}/", body=BODY)
    return workdir, backend, port


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    loads = loads_of(args)
    with ExitStack() as stack:
        workdir, backend, backend_port = start_backend(
            stack, args.keep, "dataplane-", args.backend_concurrency
        )
        (workdir / "manifests").mkdir(exist_ok=True)
        (workdir / "manifests" / "backend.yaml").write_text(service_manifest(backend_port))
        xds, xds_admin = f"127.0.0.1:{free_port()}", free_port()
        server = stack.enter_context(
            started(
                "xds-server",
                [
                    *(program("xds-server"), "serve", "--manifests", str(workdir / "manifests")),
                    *("--xds-address", xds, "--admin-address", f"127.0.0.1:{xds_admin}"),
                ],
                workdir,
            )
        )
        wait_for(server, f"http://127.0.0.1:{xds_admin}/ready")
        print(
            f"backend: Envoy direct_response, concurrency {args.backend_concurrency}; "
            f"{os.cpu_count()} CPUs; GET / Host: {HOST}"
        )
        for workers in args.workers:
            with (
                sidecar("envoy", workers, xds, workdir) as envoy,
                sidecar("pydp", workers, xds, workdir) as pydp,
            ):
                for load in loads:
                    results = {car.kind: load.run(car, backend, workdir) for car in (envoy, pydp)}
                    report(load, workers, results)


if __name__ == "__main__":
    main()
