"""`xds-server`: serve xDS from a manifests folder, or print a sidecar bootstrap."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from api import contract
from api.contract import NodeProfile


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xds-server", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve LDS/RDS/CDS/EDS over ADS (SotW and Delta)")
    serve.add_argument(
        "--manifests",
        required=True,
        metavar="DIR",
        help="folder of Kubernetes YAML (Services, EndpointSlices, Pods), watched",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
            )
        )
        return 0

    from xds_server.app import Settings, serve  # noqa: PLC0415

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
    )
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        logging.getLogger("xds_server").error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
