"""What injection is told: command line options, and annotations a pod overrides them with."""

from __future__ import annotations

from dataclasses import dataclass

from api import contract

PREFIX = "xdsmesh.io/"
INJECT = PREFIX + "inject"  # "false" (annotation or label): leave the pod alone
DATAPLANE = PREFIX + "dataplane"  # "envoy" or "pydp"
APP_PORT = PREFIX + "app-port"  # the port the inbound listener forwards to
INCLUDE_INBOUND_PORTS = PREFIX + "include-inbound-ports"  # "*" or "8080,8443"
EXCLUDE_INBOUND_PORTS = PREFIX + "exclude-inbound-ports"
EXCLUDE_OUTBOUND_PORTS = PREFIX + "exclude-outbound-ports"
INCLUDE_OUTBOUND_IP_RANGES = PREFIX + "include-outbound-ip-ranges"  # "*" or CIDRs
EXCLUDE_OUTBOUND_IP_RANGES = PREFIX + "exclude-outbound-ip-ranges"
STATUS = PREFIX + "status"  # written by injection: what it added

INIT_NAME = "xdsmesh-init"
PROXY_NAME = "xdsmesh-proxy"
VOLUME_NAME = "xdsmesh-config"
CONFIG_DIR = "/etc/xdsmesh"
TOKEN_VOLUME_NAME = "xdsmesh-token"
TOKEN_DIR = "/var/run/secrets/xdsmesh"
TOKEN_FILE = "xds-token"
TOKEN_TTL = 7 * 24 * 3600  # the sidecar reads its token once, at start
PROXY_UID = 1337

DEFAULT_IMAGE = "ghcr.io/xdsmesh/xdsmesh:0.1.0"
DEFAULT_XDS_ADDRESS = "xds-server.xdsmesh-system.svc:18000"
DATAPLANES = ("envoy", "pydp")


@dataclass(frozen=True, slots=True)
class InjectOptions:
    image: str = DEFAULT_IMAGE
    dataplane: str = "envoy"
    xds_address: str = DEFAULT_XDS_ADDRESS
    delta: bool = False
    image_pull_policy: str | None = None
    proxy_uid: int = PROXY_UID
    admin_port: int = contract.ADMIN_PORT
    inbound_port: int = contract.INBOUND_PORT
    outbound_port: int = contract.OUTBOUND_PORT
    include_outbound_ip_ranges: str = "*"
    exclude_outbound_ip_ranges: str = ""
    exclude_outbound_ports: str = ""

    def __post_init__(self) -> None:
        if self.dataplane not in DATAPLANES:
            raise ValueError(f"data plane must be one of {', '.join(DATAPLANES)}")
