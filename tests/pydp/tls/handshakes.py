"""TLS configs for tests, and a handshake between two contexts in memory."""

from __future__ import annotations

import ssl

from pydp.tls.config import ClientTlsConfig, CommonTls, ServerTlsConfig
from pydp.tls.san import SanMatcher, StringMatch

MESH_PREFIX = (SanMatcher("URI", StringMatch("prefix", "spiffe://cluster.local/")),)


def server_config(
    require: bool = True,
    sans: tuple[SanMatcher, ...] = MESH_PREFIX,
    alpn: tuple[str, ...] = ("h2", "http/1.1"),
) -> ServerTlsConfig:
    """The inbound chain's `DownstreamTlsContext` as the control plane writes it."""
    return ServerTlsConfig(CommonTls("default", "ROOTCA", sans, alpn), require)


def client_config(
    peer: str = "spiffe://cluster.local/ns/shop/sa/server",
    alpn: tuple[str, ...] = ("http/1.1",),
    sni: str = "outbound_.80_._.server.shop.svc.cluster.local",
) -> ClientTlsConfig:
    """A mesh cluster's `UpstreamTlsContext` as the control plane writes it."""
    sans = (SanMatcher("URI", StringMatch("exact", peer)),) if peer else ()
    return ClientTlsConfig(CommonTls("default", "ROOTCA", sans, alpn), sni)


def handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, sni: str | None = None
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Run a handshake between the two contexts in memory; raises `ssl.SSLError`."""
    to_server, from_server = ssl.MemoryBIO(), ssl.MemoryBIO()
    to_client, from_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    s = server.wrap_bio(to_server, from_server, server_side=True)
    c = client.wrap_bio(to_client, from_client, server_hostname=sni)
    done: set[str] = set()
    for _ in range(20):
        for name, side in (("client", c), ("server", s)):
            if name in done:
                continue
            try:
                side.do_handshake()
                done.add(name)
            except ssl.SSLWantReadError:
                pass
        to_server.write(from_client.read())
        to_client.write(from_server.read())
        if len(done) == 2:
            return s, c
    raise AssertionError("the handshake did not finish")
