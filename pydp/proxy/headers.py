"""What Envoy's connection manager and router do to headers on the way through.

Requests (`sanitize_request`, the connection manager's `mutateRequestHeaders`):
no peer is trusted as internal (Envoy 1.40's default `internal_address_config`),
so the `x-envoy-*` control headers a client could use to steer the proxy are
removed; with `use_remote_address` the request is an edge request, which also
loses the headers only the mesh may set, gets the peer appended to
`x-forwarded-for` (the machine's own address for a loopback peer, as Envoy),
`x-envoy-external-address`, an overwritten `x-forwarded-proto` and a fresh
`x-request-id` unless `preserve_external_request_id`. Otherwise
`x-forwarded-proto` is only added when absent, and `x-request-id` only
generated when absent. The path and host options (`pydp.proxy.paths`) apply
before routing, so the router and the upstream see the same URL.

`x-forwarded-client-cert` last, as Envoy's `mutateXfccRequestHeader`:
ALWAYS_FORWARD_ONLY keeps it; SANITIZE (the default) removes it, and so does
every mode on a connection without a verified client certificate; on one
with a client certificate FORWARD_ONLY keeps it, SANITIZE_SET replaces it
with the peer's details (`client_cert_details`) and APPEND_FORWARD appends
them after a comma. Repeated XFCC headers are joined with commas into the
first, as Envoy's header map does with its inline headers.

Responses: `set_header` replaces in place (Envoy's `setInline`);
`add_connection_headers` overwrites `server` and adds `date` when absent.
"""

from __future__ import annotations

import email.utils
import fcntl
import random
import socket
import struct
import time
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

from pydp.listener.config import HttpConnectionManagerConfig
from pydp.proxy.paths import normalize, strip_port

if TYPE_CHECKING:
    from pydp.tls.peer import TlsPeer

HeaderList = list[tuple[bytes, bytes]]

# Removed from every request not from an internal peer (Envoy's `cleanInternalHeaders`).
INTERNAL_ONLY = frozenset(
    {
        b"x-envoy-internal",
        b"x-envoy-retriable-status-codes",
        b"x-envoy-retriable-header-names",
        b"x-envoy-retry-on",
        b"x-envoy-retry-grpc-on",
        b"x-envoy-max-retries",
        b"x-envoy-upstream-alt-stat-name",
        b"x-envoy-upstream-rq-timeout-ms",
        b"x-envoy-upstream-rq-per-try-timeout-ms",
        b"x-envoy-upstream-rq-timeout-alt-response",
        b"x-envoy-expected-rq-timeout-ms",
        b"x-envoy-force-trace",
        b"x-envoy-ip-tags",
        b"x-envoy-original-url",
        b"x-envoy-hedge-on-per-try-timeout",
    }
)
# Also removed from edge requests.
EDGE_ONLY = INTERNAL_ONLY | {
    b"x-envoy-decorator-operation",
    b"x-envoy-downstream-service-cluster",
    b"x-envoy-downstream-service-node",
    b"x-envoy-original-path",
    b"x-envoy-external-address",
}

_XFP = b"x-forwarded-proto"
_XFF = b"x-forwarded-for"
_REQUEST_ID = b"x-request-id"
_XFCC = b"x-forwarded-client-cert"
# What happens to x-forwarded-client-cert: removed, kept, set or appended to.
_XFCC_DROP, _XFCC_KEEP, _XFCC_SET, _XFCC_APPEND = range(4)
_SIOCGIFADDR = 0x8915
_random_bits = random.Random().getrandbits


def sanitize_request(
    headers: HeaderList,
    config: HttpConnectionManagerConfig,
    remote_ip: str,
    scheme: bytes,
    drop_expect: bool,
    peer: TlsPeer | None = None,
) -> HeaderList:
    """The request headers after the connection manager, as a new list; `peer` is the
    downstream connection's verified TLS peer (None on plaintext)."""
    edge = config.use_remote_address
    xfcc_mode = _xfcc_mode(config.forward_client_cert_details, peer)
    strip = EDGE_ONLY if edge else INTERNAL_ONLY
    if len(headers) >= 4 and headers[3][0] == b":path":
        out = headers[:4]  # the pseudo-headers, which nothing here removes
        rest = headers[4:]
    else:
        out, rest = [], headers
    xfp = xff = xfcc = -1
    request_id = False
    for header in rest:
        name = header[0]
        if name[:2] == b"x-":
            if name in strip:
                continue
            if name == _XFP:
                if xfp >= 0:
                    continue
                xfp = len(out)
            elif name == _REQUEST_ID:
                if edge and not config.preserve_external_request_id:
                    continue
                request_id = True
            elif name == _XFF and xff < 0:
                xff = len(out)
            elif name == _XFCC:
                if xfcc_mode == _XFCC_DROP:
                    continue
                if xfcc >= 0:
                    out[xfcc] = (_XFCC, out[xfcc][1] + b"," + header[1])
                    continue
                xfcc = len(out)
        elif drop_expect and name == b"expect":
            continue
        out.append(header)
    if edge:
        if not config.skip_xff_append:
            own = local_address() if _is_loopback(remote_ip) else remote_ip
            if xff >= 0:
                out[xff] = (_XFF, out[xff][1] + b"," + own.encode())
            else:
                out.append((_XFF, own.encode()))
        if xfp < 0 or config.xff_num_trusted_hops == 0:
            _put(out, xfp, _XFP, scheme)
        out.append((b"x-envoy-external-address", remote_ip.encode()))
    elif xfp < 0:
        out.append((_XFP, scheme))
    if not request_id and config.generate_request_id:
        out.append((_REQUEST_ID, new_request_id()))
    if xfcc_mode >= _XFCC_SET:
        assert peer is not None
        details = client_cert_details(peer, config.set_current_client_cert_details)
        if xfcc_mode == _XFCC_APPEND and xfcc >= 0:
            details = out[xfcc][1] + b"," + details
        _put(out, xfcc, _XFCC, details)
    if config.normalize_path or config.merge_slashes:
        path = out[3][1]
        out[3] = (b":path", normalize(path, config.normalize_path, config.merge_slashes))
    if config.strip_any_host_port:
        out[2] = (b":authority", strip_port(out[2][1]))
    return out


