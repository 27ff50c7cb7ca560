from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import wrappers_pb2
from hypothesis import given
from hypothesis import strategies as st

from api import contract
from xds_server import wire

names = st.text(min_size=1, max_size=40)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_matches_protobuf(value: int) -> None:
    encoded = wrappers_pb2.UInt64Value(value=value).SerializeToString()
    assert encoded == (b"\x08" + wire.varint(value) if value else b"")


@given(
    version=st.text(max_size=20),
    nonce=st.text(max_size=20),
    cluster_names=st.lists(names, max_size=5),
)
def test_sotw_response_parses_as_protobuf_would_encode_it(
    version: str, nonce: str, cluster_names: list[str]
) -> None:
    clusters = [cluster_pb2.Cluster(name=n) for n in cluster_names]
    payloads = [c.SerializeToString() for c in clusters]
    encoded = wire.sotw_response(
        version,
        contract.TYPE_CLUSTER,
        nonce,
        (wire.sotw_resource(contract.TYPE_CLUSTER, p) for p in payloads),
        wire.control_plane("cp-1", 6),
    )
    parsed = discovery_pb2.DiscoveryResponse.FromString(encoded)
    assert parsed.version_info == version
    assert parsed.nonce == nonce
    assert parsed.type_url == contract.TYPE_CLUSTER
    assert parsed.control_plane.identifier == "cp-1"
    assert [r.type_url for r in parsed.resources] == [contract.TYPE_CLUSTER] * len(clusters)
    unpacked = []
    for r in parsed.resources:
        c = cluster_pb2.Cluster()
        assert r.Unpack(c)
        unpacked.append(c.name)
    assert unpacked == cluster_names


@given(
    resources=st.dictionaries(names, st.text(max_size=10), max_size=5),
    removed=st.lists(names, max_size=5),
)
def test_delta_response_parses(resources: dict[str, str], removed: list[str]) -> None:
    parts = [
        wire.delta_resource(
            contract.TYPE_CLUSTER, n, v, cluster_pb2.Cluster(name=n).SerializeToString()
        )
        for n, v in resources.items()
    ]
    encoded = wire.delta_response(
        "7", contract.TYPE_CLUSTER, "n1", parts, removed, wire.control_plane("cp", 7)
    )
    parsed = discovery_pb2.DeltaDiscoveryResponse.FromString(encoded)
    assert parsed.system_version_info == "7"
    assert parsed.nonce == "n1"
    assert list(parsed.removed_resources) == removed
    assert parsed.control_plane.identifier == "cp"
    assert {r.name: r.version for r in parsed.resources} == resources
    for r in parsed.resources:
        c = cluster_pb2.Cluster()
        assert r.resource.Unpack(c)
        assert c.name == r.name
