import pytest

from xds_server.model import ServicePort
from xds_server.translate.protocol import is_tcp, speaks_http2


@pytest.mark.parametrize(
    ("name", "app_protocol", "expected"),
    [
        ("grpc", None, True),
        ("http2", None, True),
        ("h2c", None, True),
        ("grpc-api", None, True),
        ("http2-internal", None, True),
        ("h2c-x", None, True),
        ("grpc-web", None, True),
        ("GRPC", None, True),
        ("http", None, False),
        ("http-grpc", None, False),
        ("grpcx", None, False),
        ("", None, False),
        ("tcp", None, False),
        ("web", "grpc", True),
        ("web", "grpc-web", True),
        ("web", "http2", True),
        ("web", "kubernetes.io/h2c", True),
        ("web", "HTTP2", True),
        ("", "kubernetes.io/h2c", True),
        ("web", "http", False),
        ("web", "kubernetes.io/ws", False),
        # appProtocol, when set, decides alone (Istio's precedence).
        ("grpc", "http", False),
        ("grpc", "kubernetes.io/wss", False),
    ],
)
def test_http2_detection(name: str, app_protocol: str | None, expected: bool) -> None:
    assert speaks_http2(ServicePort(80, name, app_protocol=app_protocol)) is expected


@pytest.mark.parametrize(("protocol", "expected"), [("TCP", True), ("UDP", False), ("SCTP", False)])
def test_only_tcp_ports_are_proxied(protocol: str, expected: bool) -> None:
    assert is_tcp(ServicePort(53, "dns", protocol=protocol)) is expected
