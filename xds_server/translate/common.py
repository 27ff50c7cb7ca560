"""Pieces shared by several resource kinds: the ADS config source, timeouts, addresses."""

from __future__ import annotations

import ipaddress
from typing import Any

from envoy.config.core.v3 import address_pb2, config_source_pb2
from google.protobuf import duration_pb2

CONNECT_TIMEOUT_SECONDS = 10
# Entries per memo: far more Service ports than a mesh has, yet bounded under churn.
CACHE_SIZE = 1 << 16


def ads_source() -> Any:
    """A config source that says "over the same ADS stream, API v3"."""
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def connect_timeout() -> Any:
    return duration_pb2.Duration(seconds=CONNECT_TIMEOUT_SECONDS)


def socket_address(address: str, port: int) -> Any:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=address, port_value=port)
    )


def host_port(address: str, port: int) -> str:
    """`address:port` as an HTTP Host header carries it (IPv6 in brackets)."""
    return f"{bracketed(address)}:{port}"


def bracketed(address: str) -> str:
    try:
        is_v6 = ipaddress.ip_address(address).version == 6
    except ValueError:
        is_v6 = False
    return f"[{address}]" if is_v6 else address
