"""Handshakes on trio streams: the verified peer, and Envoy's `ssl.*` counters for each outcome."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from pydp.stats import Stats
from pydp.tls.contexts import ClientContext, ServerContext, TlsContexts
from pydp.tls.files import SecretFiles
from pydp.tls.handshake import TlsFailure, accept, originate
from pydp.tls.stream import TlsStream
from tests.pydp.tls.handshakes import client_config, server_config
from tests.pydp.tls.pki import Leaf, Pki, secrets

MESH = Pki()
OTHER = Pki("other.example")
SERVER_ID = "spiffe://cluster.local/ns/shop/sa/server"
CLIENT_ID = "spiffe://cluster.local/ns/shop/sa/client"
SERVER = "listener.0.0.0.0_15006.ssl."
CLIENT = "cluster.outbound|80||server.ssl."


def contexts(tmp_path: Path, name: str, leaf_pki: Pki, uri: str) -> TlsContexts:
    folder = tmp_path / name
    folder.mkdir()
    tls = TlsContexts(SecretFiles(str(folder)))
    leaf = leaf_pki.leaf(uris=(uri,))
    tls.update(secrets(leaf, MESH))
    return tls


async def both(
    server: ServerContext | ssl.SSLContext, client: ClientContext | ssl.SSLContext
) -> tuple[Stats, Any, Any]:
    """Run `accept` and `originate` (or a bare `ssl` side) against each other."""
    stats = Stats()
    server_end, client_end = trio.testing.memory_stream_pair()
    results: dict[str, Any] = {}

    async def run(name: str, side: Any) -> None:
        end = server_end if name == "server" else client_end
        try:
            results[name] = await side
        except (TlsFailure, trio.BrokenResourceError) as exc:
            results[name] = exc
            await trio.aclose_forcefully(end)
        else:
            if name == "server":  # done: let a bare client's last read end
                await trio.aclose_forcefully(end)

    async def bare(stream: trio.abc.Stream, context: ssl.SSLContext, server_side: bool) -> Any:
        tls = trio.SSLStream(stream, context, server_side=server_side)
        await tls.do_handshake()
        await tls.send_all(b"x")  # a TLS 1.3 client learns of a refusal on its next exchange
        await tls.receive_some()
        return tls

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            if isinstance(server, ServerContext):
                nursery.start_soon(run, "server", accept(server_end, server, stats, SERVER))
            else:
                nursery.start_soon(run, "server", bare(server_end, server, True))
            if isinstance(client, ClientContext):
                nursery.start_soon(run, "client", originate(client_end, client, stats, CLIENT))
            else:
                nursery.start_soon(run, "client", bare(client_end, client, False))
    return stats, results["server"], results["client"]


def counted(stats: Stats, prefix: str) -> dict[str, int]:
    return {k.removeprefix(prefix): v for k, v in stats.counters.items() if k.startswith(prefix)}


def bare_client(tmp_path: Path, leaf: Leaf | None) -> ssl.SSLContext:
    """A plain `ssl` client (TLS 1.3), with `leaf` as its certificate if given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if leaf is not None:
        (tmp_path / "c.pem").write_bytes(leaf.chain_pem)
        (tmp_path / "k.pem").write_bytes(leaf.key_pem)
        context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    return context


async def test_mesh_peers_verify_each_other(tmp_path: Path) -> None:
    server = contexts(tmp_path, "s", MESH, SERVER_ID).server(server_config())
    client = contexts(tmp_path, "c", MESH, CLIENT_ID).client(client_config(), "")
    stats, (_, peer), tls = await both(server, client)
    assert isinstance(tls, TlsStream)
    assert tls.selected_alpn_protocol() == "http/1.1"
    assert peer.uri_sans == (CLIENT_ID,)
    assert peer.local_uri_sans == (SERVER_ID,)
    assert peer.authenticated
    assert len(peer.sha256) == 64
    cipher = tls.cipher()
    assert cipher is not None
    assert counted(stats, SERVER) == {
        "handshake": 1,
        "versions.TLSv1.2": 1,
        f"ciphers.{cipher[0]}": 1,
    }
    assert counted(stats, CLIENT)["handshake"] == 1


async def test_the_peer_hash_is_the_sha256_of_the_client_certificate(tmp_path: Path) -> None:
    server = contexts(tmp_path, "s", MESH, SERVER_ID).server(server_config())
    leaf = MESH.leaf(uris=(CLIENT_ID,))
    _, (_, peer), _ = await both(server, bare_client(tmp_path, leaf))
    assert peer.sha256 == hashlib.sha256(leaf.der).hexdigest()


@pytest.mark.parametrize(
    ("client_pki", "uri", "expected"),
    [
        (None, CLIENT_ID, {"connection_error": 1, "fail_verify_no_cert": 1}),
        (OTHER, CLIENT_ID, {"fail_verify_error": 1}),
        (MESH, "spiffe://other.example/ns/shop/sa/client", {"fail_verify_san": 1}),
    ],
)
async def test_a_server_refuses_clients_as_envoy_counts_them(
    tmp_path: Path, client_pki: Pki | None, uri: str, expected: dict[str, int]
) -> None:
    server = contexts(tmp_path, "s", MESH, SERVER_ID).server(server_config())
    leaf = client_pki.leaf(uris=(uri,)) if client_pki is not None else None
    stats, refused, _ = await both(server, bare_client(tmp_path, leaf))
    assert isinstance(refused, TlsFailure)
    assert counted(stats, SERVER) == expected
    assert refused.stats == tuple(expected)


async def test_without_a_required_certificate_the_client_is_anonymous(tmp_path: Path) -> None:
    server = contexts(tmp_path, "s", MESH, SERVER_ID).server(server_config(require=False))
    stats, (_, peer), _ = await both(server, bare_client(tmp_path, None))
    assert not peer.authenticated
    assert peer.local_uri_sans == (SERVER_ID,)
    assert counted(stats, SERVER)["no_certificate"] == 1


@pytest.mark.parametrize(
    ("server_pki", "expected_peer", "expected"),
    [
        (MESH, "spiffe://cluster.local/ns/shop/sa/api", {"fail_verify_san": 1}),
        (OTHER, SERVER_ID, {"fail_verify_error": 1}),
    ],
)
async def test_a_client_refuses_servers_as_envoy_counts_them(
    tmp_path: Path, server_pki: Pki, expected_peer: str, expected: dict[str, int]
) -> None:
    server = contexts(tmp_path, "s", server_pki, SERVER_ID).server(server_config())
    client = contexts(tmp_path, "c", MESH, CLIENT_ID).client(client_config(expected_peer), "")
    stats, _, refused = await both(server, client)
    assert isinstance(refused, TlsFailure)
    assert counted(stats, CLIENT) == expected
