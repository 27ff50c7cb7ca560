"""The `pydp` command: `pydp run -c BOOTSTRAP`, spelled as Envoy's command line is.

`pydp run -c FILE` (or `--config-path` / `--bootstrap`) reads the same
bootstrap stock Envoy reads; `pydp run --xds HOST:PORT --node-id ID` runs
without one. `--concurrency N` (N > 1) starts N worker processes that share
the listening ports through SO_REUSEPORT; each worker is a whole pydp with its
own xDS stream (Envoy has one xDS stream and N worker threads; processes
cannot share one), and only worker 0 serves the admin port, so its `/stats`
count worker 0's traffic. SIGTERM (or SIGINT) drains: the proxy reports
`DRAINING`, stops accepting (new connections are refused), lets open
connections finish until `--drain-time-s`, and exits 0; a second signal
stops it at once. (Stock Envoy exits at once on SIGTERM; a graceful drain
there is `POST /drain_listeners?graceful` first, as Istio's agent does.) `POST /quitquitquit`
exits at once. Envoy flags without meaning here (`--use-dynamic-base-id`,
`--base-id`, `--disable-hot-restart`, ...) are accepted and ignored, so a
command line written for Envoy runs pydp.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio
import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.core.v3 import base_pb2
from google.protobuf import json_format, struct_pb2

from pydp.access_log import FLUSH_INTERVAL
from pydp.app import App
from pydp.listener.manager import DEFAULT_DRAIN_TIME
from pydp.xds import BootstrapConfig, BootstrapError, load_bootstrap
from pydp.xds.bootstrap import USER_AGENT_NAME

log = logging.getLogger("pydp")

LOG_LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "off": logging.CRITICAL + 10,
}
_IGNORED_FLAGS = ("--use-dynamic-base-id", "--disable-hot-restart", "--cpuset-threads")
_IGNORED_OPTIONS = ("--base-id", "--drain-strategy", "--parent-shutdown-time-s", "--restart-epoch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pydp", description="pydp, a trio sidecar proxy")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the proxy")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("-c", "--config-path", "--bootstrap", dest="config", metavar="FILE")
    source.add_argument("--xds", metavar="HOST:PORT", help="run without a bootstrap file")
    run.add_argument("--node-id", help="with --xds: the node id (<pod>.<namespace>)")
    run.add_argument("--node-cluster", help="with --xds: the node cluster")
    run.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--admin-address", metavar="HOST:PORT", help="with --xds: the admin port")
    run.add_argument("--delta", action="store_true", help="with --xds: use Delta ADS")
    run.add_argument("--concurrency", type=int, default=1, metavar="N")
    run.add_argument("-l", "--log-level", default="info", choices=sorted(LOG_LEVELS))
    run.add_argument("--drain-time-s", type=float, default=DEFAULT_DRAIN_TIME, metavar="SECONDS")
    run.add_argument(
        "--file-flush-interval-msec", type=int, default=int(FLUSH_INTERVAL * 1000), metavar="MS"
    )
    run.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    for flag in _IGNORED_FLAGS:
        run.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    for option in _IGNORED_OPTIONS:
        run.add_argument(option, help=argparse.SUPPRESS)
    return parser


def configure_logging(level: str) -> None:
    """Envoy's log line shape: `[date time.ms][pid][level][logger] message`."""
    logging.addLevelName(5, "trace")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "[%(asctime)s.%(msecs)03d][%(process)d][%(levelname)s][%(name)s] %(message)s",
            datefmt="%Y-%m-%d %H:%M:%S",
        )
    )
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not getattr(h, "pydp", False)]
    handler.pydp = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(LOG_LEVELS[level])
    for name, value in LOG_LEVELS.items():
        if name != "warn" and value <= logging.CRITICAL:
            logging.addLevelName(value, name)


