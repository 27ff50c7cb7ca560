"""pydp originates mTLS to a cluster's endpoints: ALPN, SAN checks, Envoy's connect failure."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from pydp.listener.config import TcpProxyConfig
from pydp.tls.contexts import TlsContexts
from pydp.tls.files import SecretFiles
from tests.pydp.proxy.backend import Backend, echo
from tests.pydp.proxy.client import h1_client, h1_request
from tests.pydp.proxy.harness import H2_OPTIONS, FakeRuntime, hcm, routes, serving, to
from tests.pydp.tls.handshakes import server_config
from tests.pydp.tls.pki import Pki, secrets

MESH = Pki()
SERVER_ID = "spiffe://cluster.local/ns/shop/sa/server"
CLIENT_ID = "spiffe://cluster.local/ns/shop/sa/client"
CONNECT_FAILURE = (
    "upstream connect error or disconnect/reset before headers. "
    "reset reason: remote connection failure"
)
ADS: dict[str, Any] = {"ads": {}}


def upstream_tls(peer: str = SERVER_ID, alpn: tuple[str, ...] = ("http/1.1",)) -> dict[str, Any]:
    """The `transport_socket` the control plane gives a mesh cluster."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
            "UpstreamTlsContext",
            "common_tls_context": {
                "tls_certificate_sds_secret_configs": [{"name": "default", "sds_config": ADS}],
                "combined_validation_context": {
                    "default_validation_context": {
                        "match_typed_subject_alt_names": [
                            {"san_type": "URI", "matcher": {"exact": peer}}
                        ]
                    },
                    "validation_context_sds_secret_config": {"name": "ROOTCA", "sds_config": ADS},
                },
                "alpn_protocols": list(alpn),
            },
            "sni": "outbound_.80_._.server.shop.svc.cluster.local",
        },
    }


class TlsBackend(Backend):
    """A `Backend` behind TLS that requires a client certificate and notes each one's hash."""

    def __init__(self, tls: TlsContexts, protocol: str = "h1", handler: Any = echo) -> None:
        super().__init__(handler, protocol)
        self.context = tls.server(server_config(sans=())).ssl_context
        self.clients: list[str] = []
        self.server_names: list[str | None] = []

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host=self.host)
        self.address = listeners[0].socket.getsockname()[:2]
        task_status.started()
        await trio.serve_listeners(self._tls_connection, listeners)

    async def _tls_connection(self, stream: trio.SocketStream) -> None:
        names: list[str | None] = []
        self.context.sni_callback = lambda _, name, __: names.append(name)
        tls = trio.SSLStream(stream, self.context, server_side=True, https_compatible=True)
        try:
            await tls.do_handshake()
        except trio.BrokenResourceError:
            await trio.aclose_forcefully(stream)
            return
        self.server_names += names
        self.clients.append(hashlib.sha256(tls.getpeercert(binary_form=True) or b"").hexdigest())
        await self._connection(tls)  # type: ignore[arg-type]


def contexts(tmp_path: Path, name: str, pki: Pki, uri: str) -> TlsContexts:
    folder = tmp_path / name
    folder.mkdir()
    tls = TlsContexts(SecretFiles(str(folder)))
    tls.update(secrets(pki.leaf(uris=(uri,)), MESH))
    return tls


@pytest.fixture
async def mesh(
    runtime: FakeRuntime, tmp_path: Path
) -> AsyncIterator[tuple[FakeRuntime, TlsContexts, trio.Nursery]]:
    runtime.pools.tls = contexts(tmp_path, "proxy", MESH, CLIENT_ID)
    async with trio.open_nursery() as nursery:
        yield runtime, runtime.pools.tls, nursery
        nursery.cancel_scope.cancel()


async def start(nursery: trio.Nursery, backend: TlsBackend) -> TlsBackend:
    await nursery.start(backend.serve)
    return backend


async def test_requests_travel_over_mtls_with_the_proxys_certificate(
    mesh: tuple[FakeRuntime, TlsContexts, trio.Nursery], tmp_path: Path
) -> None:
    runtime, _, nursery = mesh
    backend = await start(nursery, TlsBackend(contexts(tmp_path, "b", MESH, SERVER_ID)))
    runtime.add_cluster("mesh", [backend.address], transport_socket=upstream_tls())
    async with serving(runtime, hcm(routes(to("mesh")))) as proxy, h1_client(proxy) as client:
        first = await client.request(path="/one")
        second = await client.request(path="/two")
    assert (first.status, second.status) == (200, 200)
    assert [r.path for r in backend.received] == ["/one", "/two"]
    assert len(backend.clients) == 1  # one connection, kept for the second request
    assert backend.server_names == ["outbound_.80_._.server.shop.svc.cluster.local"]
    assert runtime.counter("cluster.mesh.ssl.handshake") == 1
    assert runtime.counter("cluster.mesh.ssl.versions.TLSv1.2") == 1
    assert runtime.counter("cluster.mesh.upstream_cx_total") == 1


