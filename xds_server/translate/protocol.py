"""Which Service ports speak HTTP/2 to their endpoints, by Istio's protocol selection.

A port's `appProtocol`, when set, decides alone; otherwise its name does. The
deciding label is read case-insensitively as `<protocol>` or `<protocol>-<suffix>`
(so `grpc-web` counts as gRPC), and `kubernetes.io/h2c` is Kubernetes' standard
name for HTTP/2 over cleartext.
"""

from __future__ import annotations

from xds_server.model import ServicePort

HTTP2_PROTOCOLS = frozenset({"grpc", "http2", "h2c"})
KUBERNETES_H2C = "kubernetes.io/h2c"


def is_tcp(port: ServicePort) -> bool:
    """Whether the port carries TCP (UDP and SCTP ports are not proxied)."""
    return port.protocol.upper() == "TCP"


def speaks_http2(port: ServicePort) -> bool:
    """Whether the mesh must open HTTP/2 (prior knowledge) connections to this port."""
    label = (port.app_protocol or port.name).lower()
    if label == KUBERNETES_H2C:
        return True
    return label.split("-", 1)[0] in HTTP2_PROTOCOLS
