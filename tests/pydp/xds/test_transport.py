"""The xDS client end to end over real gRPC, against a grpc.aio server on loopback."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import trio
from envoy.service.discovery.v3 import discovery_pb2
from hypothesis import given
from hypothesis import strategies as st

from pydp.errors import ConfigError
from pydp.xds.bootstrap import BootstrapConfig
from pydp.xds.client import XdsClient
from pydp.xds.store import ConfigStore
from pydp.xds.transport import (
    ADS_METHOD,
    UNAVAILABLE,
    GrpcError,
    MessageReader,
    frame,
    open_grpc_stream,
)
from tests.pydp.xds.builders import CDS, EDS, LDS, assignment, delta, eds_cluster, node, sotw
from tests.pydp.xds.fake_ads import FakeAdsServer


@pytest.fixture
def server() -> Iterator[FakeAdsServer]:
    with FakeAdsServer() as fake:
        yield fake


def no_bad_clusters(resources: Mapping[str, Any]) -> Mapping[str, Any]:
    for name in resources:
        if name.startswith("bad"):
            raise ConfigError(f"Cluster {name}", "type", "rejected by the test")
    return dict(resources)


def client_for(port: int, *, delta_: bool = False) -> XdsClient:
    config = BootstrapConfig(
        node=node(),
        xds_host="127.0.0.1",
        xds_port=port,
        delta=delta_,
        node_on_first_message_only=True,
        backoff_base=0.01,
        backoff_max=0.05,
        initial_fetch_timeout=0,
    )
    return XdsClient(config, ConfigStore({CDS: no_bad_clusters}))


async def test_sotw_ack_nack_and_reconnect(server: FakeAdsServer) -> None:
    client = client_for(server.port)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        (s, cds), (_, lds) = await server.requests(2)
        assert (s, cds.type_url, lds.type_url, cds.node.id) == (1, CDS, LDS, "app-1.default")

        server.push(sotw(CDS, "1", "n1", [eds_cluster("a")]))
        (_, ack), (_, eds) = await server.requests(2)
        assert (ack.type_url, ack.version_info, ack.response_nonce) == (CDS, "1", "n1")
        assert (eds.type_url, list(eds.resource_names)) == (EDS, ["a"])
        server.push(sotw(EDS, "e1", "n2", [assignment("a")]))
        (_, ack) = await server.request()
        assert (ack.version_info, ack.response_nonce) == ("e1", "n2")
        assert "a" in client.store.snapshot.clusters

        server.push(sotw(CDS, "2", "n3", [eds_cluster("a"), eds_cluster("bad")]))
        (_, nack) = await server.request()
        assert (nack.version_info, nack.response_nonce) == ("1", "n3")
        assert nack.error_detail.code == 13
        assert nack.error_detail.message == "Cluster bad: type: rejected by the test"

        server.drop()
        resent = {r.type_url: (s, r) for s, r in await server.requests(3)}
        assert {s for s, _ in resent.values()} == {2}
        assert (resent[CDS][1].version_info, resent[CDS][1].response_nonce) == ("1", "")
        assert (resent[EDS][1].version_info, list(resent[EDS][1].resource_names)) == ("e1", ["a"])
        assert "a" in client.store.snapshot.clusters  # served all along
        assert isinstance(client.last_error, GrpcError)
        assert client.last_error.code == UNAVAILABLE
        nursery.cancel_scope.cancel()
    assert await server.wait_closed(2)
    assert not client.connected


async def test_delta_resumes_with_initial_resource_versions(server: FakeAdsServer) -> None:
    client = client_for(server.port, delta_=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        (_, cds), (_, lds) = await server.requests(2)
        assert (cds.type_url, lds.type_url) == (CDS, LDS)
        server.push(delta(CDS, "n1", [("a", "7", eds_cluster("a"))]))
        (_, ack), (_, eds) = await server.requests(2)
        assert (ack.response_nonce, list(eds.resource_names_subscribe)) == ("n1", ["a"])
        server.push(delta(EDS, "n2", [("a", "3", assignment("a"))]))
        await server.request()
        server.push(delta(CDS, "n3", [("bad", "1", eds_cluster("bad"))]))
        (_, nack) = await server.request()
        assert (nack.response_nonce, nack.error_detail.code) == ("n3", 13)

        server.drop()
        resent = {r.type_url: r for _, r in await server.requests(3)}
        assert dict(resent[CDS].initial_resource_versions) == {"a": "7"}
        assert dict(resent[EDS].initial_resource_versions) == {"a": "3"}
        assert list(resent[EDS].resource_names_subscribe) == ["a"]
        nursery.cancel_scope.cancel()


async def test_initialized_event_is_set_once_config_is_warm(server: FakeAdsServer) -> None:
    client = client_for(server.port)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        await server.requests(2)
        server.push(sotw(CDS, "1", "n1", []))
        server.push(sotw(LDS, "1", "n2", []))
        with trio.fail_after(10):
            await client.initialized.wait()
        assert client.store.initialized
        nursery.cancel_scope.cancel()


async def test_large_request_waits_for_flow_control(server: FakeAdsServer) -> None:
    request = discovery_pb2.DiscoveryRequest(
        type_url=EDS,
        resource_names=[f"outbound|8080||svc-{i}.ns.svc.cluster.local" for i in range(40_000)],
    )
    assert request.ByteSize() > 1_000_000
    async with await open_grpc_stream("127.0.0.1", server.port, ADS_METHOD) as stream:
        await stream.send(request.SerializeToString())
        (_, got) = await server.request()
        assert len(got.resource_names) == 40_000
        server.drop()
        with pytest.raises(GrpcError, match="dropped by the test") as caught:
            await stream.receive()
        assert caught.value.code == UNAVAILABLE


async def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        port = sock.getsockname()[1]
        with pytest.raises(GrpcError, match=f"cannot connect to 127.0.0.1:{port}") as caught:
            await open_grpc_stream("127.0.0.1", port, ADS_METHOD)
    assert caught.value.code == UNAVAILABLE


@given(
    messages=st.lists(st.binary(max_size=300), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=10),
)
def test_message_reader_reassembles_any_split(messages: list[bytes], cuts: list[int]) -> None:
    data = b"".join(frame(m) for m in messages)
    points = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    reader = MessageReader()
    out = []
    for start, end in itertools.pairwise(points):
        out.extend(reader.feed(data[start:end]))
    assert out == messages
    assert not reader.partial


def test_message_reader_rejects_compression_and_oversize() -> None:
    with pytest.raises(GrpcError, match="compressed"):
        MessageReader().feed(b"\x01\x00\x00\x00\x01x")
    with pytest.raises(GrpcError, match="exceeds the 10 limit") as caught:
        MessageReader(max_message=10).feed(b"\x00\x00\x00\x01\x00")
    assert caught.value.code == 8
