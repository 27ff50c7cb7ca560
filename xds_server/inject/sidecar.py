"""The injected sidecar's entry point: a bootstrap from the downward API, then the data plane.

    python -m xds_server.inject.sidecar --dataplane envoy --xds-address HOST:PORT --app-port P
    python -m xds_server.inject.sidecar --probe [--admin-port 15000]

The pod's name, namespace and service account come from the environment,
which the injected container fills from the downward API (`POD_NAME`,
`POD_NAMESPACE`, `SERVICE_ACCOUNT`). The bootstrap is the one `xds-server
bootstrap` prints, except that a control plane addressed by name (its
Service, `xds-server.xdsmesh-system.svc:18000`) is resolved by DNS, as a
STRICT_DNS cluster: a STATIC cluster takes only IP addresses, and the
pod's projected service account token (`--xds-token-file`), if mounted, is
sent as `authorization: Bearer` metadata on the xDS stream. It is read once:
the data plane keeps the token it started with, so a pod older than the
token's lifetime (7 days, `options.TOKEN_TTL`) is refused on its next
reconnect to a control plane with a CA. Every
replica behind the Service serves the same configuration, so whichever one
DNS and kube-proxy pick will do. The data plane then replaces this process
(`exec`), so that it receives the signals Kubernetes sends. `--probe` is the
sidecar's startup and readiness check: the data plane's admin `/ready`.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ENV_POD_NAME = "POD_NAME"
ENV_NAMESPACE = "POD_NAMESPACE"
ENV_SERVICE_ACCOUNT = "SERVICE_ACCOUNT"
DEFAULT_CONFIG = "/etc/xdsmesh/bootstrap.yaml"
ADMIN_PORT = 15000

# The data plane's command line; "{config}" stands for the bootstrap file.
DATAPLANES: dict[str, tuple[str, ...]] = {
    "envoy": ("envoy", "-c", "{config}", "--log-level", "warn"),
    "pydp": ("pydp", "run", "-c", "{config}"),
}


class SidecarError(Exception):
    """The sidecar cannot start; the message says what is missing."""


def sidecar_bootstrap(
    env: Mapping[str, str],
    *,
    dataplane: str,
    xds_address: str,
    app_port: int,
    admin_port: int = ADMIN_PORT,
    delta: bool = False,
    xds_token: str | None = None,
) -> dict[str, Any]:
    """The bootstrap for the pod the environment describes."""
    from api import contract  # noqa: PLC0415
    from api.contract import NodeProfile  # noqa: PLC0415
    from xds_server.bootstrap import XDS_CLUSTER, render, split_address  # noqa: PLC0415

    missing = [k for k in (ENV_POD_NAME, ENV_NAMESPACE, ENV_SERVICE_ACCOUNT) if not env.get(k)]
    if missing:
        raise SidecarError(
            f"{', '.join(missing)} not set: the injected container sets them from the "
            "downward API (metadata.name, metadata.namespace, spec.serviceAccountName)"
        )
    pod, namespace = env[ENV_POD_NAME], env[ENV_NAMESPACE]
    profile = NodeProfile(
        namespace=namespace, service_account=env[ENV_SERVICE_ACCOUNT], app_port=app_port
    )
    bootstrap = render(
        contract.node_id(pod, namespace),
        profile,
        xds_address=xds_address,
        admin_port=admin_port,
        delta=delta,
        pod_name=pod,
        xds_token=xds_token,
    )
    bootstrap["node"]["metadata"][contract.META_DATAPLANE] = dataplane
    host, _ = split_address(xds_address)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        for cluster in bootstrap["static_resources"]["clusters"]:
            if cluster["name"] == XDS_CLUSTER:
                cluster["type"] = "STRICT_DNS"
    return bootstrap


def read_token(path: str | None) -> str | None:
    """The token in `path` (None if there is no such file); raises SidecarError if unusable."""
    if path is None:
        return None
    try:
        token = Path(path).read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise SidecarError(f"cannot read the xDS token {path}: {e.strerror}") from None
    if not token or any(c.isspace() for c in token):
        raise SidecarError(f"the xDS token {path} is empty or holds more than one token")
    return token


def command(dataplane: str, config: str) -> list[str]:
    """The data plane's command line, reading `config`."""
    try:
        template = DATAPLANES[dataplane]
    except KeyError:
        raise SidecarError(f"unknown data plane {dataplane!r}: {', '.join(DATAPLANES)}") from None
    return [part.replace("{config}", config) for part in template]


def probe(admin_port: int = ADMIN_PORT, host: str = "127.0.0.1", timeout: float = 2.0) -> bool:
    """True if the data plane's admin endpoint answers `/ready` with 200."""
    try:
        with urllib.request.urlopen(f"http://{host}:{admin_port}/ready", timeout=timeout) as r:
            return int(r.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m xds_server.inject.sidecar")
    parser.add_argument("--dataplane", choices=sorted(DATAPLANES), default="envoy")
    parser.add_argument("--xds-address", metavar="HOST:PORT")
    parser.add_argument("--app-port", type=int, default=8080)
    parser.add_argument("--admin-port", type=int, default=ADMIN_PORT)
    parser.add_argument("--delta", action="store_true", help="use Delta (incremental) ADS")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="where to write the bootstrap")
    parser.add_argument(
        "--xds-token-file",
        metavar="PATH",
        help="the pod's service account token for the control plane, sent on the xDS "
        "stream; absent file: no token (a control plane without a CA needs none)",
    )
    parser.add_argument("--probe", action="store_true", help="only check the admin /ready")
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] = os.environ) -> int:
    args = _parser().parse_args(argv)
    if args.probe:
        return 0 if probe(args.admin_port) else 1
    if not args.xds_address:
        print("xds_server.inject.sidecar: --xds-address is required", file=sys.stderr)
        return 2
    try:
        import yaml  # noqa: PLC0415

        bootstrap = sidecar_bootstrap(
            env,
            dataplane=args.dataplane,
            xds_address=args.xds_address,
            app_port=args.app_port,
            admin_port=args.admin_port,
            delta=args.delta,
            xds_token=read_token(args.xds_token_file),
        )
        config = Path(args.config)
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
        argv_ = command(args.dataplane, str(config))
    except (SidecarError, ValueError, OSError) as e:
        print(f"xds_server.inject.sidecar: {e}", file=sys.stderr)
        return 1
    try:
        os.execvp(argv_[0], argv_)
    except OSError as e:
        print(f"xds_server.inject.sidecar: cannot run {argv_[0]}: {e.strerror}", file=sys.stderr)
        return 1
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    raise SystemExit(main())
