"""The inbound listener end to end: mTLS terminated, HTTP/1.1 and h2 by ALPN, the peer passed on."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from pydp.listener.compile import compile_listener
from pydp.listener.config import ListenerConfig
from pydp.listener.manager import ListenerManager
from pydp.stats import Stats
from pydp.tls.contexts import TlsContexts
from pydp.tls.files import SecretFiles
from pydp.tls.handshake import originate
from pydp.tls.stream import TlsStream
from tests.harness.net import loopback
from tests.pydp.listener.test_manager import added
from tests.pydp.proxy.backend import Backend, Backends
from tests.pydp.proxy.client import H1Client, H2Client
from tests.pydp.proxy.harness import FakeRuntime, routes, to
from tests.pydp.tls.handshakes import client_config
from tests.pydp.tls.pki import Pki, secrets
from xds_server.translate.listeners import inbound_listener

MESH = Pki()
SERVER_ID = "spiffe://cluster.local/ns/shop/sa/server"
CLIENT_ID = "spiffe://cluster.local/ns/shop/sa/client"


@dataclasses.dataclass
class Inbound:
    app: Backend
    runtime: FakeRuntime
    config: ListenerConfig
    address: tuple[str, int]
    client_tls: TlsContexts

    async def tls(self, alpn: str) -> TlsStream:
        context = self.client_tls.client(client_config(SERVER_ID, alpn=(alpn,)), "")
        raw = await trio.open_tcp_stream(*self.address)
        return await originate(raw, context, Stats(), "client.")


@pytest.fixture
async def inbound(
    runtime: FakeRuntime, backends: Backends, tmp_path: Path, nursery: trio.Nursery
) -> AsyncIterator[Inbound]:
    app = await backends.start()
    runtime.add_cluster("app", [app.address])
    runtime.routes["inbound"] = routes(to("app"))
    for name in ("server", "client"):
        (tmp_path / name).mkdir()
    server_tls = TlsContexts(SecretFiles(str(tmp_path / "server")))
    server_tls.update(secrets(MESH.leaf(uris=(SERVER_ID,)), MESH))
    client_tls = TlsContexts(SecretFiles(str(tmp_path / "client")))
    client_tls.update(secrets(MESH.leaf(uris=(CLIENT_ID,)), MESH))
    manager = ListenerManager(runtime, drain_time=1.0, tls=server_tls)
    await nursery.start(manager.run)
    config = dataclasses.replace(
        compile_listener(inbound_listener(15006, "PERMISSIVE")), address=loopback(), port=0
    )
    manager.update(added(config))
    active = manager.listener(config.name)
    assert active is not None
    yield Inbound(app, runtime, config, (config.address, active.port), client_tls)


async def test_http1_over_mtls_reaches_the_app_with_the_callers_identity(inbound: Inbound) -> None:
    stream = await inbound.tls("http/1.1")
    async with stream:
        answer = await H1Client(stream).request(  # type: ignore[arg-type]
            headers=[("x-forwarded-client-cert", "URI=spiffe://forged")]
        )
    assert answer.status == 200
    xfcc = inbound.app.received[0].header("x-forwarded-client-cert") or ""
    assert f"URI={CLIENT_ID}" in xfcc  # what the listener verified reached the request
    assert "forged" not in xfcc
    assert inbound.app.received[0].header("x-forwarded-proto") == "https"
    stats = inbound.runtime.stats.counters
    assert stats["http.inbound.downstream_cx_ssl_total"] == 1
    assert stats["http.inbound.downstream_cx_http1_total"] == 1


async def test_h2_is_chosen_by_alpn(inbound: Inbound) -> None:
    stream = await inbound.tls("h2")
    client = H2Client(stream)  # type: ignore[arg-type]
    async with stream, trio.open_nursery() as nursery:
        await nursery.start(client.run)
        answer = await client.request()
        nursery.cancel_scope.cancel()
    assert answer.status == 200
    assert inbound.runtime.stats.counters["http.inbound.downstream_cx_http2_total"] == 1


async def test_plaintext_still_works_in_permissive_mode(inbound: Inbound) -> None:
    async with await trio.open_tcp_stream(*inbound.address) as stream:
        answer = await H1Client(stream).request()
    assert answer.status == 200
    assert inbound.runtime.stats.counters["http.inbound.downstream_cx_ssl_total"] == 0
