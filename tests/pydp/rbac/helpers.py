"""RBAC protos from dicts, requests as the filters see them, peers, and a proxy with a peer."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio
from envoy.config.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as rbac_filter_pb2
from google.protobuf.json_format import ParseDict

from pydp.listener.config import HttpConnectionManagerConfig
from pydp.proxy.context import HttpContext
from pydp.proxy.downstream_h1 import H1Downstream
from pydp.rbac import RbacFilter, RbacRequest, compile_rbac_filter
from pydp.rbac.matchers import Predicate, compile_permission, compile_principal
from pydp.router._proto import Where
from pydp.tls.peer import TlsPeer
from tests.pydp.proxy.harness import FakeRuntime

RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
RESOURCE = "listener inbound"
CLIENT = "spiffe://cluster.local/ns/a/sa/client"
LOCAL = "spiffe://cluster.local/ns/b/sa/server"


def permission(data: dict[str, Any]) -> Predicate:
    return compile_permission(ParseDict(data, rbac_pb2.Permission()), Where(RESOURCE))


def principal(data: dict[str, Any]) -> Predicate:
    return compile_principal(ParseDict(data, rbac_pb2.Principal()), Where(RESOURCE))


def rbac_message(data: dict[str, Any]) -> Any:
    return ParseDict(data, rbac_filter_pb2.RBAC())


def rules(action: str, policies: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """An RBAC filter config (JSON form) with `rules`."""
    return {"rules": {"action": action, "policies": policies}, **fields}


def policy(
    permissions: Sequence[dict[str, Any]] = ({"any": True},),
    principals: Sequence[dict[str, Any]] = ({"any": True},),
) -> dict[str, Any]:
    return {"permissions": list(permissions), "principals": list(principals)}


def rbac_filter(data: dict[str, Any]) -> RbacFilter:
    return compile_rbac_filter(rbac_message(data), RESOURCE)


def http_filter(data: dict[str, Any], name: str = "envoy.filters.http.rbac") -> dict[str, Any]:
    """An HCM `http_filters` entry (JSON form) holding an RBAC config."""
    return {"name": name, "typed_config": {"@type": RBAC_TYPE, **data}}


def method(name: str) -> dict[str, Any]:
    return {"header": {"name": ":method", "string_match": {"exact": name}}}


def path_prefix(prefix: str) -> dict[str, Any]:
    return {"url_path": {"path": {"prefix": prefix}}}


def principal_name(exact: str) -> dict[str, Any]:
    return {"authenticated": {"principal_name": {"exact": exact}}}


def peer(
    *uris: str,
    dns: Sequence[str] = (),
    subject: str = "",
    local: Sequence[str] = (LOCAL,),
) -> TlsPeer:
    """A TLS client with a certificate of these names (its hash made up from them); without
    names, one that showed no certificate."""
    names = (*uris, *dns, subject) if subject else (*uris, *dns)
    digest = hashlib.sha256("|".join(names).encode()).hexdigest() if names else ""
    return TlsPeer(
        uri_sans=tuple(uris),
        dns_sans=tuple(dns),
        subject=subject,
        sha256=digest,
        local_uri_sans=tuple(local),
    )


def request(
    method: str = "GET",
    path: str | None = "/",
    headers: Sequence[tuple[str, str]] = (),
    peer: TlsPeer | None = None,
    port: int = 15006,
) -> RbacRequest:
    head = [(b":method", method.encode()), (b":scheme", b"http"), (b":authority", b"app")]
    if path is not None:
        head.append((b":path", path.encode()))
    head += [(k.encode(), v.encode()) for k, v in headers]
    return RbacRequest(head, peer, port)


@asynccontextmanager
async def serving_with_peer(
    runtime: FakeRuntime,
    config: HttpConnectionManagerConfig | Callable[[int], HttpConnectionManagerConfig],
    peer: TlsPeer | None,
) -> AsyncIterator[tuple[str, int]]:
    """An HTTP/1.1 connection manager on 127.0.0.1:0 whose connections have `peer` as
    their verified TLS peer (the bytes stay plaintext: TLS itself is not under test).
    `config` may be a function of the listening port."""
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        address = listeners[0].socket.getsockname()[:2]
        built = config(address[1]) if callable(config) else config

        async def handle(stream: trio.SocketStream) -> None:
            remote = stream.socket.getpeername()[:2]
            local = stream.socket.getsockname()[:2]
            scheme = b"http" if peer is None else b"https"
            ctx = HttpContext(built, "listener_0", runtime, remote, local, scheme, peer)
            try:
                await H1Downstream(stream, ctx).run(b"")
            finally:
                await stream.aclose()

        nursery.start_soon(trio.serve_listeners, handle, listeners)
        yield address
        nursery.cancel_scope.cancel()
