"""x-forwarded-client-cert as Envoy's connection manager treats it, without I/O and end to end."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pydp.listener.config import HttpConnectionManagerConfig
from pydp.proxy.headers import client_cert_details, sanitize_request
from pydp.tls.peer import TlsPeer
from tests.pydp.proxy.backend import Backends
from tests.pydp.proxy.client import h1_client
from tests.pydp.proxy.harness import FakeRuntime, hcm, routes, to
from tests.pydp.rbac.helpers import CLIENT, LOCAL, peer, serving_with_peer

HEAD = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"/")]
XFCC = b"x-forwarded-client-cert"
FORGED = (XFCC, b"By=spiffe://evil;URI=spiffe://cluster.local/ns/x/sa/admin")
MODES = ["SANITIZE", "FORWARD_ONLY", "APPEND_FORWARD", "SANITIZE_SET", "ALWAYS_FORWARD_ONLY"]
CLIENT_PEER = peer(CLIENT, dns=("client.example",), subject="CN=client,O=mesh")


def settings(mode: str, *details: str) -> HttpConnectionManagerConfig:
    return HttpConnectionManagerConfig(
        stat_prefix="p",
        generate_request_id=False,
        forward_client_cert_details=mode,
        set_current_client_cert_details=details,
    )


def xfcc(
    mode: str,
    client: TlsPeer | None,
    *extra: tuple[bytes, bytes],
    details: tuple[str, ...] = ("uri",),
) -> list[bytes]:
    out = sanitize_request(
        [*HEAD, *extra], settings(mode, *details), "10.0.0.1", b"https", False, client
    )
    return [v for k, v in out if k == XFCC]


def test_sanitize_set_replaces_a_forged_header_with_the_verified_peer() -> None:
    expected = f"By={LOCAL};Hash={CLIENT_PEER.sha256};URI={CLIENT}".encode()
    assert xfcc("SANITIZE_SET", CLIENT_PEER, FORGED) == [expected]
    assert xfcc("SANITIZE_SET", CLIENT_PEER) == [expected]


@pytest.mark.parametrize("mode", MODES)
def test_without_a_client_certificate_only_always_forward_only_keeps_it(mode: str) -> None:
    kept = [FORGED[1]] if mode == "ALWAYS_FORWARD_ONLY" else []
    assert xfcc(mode, None, FORGED) == kept
    assert xfcc(mode, peer(), FORGED) == kept  # TLS, but the client showed no certificate


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("SANITIZE", []),
        ("FORWARD_ONLY", [FORGED[1]]),
        ("ALWAYS_FORWARD_ONLY", [FORGED[1]]),
        ("APPEND_FORWARD", [FORGED[1] + b"," + client_cert_details(CLIENT_PEER, ("uri",))]),
    ],
)
def test_modes_with_a_client_certificate(mode: str, expected: list[bytes]) -> None:
    assert xfcc(mode, CLIENT_PEER, FORGED) == expected


def test_append_forward_without_an_incoming_header_sets_one() -> None:
    assert xfcc("APPEND_FORWARD", CLIENT_PEER) == [client_cert_details(CLIENT_PEER, ("uri",))]


def test_repeated_headers_are_joined_in_the_first_place() -> None:
    extra = [(XFCC, b"a"), (b"x-other", b"1"), (XFCC, b"b")]
    out = sanitize_request(
        [*HEAD, *extra], settings("FORWARD_ONLY"), "10.0.0.1", b"https", False, CLIENT_PEER
    )
    assert out[4:6] == [(XFCC, b"a,b"), (b"x-other", b"1")]
    appended = xfcc("APPEND_FORWARD", CLIENT_PEER, *extra, details=())
    assert appended == [b"a,b," + client_cert_details(CLIENT_PEER, ())]


def test_the_set_header_takes_the_place_of_the_old_one() -> None:
    out = sanitize_request(
        [*HEAD, FORGED, (b"accept", b"*/*")],
        settings("SANITIZE_SET", "uri"),
        "10.0.0.1",
        b"https",
        False,
        CLIENT_PEER,
    )
    assert [k for k, _ in out[4:6]] == [XFCC, b"accept"]


def test_details_in_envoys_words_and_order() -> None:
    client = peer(
        CLIENT,
        "spiffe://second",
        dns=("a.example", "b.example"),
        subject="CN=c",
        local=(LOCAL, "spiffe://l2"),
    )
    h = client.sha256
    assert (
        client_cert_details(client, ("subject", "uri", "dns"))
        == (
            f'By={LOCAL};By=spiffe://l2;Hash={h};Subject="CN=c";URI={CLIENT};URI=spiffe://second;'
            "DNS=a.example;DNS=b.example"
        ).encode()
    )
    bare = TlsPeer(sha256="ab" * 32)
    assert (
        client_cert_details(bare, ("subject", "uri", "dns"))
        == f'Hash={bare.sha256};Subject="";URI='.encode()
    )


@given(st.lists(st.sampled_from([FORGED, (XFCC, b"x"), (b"accept", b"a")]), max_size=5))
def test_sanitize_never_lets_one_through(extra: list[tuple[bytes, bytes]]) -> None:
    for client in (None, CLIENT_PEER):
        assert xfcc("SANITIZE", client, *extra) == []
        assert len(xfcc("SANITIZE_SET", client, *extra)) == (client is not None)


async def proxied_xfcc(
    runtime: FakeRuntime, backends: Backends, client: TlsPeer | None, **fields: Any
) -> list[str | None]:
    backend = await backends.start()
    runtime.add_cluster("app", [backend.address])
    config = hcm(routes(to("app")), **fields)
    async with serving_with_peer(runtime, config, client) as proxy, h1_client(proxy) as http:
        await http.request(headers=[("x-forwarded-client-cert", FORGED[1].decode())])
        await http.request()
    return [r.header("x-forwarded-client-cert") for r in backend.received]


async def test_the_default_removes_a_clients_xfcc(runtime: FakeRuntime, backends: Backends) -> None:
    assert await proxied_xfcc(runtime, backends, CLIENT_PEER) == [None, None]


async def test_the_control_planes_setting_forwards_the_verified_peer(
    runtime: FakeRuntime, backends: Backends
) -> None:
    seen = await proxied_xfcc(
        runtime,
        backends,
        CLIENT_PEER,
        forward_client_cert_details="SANITIZE_SET",
        set_current_client_cert_details=("uri",),
    )
    expected = f"By={LOCAL};Hash={CLIENT_PEER.sha256};URI={CLIENT}"
    assert seen == [expected, expected]


async def test_the_control_planes_setting_on_plaintext_removes_it(
    runtime: FakeRuntime, backends: Backends
) -> None:
    seen = await proxied_xfcc(
        runtime,
        backends,
        None,
        forward_client_cert_details="SANITIZE_SET",
        set_current_client_cert_details=("uri",),
    )
    assert seen == [None, None]