def _xfcc_mode(mode: str, peer: TlsPeer | None) -> int:
    if mode == "ALWAYS_FORWARD_ONLY":
        return _XFCC_KEEP
    if mode == "SANITIZE" or peer is None or not peer.authenticated:
        return _XFCC_DROP
    if mode == "FORWARD_ONLY":
        return _XFCC_KEEP
    return _XFCC_APPEND if mode == "APPEND_FORWARD" else _XFCC_SET


def client_cert_details(peer: TlsPeer, details: Sequence[str]) -> bytes:
    """The peer's XFCC element, as Envoy writes it: `By=` (each URI SAN of this proxy's
    certificate), `Hash=`, then the chosen `details` in order: `Subject="..."`, `URI=`
    (each URI SAN of the peer, or an empty one), `DNS=` (each DNS SAN), joined by `;`."""
    parts = [f"By={uri}" for uri in peer.local_uri_sans]
    if peer.sha256:
        parts.append(f"Hash={peer.sha256}")
    for detail in details:
        if detail == "subject":
            parts.append(f'Subject="{peer.subject}"')
        elif detail == "uri":
            parts.extend([f"URI={uri}" for uri in peer.uri_sans] or ["URI="])
        elif detail == "dns":
            parts.extend(f"DNS={name}" for name in peer.dns_sans)
    return ";".join(parts).encode()


# Version 4, variant 10xx: 4 of the 128 random bits are fixed.
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> bytes:
    """A random (version 4) UUID, as text."""
    h = (_random_bits(128) & _UUID_CLEAR | _UUID_SET).to_bytes(16, "big").hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".encode()


def _put(headers: HeaderList, at: int, name: bytes, value: bytes) -> None:
    if at >= 0:
        headers[at] = (name, value)
    else:
        headers.append((name, value))


def set_header(headers: HeaderList, name: bytes, value: bytes) -> None:
    """Set one value: replace the first `name` in place and drop the rest, or append."""
    found = -1
    for i, (key, _) in enumerate(headers):
        if key == name:
            found = i
            break
    if found < 0:
        headers.append((name, value))
        return
    headers[found] = (name, value)
    if any(key == name for key, _ in headers[found + 1 :]):
        headers[found + 1 :] = [h for h in headers[found + 1 :] if h[0] != name]


def get_header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def add_connection_headers(headers: HeaderList, server: bytes) -> None:
    """`date` when absent, then `server` overwritten (the connection manager's last step)."""
    has_date = False
    server_at = -1
    for i, (name, _) in enumerate(headers):
        if name == b"date":
            has_date = True
        elif name == b"server" and server_at < 0:
            server_at = i
    if not has_date:
        headers.append((b"date", http_date()))
    if server_at >= 0:
        set_header(headers, b"server", server)
    else:
        headers.append((b"server", server))


_SERVICE_TIME = b"x-envoy-upstream-service-time"
_ATTEMPT_COUNT = b"x-envoy-attempt-count"


def finish_response_headers(
    headers: HeaderList, service_time: bytes | None, attempt_count: bytes | None, server: bytes
) -> None:
    """An upstream response head, in place, as the router then the connection manager
    leave it: `x-envoy-upstream-service-time` (unless None: the request had not ended)
    and (when asked) `x-envoy-attempt-count` set, `date` added when absent, `server`
    overwritten."""
    names = [name for name, _ in headers]
    for name in _FINISHED:
        if names.count(name) > 1:
            _finish_slowly(headers, service_time, attempt_count, server)
            return
    if service_time is not None:
        _replace(headers, names, _SERVICE_TIME, service_time)
    if attempt_count is not None:
        _replace(headers, names, _ATTEMPT_COUNT, attempt_count)
    if b"date" not in names:
        headers.append((b"date", http_date()))
    _replace(headers, names, b"server", server)


def _replace(headers: HeaderList, names: list[bytes], name: bytes, value: bytes) -> None:
    """Set the one `name` field (its index in `names`), or append it."""
    if name in names:
        headers[names.index(name)] = (name, value)
    else:
        headers.append((name, value))


_FINISHED = (_SERVICE_TIME, _ATTEMPT_COUNT, b"date", b"server")


def _finish_slowly(
    headers: HeaderList, service_time: bytes | None, attempt_count: bytes | None, server: bytes
) -> None:
    if service_time is not None:
        set_header(headers, _SERVICE_TIME, service_time)
    if attempt_count is not None:
        set_header(headers, _ATTEMPT_COUNT, attempt_count)
    add_connection_headers(headers, server)


_date_second = -1
_date_value = b""


def http_date() -> bytes:
    """The current time as an HTTP date, recomputed once a second."""
    global _date_second, _date_value
    now = int(time.time())
    if now != _date_second:
        _date_value = email.utils.formatdate(now, usegmt=True).encode()
        _date_second = now
    return _date_value


def _is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip == "::1"


@cache
def local_address() -> str:
    """The first non-loopback IPv4 address of the machine (Envoy's `getLocalAddress`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(
                    sock.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15])
                )
            except OSError:
                continue
            address = socket.inet_ntoa(packed[20:24])
            if not address.startswith("127."):
                return address
    return "127.0.0.1"
