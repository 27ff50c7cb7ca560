"""`xdsmesh-conformance`: run the scenarios against data planes, or list them.

  xdsmesh-conformance run [--dataplane envoy] [--dataplane pydp] [--scenario NAME ...]
                          [--xds sotw|delta] [--json PATH] [--html PATH] [--pods]
  xdsmesh-conformance list

`--pods` (as root) runs every scenario in pods mode: each backend and the
client a pod in its own network namespace, its traffic captured into its
sidecar (`conformance/pods/`); without `--scenario`, the scenarios marked
`modes: [..., pods]`. SIGINT, SIGTERM or SIGHUP stop the runs and remove what
they made before exiting (status 130).

Exit status: 0 when every run passed (or differed for a written reason, or was
skipped), 1 on any failure, difference or error, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import trio

from conformance import load, report_files, report_text
from conformance.dataplanes import REGISTRY
from conformance.load import ScenarioError
from conformance.pods.system import unavailable
from conformance.procs import executable
from conformance.results import RunResult, ScenarioResult
from conformance.runner import Options, Progress, run_names, run_suite
from conformance.scenario import Scenario

USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xdsmesh-conformance",
        description="Prove that data planes are interchangeable: one set of scenarios, "
        "every data plane, every difference reported.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run scenarios and report")
    run.add_argument(
        "--dataplane", action="append", choices=sorted(REGISTRY), help="default: envoy"
    )
    run.add_argument("--scenario", action="append", nargs="+", metavar="NAME", default=[])
    run.add_argument("--xds", action="append", choices=("sotw", "delta"), help="default: sotw")
    run.add_argument("--json", type=Path, metavar="PATH", help="write the JSON result here")
    run.add_argument("--html", type=Path, metavar="PATH", help="write the HTML report here")
    run.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    run.add_argument("--scenarios-dir", type=Path, help="read scenarios from this folder")
    run.add_argument("--xds-server", help="the xds-server program (default: this environment's)")
    run.add_argument("--keep", type=Path, metavar="DIR", help="keep every run's files and logs")
    run.add_argument("--timeout", type=float, default=180.0, help="seconds per run (default 180)")
    run.add_argument(
        "--pods",
        action="store_true",
        help="run as pods: network namespaces, iptables capture, a sidecar per pod (root)",
    )
    lister = sub.add_parser("list", help="name the scenarios")
    lister.add_argument("--scenarios-dir", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else USAGE
    try:
        scenarios = load.load_all(args.scenarios_dir)
    except ScenarioError as e:
        print(f"xdsmesh-conformance: {e}", file=sys.stderr)
        return USAGE
    if args.command == "list":
        for s in scenarios:
            first = s.description.strip().splitlines()[0]
            tag = " [xds injection]" if s.needs_injection else ""
            tag += " [pods]" if "pods" in s.modes else ""
            print(f"{s.name}{tag}: {first}")
        return 0
    wanted = [n for group in args.scenario for n in group]
    unknown = sorted(set(wanted) - {s.name for s in scenarios})
    if unknown:
        print(f"xdsmesh-conformance: no scenario named {', '.join(unknown)}", file=sys.stderr)
        return USAGE
    mode = "pods" if args.pods else "loopback"
    if wanted:
        scenarios = [s for s in scenarios if s.name in wanted]
    else:
        scenarios = [s for s in scenarios if mode in s.modes]
    if args.pods and (reason := unavailable()) is not None:
        print(f"xdsmesh-conformance: --pods: {reason}", file=sys.stderr)
        return USAGE
    xds_server = args.xds_server or executable("xds-server")
    if xds_server is None:
        print("xdsmesh-conformance: xds-server is not installed", file=sys.stderr)
        return USAGE
    dataplanes = list(dict.fromkeys(args.dataplane or ["envoy"]))
    modes = list(dict.fromkeys(args.xds or ["sotw"]))
    options = Options(dataplanes, modes, xds_server, jobs=max(1, args.jobs), keep=args.keep)
    options.run_timeout = args.timeout
    options.pods = args.pods

    def progress(result: RunResult, done: int, total: int) -> None:
        print(report_text.progress_line(result, done, total), flush=True)

    total = sum(len(run_names(s, dataplanes, args.pods)) for s in scenarios) * len(modes)
    what = f"{len(scenarios)} scenario(s) x {', '.join(dataplanes)} x {', '.join(modes)}"
    if total > len(scenarios) * len(dataplanes) * len(modes):
        what += " and across data planes"
    print(f"running {total} run(s): {what}{' as pods' if args.pods else ''}", flush=True)
    results = trio.run(partial(_run_until_signal, scenarios, options, progress))
    if results is None:
        print("xdsmesh-conformance: interrupted; every run's processes and files removed")
        return 130
    print()
    print(report_text.table(results, dataplanes))
    report_text.details(results, sys.stdout)
    print(f"\n{report_text.summary(results)}")
    if args.json:
        args.json.write_text(
            json.dumps(report_files.to_json(results, dataplanes, modes), indent=2) + "\n"
        )
    if args.html:
        args.html.write_text(report_files.to_html(results, dataplanes))
    return 0 if report_text.all_passed(results) else 1


async def _run_until_signal(
    scenarios: Sequence[Scenario], options: Options, progress: Progress
) -> list[ScenarioResult] | None:
    """The results, or None if a signal stopped the runs (each cleaned up after itself)."""
    results: list[ScenarioResult] | None = None
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_signal)
            results = await run_suite(scenarios, options, progress)
            nursery.cancel_scope.cancel()
    return results


if __name__ == "__main__":
    sys.exit(main())
