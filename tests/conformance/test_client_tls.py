"""The runner's client over TLS, and how it names the ends of a connection before a reply."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import trio

from conformance.client import TLS_REFUSED, TLS_UNTRUSTED, Exchange, send
from conformance.client.http1 import CLOSED_BEFORE_REPLY
from conformance.pods.identities import Issuer, TlsClients, spiffe_id
from tests.harness.net import loopback

SERVER_ID = spiffe_id("cluster.local", "shop", "reviews")
CLIENT_ID = spiffe_id("cluster.local", "default", "frontend")
Handler = Callable[[trio.SocketStream], Awaitable[None]]


def server_context(issuer: Issuer, trusted: Issuer, folder: Path) -> ssl.SSLContext:
    """A server like an inbound listener in STRICT mode: a client certificate is required."""
    cert, key = issuer.issue(SERVER_ID, dt.datetime.now(dt.UTC))
    (folder / "server.pem").write_bytes(cert)
    (folder / "server.key").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=trusted.cert_pem.decode())
    return context


async def serve(nursery: trio.Nursery, handler: Handler) -> tuple[str, int]:
    host = loopback()
    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host=host))
    return host, listeners[0].socket.getsockname()[1]


def tls_echo(context: ssl.SSLContext, hits: list[bytes]) -> Handler:
    async def handle(stream: trio.SocketStream) -> None:
        secure = trio.SSLStream(stream, context, server_side=True, https_compatible=True)
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                data = await secure.receive_some(4096)
                if not data:
                    return
                request += data
            hits.append(request)
            await secure.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        except trio.BrokenResourceError:
            pass
        finally:
            await stream.aclose()

    return handle


async def test_a_client_certificate_of_the_mesh_gets_a_reply(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    mesh = Issuer.new_root("mesh", now)
    clients = TlsClients(tmp_path / "tls", mesh, Issuer.new_root("foreign", now))
    hits: list[bytes] = []
    async with trio.open_nursery() as nursery:
        address = await serve(nursery, tls_echo(server_context(mesh, mesh, tmp_path), hits))
        context = clients.context("mesh", CLIENT_ID, "h1")
        assert clients.context("mesh", CLIENT_ID, "h1") is context  # made once
        reply = await send(Exchange(authority="reviews", timeout=5), address, tls=context)
        nursery.cancel_scope.cancel()
    assert (reply.status, reply.body, reply.error) == (200, b"ok", None)
    assert len(hits) == 1


async def test_a_refused_client_is_one_error_whatever_the_timing(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    mesh = Issuer.new_root("mesh", now)
    clients = TlsClients(tmp_path / "tls", mesh, Issuer.new_root("foreign", now))
    hits: list[bytes] = []
    async with trio.open_nursery() as nursery:
        address = await serve(nursery, tls_echo(server_context(mesh, mesh, tmp_path), hits))
        replies = [
            await send(
                Exchange(authority="reviews", protocol=protocol, timeout=5),
                address,
                tls=clients.context(certificate, CLIENT_ID, protocol),
            )
            for certificate in ("foreign", "none")
            for protocol in ("h1", "h2")
        ]
        nursery.cancel_scope.cancel()
    assert [(r.status, r.error) for r in replies] == [(None, TLS_REFUSED)] * 4
    assert hits == []


async def test_a_server_the_client_does_not_trust(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    mesh, other = Issuer.new_root("mesh", now), Issuer.new_root("other", now)
    clients = TlsClients(tmp_path / "tls", mesh, other)
    hits: list[bytes] = []
    async with trio.open_nursery() as nursery:
        address = await serve(nursery, tls_echo(server_context(other, mesh, tmp_path), hits))
        context = clients.context("mesh", CLIENT_ID, "h1")
        reply = await send(Exchange(authority="reviews", timeout=5), address, tls=context)
        nursery.cancel_scope.cancel()
    assert reply.status is None
    assert reply.error is not None and reply.error.startswith(f"{TLS_UNTRUSTED}: ")
    assert "unable to get local issuer certificate" in reply.error
    assert hits == []


async def test_a_plaintext_server_closing_before_a_reply(tmp_path: Path) -> None:
    async def close_after_reading(stream: trio.SocketStream) -> None:
        await stream.receive_some(4096)
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        address = await serve(nursery, close_after_reading)
        reply = await send(Exchange(authority="reviews", timeout=5), address)
        nursery.cancel_scope.cancel()
    assert (reply.status, reply.error) == (None, CLOSED_BEFORE_REPLY)
