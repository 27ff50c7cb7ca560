"""Helpers for router tests: route configs from dicts, requests from a few fields."""

from __future__ import annotations

from typing import Any

from envoy.config.route.v3 import route_pb2
from google.protobuf.json_format import ParseDict

from pydp.router import RouteTable, compile_route_config


def proto(config: dict[str, Any]) -> Any:
    return ParseDict(config, route_pb2.RouteConfiguration())


def table(config: dict[str, Any]) -> RouteTable:
    return compile_route_config(proto(config))


def one_route(route: dict[str, Any], **vhost: Any) -> dict[str, Any]:
    """A config with one `*` virtual host holding `route`."""
    return {
        "name": "rc",
        "virtual_hosts": [{"name": "vh", "domains": ["*"], "routes": [route], **vhost}],
    }


def request(
    path: str = "/",
    host: str = "example.com",
    *headers: tuple[str, str],
    method: str = "GET",
    scheme: str = "http",
) -> list[tuple[bytes, bytes]]:
    return [
        (b":method", method.encode()),
        (b":scheme", scheme.encode()),
        (b":authority", host.encode()),
        (b":path", path.encode()),
        *((k.encode(), v.encode()) for k, v in headers),
    ]


def body_route(prefix: str, body: str, **match: Any) -> dict[str, Any]:
    """A route answering `body` directly, to observe which route matched."""
    return {
        "match": {"prefix": prefix, **match},
        "direct_response": {"status": 200, "body": {"inline_string": body}},
    }
