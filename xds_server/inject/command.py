"""`xds-server inject`: like `istioctl kube-inject`, from a file or stdin to a file or stdout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from xds_server.inject import options as o


def add_parser(sub: Any) -> None:
    """Adds the `inject` subcommand to the `xds-server` command line."""
    inject = sub.add_parser(
        "inject",
        help="add the sidecar to Kubernetes workloads (YAML in, YAML out)",
        description="Add the xdsmesh sidecar (Envoy or pydp) and its traffic capture to every "
        "Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob; other objects "
        f'pass through. Pods opt out with the annotation {o.INJECT}: "false" and choose '
        f"their data plane with {o.DATAPLANE}. Injecting twice changes nothing.",
    )
    inject.add_argument("-f", "--filename", default="-", metavar="FILE", help="default: stdin")
    inject.add_argument("-o", "--output", default="-", metavar="FILE", help="default: stdout")
    inject.add_argument("--dataplane", choices=o.DATAPLANES, default="envoy")
    inject.add_argument("--image", default=o.DEFAULT_IMAGE, help="holds xds-server, pydp, envoy")
    inject.add_argument("--image-pull-policy", choices=("Always", "IfNotPresent", "Never"))
    inject.add_argument("--xds-address", default=o.DEFAULT_XDS_ADDRESS, metavar="HOST:PORT")
    inject.add_argument("--delta", action="store_true", help="sidecars use Delta ADS")
    inject.add_argument(
        "--include-outbound-ip-ranges",
        default="*",
        metavar="CIDRS",
        help="capture outbound traffic only to these (e.g. the Service CIDR); default: all",
    )
    inject.add_argument("--exclude-outbound-ip-ranges", default="", metavar="CIDRS")
    inject.add_argument("--exclude-outbound-ports", default="", metavar="PORTS")


def run(args: argparse.Namespace) -> int:
    from xds_server.inject.manifests import InjectError, inject_text  # noqa: PLC0415

    opts = o.InjectOptions(
        image=args.image,
        dataplane=args.dataplane,
        xds_address=args.xds_address,
        delta=args.delta,
        image_pull_policy=args.image_pull_policy,
        include_outbound_ip_ranges=args.include_outbound_ip_ranges,
        exclude_outbound_ip_ranges=args.exclude_outbound_ip_ranges,
        exclude_outbound_ports=args.exclude_outbound_ports,
    )
    try:
        if args.filename == "-":
            text, source = sys.stdin.read(), "<stdin>"
        else:
            text, source = Path(args.filename).read_text(), args.filename
        output, notes = inject_text(text, opts, source)
        if args.output == "-":
            sys.stdout.write(output)
        else:
            Path(args.output).write_text(output)
    except (InjectError, OSError, UnicodeDecodeError) as e:
        print(f"xds-server inject: {e}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"xds-server inject: {note}", file=sys.stderr)
    return 0
