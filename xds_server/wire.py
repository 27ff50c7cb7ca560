"""Hand-encoded xDS responses, so every resource is serialized once per version.

A DiscoveryResponse is a handful of scalar fields around a repeated field of
`Any` messages. Protobuf's wire format lets a message be written as the
concatenation of its fields, so each resource's `Any` (and, for Delta, its
`Resource` wrapper) is encoded once, when the snapshot is built, and a
response to any number of streams is a `b"".join` of shared bytes plus a few
dozen bytes of header. `tests/xds_server/test_wire.py` checks the output
against the protobuf runtime's own parser.
"""

from __future__ import annotations

from collections.abc import Iterable

_LEN = 2  # wire type "length-delimited"


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return varint(number << 3 | _LEN) + varint(len(payload)) + payload


def field_str(number: int, text: str) -> bytes:
    return field_bytes(number, text.encode()) if text else b""


def any_message(type_url: str, value: bytes) -> bytes:
    """The body of a google.protobuf.Any."""
    return field_str(1, type_url) + field_bytes(2, value)


# DiscoveryResponse: version_info=1, resources=2, type_url=4, nonce=5, control_plane=6.
def sotw_resource(type_url: str, payload: bytes) -> bytes:
    return field_bytes(2, any_message(type_url, payload))


def sotw_response(
    version: str, type_url: str, nonce: str, resources: Iterable[bytes], control_plane: bytes
) -> bytes:
    return b"".join(
        (
            field_str(1, version),
            *resources,
            field_str(4, type_url),
            field_str(5, nonce),
            control_plane,
        )
    )


# Resource (envoy.service.discovery.v3): version=1, resource=2, name=3.
# DeltaDiscoveryResponse: system_version_info=1, resources=2, type_url=4,
# nonce=5, removed_resources=6, control_plane=7.
def delta_resource(type_url: str, name: str, version: str, payload: bytes) -> bytes:
    body = (
        field_str(1, version) + field_bytes(2, any_message(type_url, payload)) + field_str(3, name)
    )
    return field_bytes(2, body)


def delta_response(
    system_version: str,
    type_url: str,
    nonce: str,
    resources: Iterable[bytes],
    removed: Iterable[str],
    control_plane: bytes,
) -> bytes:
    return b"".join(
        (
            field_str(1, system_version),
            *resources,
            field_str(4, type_url),
            field_str(5, nonce),
            *(field_bytes(6, name.encode()) for name in removed),
            control_plane,
        )
    )


def control_plane(identifier: str, field_number: int) -> bytes:
    """The `control_plane` field (config.core.v3.ControlPlane{identifier=1})."""
    return field_bytes(field_number, field_str(1, identifier))