def bootstrap_from_args(args: argparse.Namespace) -> tuple[BootstrapConfig, Any]:
    """The bootstrap to run with, and the `Bootstrap` message `/config_dump` shows."""
    if args.config:
        config = load_bootstrap(args.config)
        return config, _bootstrap_message(args.config, config)
    if not args.node_id:
        raise BootstrapError("command line", "--node-id", "is required with --xds")
    host, port = _split(args.xds, "--xds")
    node = base_pb2.Node(id=args.node_id, user_agent_name=USER_AGENT_NAME)
    node.cluster = args.node_cluster or args.node_id.rsplit(".", 1)[-1]
    metadata = dict(item.split("=", 1) for item in args.metadata if "=" in item)
    node.metadata.CopyFrom(_struct(metadata))
    admin_host, admin_port = (
        _split(args.admin_address, "--admin-address") if args.admin_address else (None, None)
    )
    config = BootstrapConfig(
        node=node,
        xds_host=host,
        xds_port=port,
        delta=args.delta,
        admin_address=admin_host,
        admin_port=admin_port,
        source="command line",
        metadata=metadata,
    )
    message = bootstrap_pb2.Bootstrap()
    message.node.CopyFrom(node)
    return config, message


def _struct(values: dict[str, str]) -> Any:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def _split(text: str, flag: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise BootstrapError("command line", flag, f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def _bootstrap_message(path: str, config: BootstrapConfig) -> Any:
    text = Path(path).read_text()
    data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    message = bootstrap_pb2.Bootstrap()
    json_format.ParseDict(data, message)
    message.node.CopyFrom(config.node)
    return message


async def serve(app: App) -> int:
    """Run `app` until SIGTERM/SIGINT (drain, then exit 0) or `/quitquitquit` (exit 0)."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(app.run)
            caught = await _first_of(signals, app.quit_requested)
            if caught is not None:
                log.warning("caught %s; draining for up to %ss", caught.name, app.drain_time)
                async with trio.open_nursery() as draining:

                    async def drain() -> None:
                        await app.drain()
                        draining.cancel_scope.cancel()

                    draining.start_soon(drain)
                    await _first_of(signals, trio.Event())  # a second signal: stop now
                    log.warning("caught a second signal; stopping without waiting")
                    draining.cancel_scope.cancel()
            else:
                log.warning("shutting down (quitquitquit)")
            nursery.cancel_scope.cancel()
    return 0


async def _first_of(signals: Any, quit_requested: trio.Event) -> signal.Signals | None:
    caught: list[signal.Signals] = []
    async with trio.open_nursery() as waiters:

        async def on_signal() -> None:
            async for number in signals:
                caught.append(signal.Signals(number))
                waiters.cancel_scope.cancel()
                return

        async def on_quit() -> None:
            await quit_requested.wait()
            waiters.cancel_scope.cancel()

        waiters.start_soon(on_signal)
        waiters.start_soon(on_quit)
    return caught[0] if caught else None


def supervise(argv: Sequence[str], concurrency: int, drain_time: float) -> int:
    """Run `concurrency` workers; forward signals; when one exits, stop the rest."""
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "pydp.cli", *argv, "--worker-index", str(index)],
        )
        for index in range(concurrency)
    ]

    def forward(number: int, frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(number)

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, forward)
    code = 0
    try:
        pid, status = os.wait()
        code = os.waitstatus_to_exitcode(status)
        for child in children:
            if child.pid == pid:
                child.returncode = code
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + drain_time + 5
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return code if code >= 0 else 128 - code


def tune_gc() -> None:
    """Collect less often, and never look at what startup made (modules, protos).

    The data path allocates in bursts that are freed by reference counting;
    with the default thresholds a full collection (about 16 ms, every stream
    paused) ran about once a second under load, which set the p99 latency."""
    gc.set_threshold(10_000, 10, 10)
    gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    if args.concurrency < 1:
        log.critical("--concurrency must be at least 1, got %d", args.concurrency)
        return 1
    try:
        config, message = bootstrap_from_args(args)
    except BootstrapError as exc:
        log.critical("error initializing configuration: %s", exc)
        return 1
    if args.concurrency > 1 and args.worker_index is None:
        return supervise(argv, args.concurrency, args.drain_time_s)
    app = App(
        config,
        bootstrap_message=message,
        drain_time=args.drain_time_s,
        flush_interval=args.file_flush_interval_msec / 1000,
        concurrency=args.concurrency,
        config_path=args.config or "",
        log_level=args.log_level,
        admin=args.worker_index in (None, 0),
    )
    tune_gc()
    try:
        return trio.run(serve, app)
    except (OSError, ExceptionGroup) as exc:
        error = _os_error(exc)
        if error is None:
            raise
        log.critical("cannot start: %s", error)
        return 1


def _os_error(exc: BaseException) -> OSError | None:
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _os_error(inner)
            if found is not None:
                return found
    return None


if __name__ == "__main__":
    sys.exit(main())
