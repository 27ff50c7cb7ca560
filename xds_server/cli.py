"""`xds-server`: serve xDS from a folder or a cluster, print a bootstrap, inject sidecars."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from api import contract
from api.contract import NodeProfile
from xds_server.ca.identity import CaError
from xds_server.inject import command as inject_command
from xds_server.sources.kube.config import KubeSetupError, in_pod

if TYPE_CHECKING:
    from xds_server.app import KubeSettings
    from xds_server.ca.service import SecuritySettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xds-server", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve LDS/RDS/CDS/EDS over ADS (SotW and Delta)")
    serve.add_argument(
        "--manifests",
        metavar="DIR",
        help="folder of Kubernetes YAML (Services, EndpointSlices, Pods), watched",
    )
    kube = serve.add_argument_group(
        "Kubernetes",
        "watch a cluster's API instead of a folder (the default inside a pod, detected "
        "from its service account token)",
    )
    kube.add_argument("--kubernetes", action="store_true", help="watch the Kubernetes API")
    kube.add_argument("--kubeconfig", metavar="FILE", help="default: $KUBECONFIG or ~/.kube/config")
    kube.add_argument("--context", help="the kubeconfig context to use")
    kube.add_argument(
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch only this namespace (repeatable, or comma-separated); default: all",
    )
    kube.add_argument(
        "--namespace-selector",
        metavar="SELECTOR",
        help="watch only namespaces whose labels match, e.g. 'xdsmesh.io/mesh=enabled'",
    )
    serve.add_argument("--xds-address", default="127.0.0.1:18000", metavar="HOST:PORT")
    serve.add_argument("--admin-address", default="127.0.0.1:18001", metavar="HOST:PORT")
    serve.add_argument("--cluster-domain", default=contract.CLUSTER_DOMAIN)
    serve.add_argument(
        "--debounce-quiet",
        type=float,
        default=0.1,
        metavar="SECONDS",
        help="publish once changes have been quiet this long (default 0.1)",
    )
    serve.add_argument(
        "--debounce-max",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="publish at the latest this long after a burst began (default 1)",
    )
    serve.add_argument(
        "--max-connection-age",
        type=float,
        default=None,
        metavar="SECONDS",
        help="close xDS connections after this long so proxies rebalance",
    )
    serve.add_argument(
        "--xds-overrides",
        default=None,
        metavar="DIR",
        help="folder of raw Envoy resources (YAML, protobuf JSON with @type) that "
        "replace or add to the translation; watched",
    )
    security = serve.add_argument_group(
        "identity and mTLS",
        "with --ca-dir the server runs the mesh's CA: it issues each workload a "
        "certificate over SDS, sidecars speak mTLS, and a proxy must prove which "
        "workload it is (a token from `xds-server bootstrap --ca-dir`, or its service "
        "account token with --kubernetes) before it gets any configuration",
    )
    where = security.add_mutually_exclusive_group()
    where.add_argument(
        "--ca-dir",
        metavar="DIR",
        help="the CA's keys: generated on first start, or your root or intermediate "
        "(root-cert.pem + root-key.pem, or ca-cert.pem + ca-key.pem + root-cert.pem)",
    )
    where.add_argument(
        "--ca-secret",
        metavar="NAMESPACE/NAME",
        help="with --kubernetes: keep the CA's keys (the same files) in this Secret, "
        "which replicas share; created with a new root on first start",
    )
    security.add_argument("--trust-domain", default=contract.CLUSTER_DOMAIN)
    security.add_argument(
        "--cert-ttl",
        type=_duration,
        default=24 * 3600.0,
        metavar="DURATION",
        help="lifetime of workload certificates, e.g. 24h, 30m, 90s (default 24h); "
        "renewed at half life",
    )
    security.add_argument(
        "--mtls-mode",
        choices=("STRICT", "PERMISSIVE", "DISABLE"),
        default="PERMISSIVE",
        help="the mesh-wide mode for workloads no PeerAuthentication decides (default PERMISSIVE)",
    )
    serve.add_argument("--log-level", default="info")

    boot = sub.add_parser("bootstrap", help="print an Envoy bootstrap for one sidecar")
    boot.add_argument("--node-id", required=True, metavar="POD.NS")
    boot.add_argument("--namespace", required=True)
    boot.add_argument("--service-account", default="default")
    boot.add_argument("--xds-address", default="127.0.0.1:18000", metavar="HOST:PORT")
    boot.add_argument("--admin-address", default="127.0.0.1", metavar="HOST")
    boot.add_argument("--admin-port", type=int, default=contract.ADMIN_PORT)
    boot.add_argument("--outbound-address", default=contract.OUTBOUND_ADDRESS)
    boot.add_argument("--outbound-port", type=int, default=contract.OUTBOUND_PORT)
    boot.add_argument("--inbound-port", type=int, default=contract.INBOUND_PORT)
    boot.add_argument("--app-port", type=int, default=contract.APP_PORT)
    boot.add_argument("--delta", action="store_true", help="use Delta (incremental) ADS")
    token = boot.add_mutually_exclusive_group()
    token.add_argument(
        "--ca-dir",
        metavar="DIR",
        help="the server's --ca-dir: mint the workload's xDS token with its key",
    )
    token.add_argument("--xds-token", metavar="TOKEN", help="the xDS token to present")
    inject_command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "inject":
        return inject_command.run(args)
    if args.command == "bootstrap":
        from xds_server.bootstrap import render_yaml  # noqa: PLC0415

        profile = NodeProfile(
            namespace=args.namespace,
            service_account=args.service_account,
            outbound_address=args.outbound_address,
            outbound_port=args.outbound_port,
            inbound_port=args.inbound_port,
            app_port=args.app_port,
        )
        sys.stdout.write(
            render_yaml(
                args.node_id,
                profile,
                xds_address=args.xds_address,
                admin_address=args.admin_address,
                admin_port=args.admin_port,
                delta=args.delta,
                xds_token=_xds_token(args, profile),
            )
        )
        return 0

    from xds_server.app import Settings, serve  # noqa: PLC0415

    kubernetes = _kube_settings(args)
    if isinstance(kubernetes, str):
        parser.error(kubernetes)
    if args.ca_secret is not None and kubernetes is None:
        parser.error("--ca-secret keeps the CA in a Kubernetes Secret: it needs --kubernetes")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    settings = Settings(
        manifests=args.manifests,
        xds_address=args.xds_address,
        admin_address=args.admin_address,
        cluster_domain=args.cluster_domain,
        debounce_quiet=args.debounce_quiet,
        debounce_max=args.debounce_max,
        max_connection_age=args.max_connection_age,
        xds_overrides=args.xds_overrides,
        kubernetes=kubernetes,
        security=_security_settings(args),
    )
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 130
    except (OSError, KubeSetupError, CaError) as e:
        logging.getLogger("xds_server").error("%s", e)
        return 1
    return 0


def _kube_settings(args: argparse.Namespace) -> KubeSettings | str | None:
    """Kubernetes settings, None to serve the folder, or what is wrong with the flags."""
    from xds_server.app import KubeSettings  # noqa: PLC0415
    from xds_server.sources.kube.selection import NamespaceSelection, SelectorError  # noqa: PLC0415

    kube_flags = [
        flag
        for flag, value in [
            ("--kubernetes", args.kubernetes),
            ("--kubeconfig", args.kubeconfig),
            ("--context", args.context),
            ("--namespace", args.namespace),
            ("--namespace-selector", args.namespace_selector),
        ]
        if value
    ]
    if args.manifests is not None:
        if kube_flags:
            return f"--manifests serves a folder; {', '.join(kube_flags)} are for --kubernetes"
        return None
    pod = in_pod()
    if not (args.kubernetes or pod):
        return "give --manifests DIR, or --kubernetes to watch a cluster"
    try:
        NamespaceSelection.of(tuple(args.namespace), args.namespace_selector)
    except SelectorError as e:
        return str(e)
    return KubeSettings(
        kubeconfig=args.kubeconfig,
        context=args.context,
        in_cluster=pod and args.kubeconfig is None,
        namespaces=tuple(args.namespace),
        namespace_selector=args.namespace_selector,
    )


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], units[text[-1]]) if text[-1:] in units else (text, 1)
    try:
        seconds = float(number) * unit
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration such as 24h or 90s: {text!r}") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return seconds


def _security_settings(args: argparse.Namespace) -> SecuritySettings | None:
    if args.ca_dir is None and args.ca_secret is None:
        return None
    from xds_server.ca.service import SecuritySettings  # noqa: PLC0415

    return SecuritySettings(
        ca_dir=args.ca_dir,
        ca_secret=args.ca_secret,
        trust_domain=args.trust_domain,
        cert_ttl=args.cert_ttl,
        mtls_mode=args.mtls_mode,
    )


def _xds_token(args: argparse.Namespace, profile: NodeProfile) -> str | None:
    if args.xds_token is not None:
        return str(args.xds_token)
    if args.ca_dir is None:
        return None
    from xds_server.auth.tokens import mint  # noqa: PLC0415
    from xds_server.ca.identity import Identity  # noqa: PLC0415
    from xds_server.ca.store import DirectoryFiles, token_key  # noqa: PLC0415

    key = token_key(DirectoryFiles(args.ca_dir))
    return mint(key, Identity(profile.namespace, profile.service_account))


if __name__ == "__main__":
    raise SystemExit(main())