async def test_an_http2_cluster_offers_h2_and_speaks_it(
    mesh: tuple[FakeRuntime, TlsContexts, trio.Nursery], tmp_path: Path
) -> None:
    runtime, _, nursery = mesh
    backend = await start(nursery, TlsBackend(contexts(tmp_path, "b", MESH, SERVER_ID), "h2"))
    runtime.add_cluster(
        "mesh", [backend.address], transport_socket=upstream_tls(alpn=("h2",)), **H2_OPTIONS
    )
    async with serving(runtime, hcm(routes(to("mesh")))) as proxy:
        answer = await h1_request(proxy, path="/h2")
    assert answer.status == 200
    assert backend.received[0].protocol == "HTTP/2"


@pytest.mark.parametrize(
    ("server_pki", "expected_peer", "stat"),
    [
        (MESH, "spiffe://cluster.local/ns/shop/sa/api", "fail_verify_san"),
        (Pki("other.example"), SERVER_ID, "fail_verify_error"),
    ],
)
async def test_a_refused_server_is_envoys_connect_failure(
    mesh: tuple[FakeRuntime, TlsContexts, trio.Nursery],
    tmp_path: Path,
    server_pki: Pki,
    expected_peer: str,
    stat: str,
) -> None:
    runtime, _, nursery = mesh
    backend = await start(nursery, TlsBackend(contexts(tmp_path, "b", server_pki, SERVER_ID)))
    runtime.add_cluster("mesh", [backend.address], transport_socket=upstream_tls(expected_peer))
    async with serving(runtime, hcm(routes(to("mesh")))) as proxy:
        answer = await h1_request(proxy)
    assert answer.status == 503
    assert answer.body.decode() == CONNECT_FAILURE
    assert runtime.entries[0][1].response_flags == "UF"
    assert runtime.counter("cluster.mesh.upstream_cx_connect_fail") == 1
    assert runtime.counter(f"cluster.mesh.ssl.{stat}") == 1
    assert runtime.counter("cluster.mesh.ssl.handshake") == 0
    assert backend.received == []


async def test_new_connections_use_a_rotated_certificate(
    mesh: tuple[FakeRuntime, TlsContexts, trio.Nursery], tmp_path: Path
) -> None:
    runtime, tls, nursery = mesh
    backend = await start(nursery, TlsBackend(contexts(tmp_path, "b", MESH, SERVER_ID)))
    runtime.add_cluster(
        "mesh",
        [backend.address],
        transport_socket=upstream_tls(),
        max_requests_per_connection=1,  # a new connection for each request
    )
    async with serving(runtime, hcm(routes(to("mesh")))) as proxy:
        before = await h1_request(proxy)
        tls.update(secrets(MESH.leaf(uris=(CLIENT_ID,)), MESH))
        after = await h1_request(proxy)
    assert (before.status, after.status) == (200, 200)
    assert len(backend.clients) == 2
    assert backend.clients[0] != backend.clients[1]


async def test_a_proxy_without_tls_contexts_fails_to_connect_rather_than_send_plaintext(
    runtime: FakeRuntime, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        backend = await start(nursery, TlsBackend(contexts(tmp_path, "b", MESH, SERVER_ID)))
        runtime.add_cluster("mesh", [backend.address], transport_socket=upstream_tls())
        async with serving(runtime, hcm(routes(to("mesh")))) as proxy:
            answer = await h1_request(proxy)
        nursery.cancel_scope.cancel()
    assert answer.status == 503
    assert runtime.counter("cluster.mesh.upstream_cx_connect_fail") == 1
    assert backend.clients == []


async def test_the_tcp_proxy_originates_tls_too(
    mesh: tuple[FakeRuntime, TlsContexts, trio.Nursery], tmp_path: Path
) -> None:
    runtime, _, nursery = mesh
    backend = await start(nursery, TlsBackend(contexts(tmp_path, "b", MESH, SERVER_ID)))
    runtime.add_cluster("mesh", [backend.address], transport_socket=upstream_tls())
    async with serving(runtime, TcpProxyConfig("tcp", "mesh")) as proxy:
        answer = await h1_request(proxy, path="/through")
    assert answer.status == 200
    assert backend.received[0].path == "/through"
    assert runtime.counter("cluster.mesh.ssl.handshake") == 1
