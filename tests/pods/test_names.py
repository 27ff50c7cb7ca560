"""Names and addresses of a world, and the objects and hosts file it shows (no system calls)."""

from __future__ import annotations

import ipaddress
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.pods import kube, names
from conformance.pods.kube import PodInfo, PortInfo, ServiceName
from conformance.pods.names import ClusterIPs, WorldNames

LABEL = st.from_regex(r"[a-z]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)


def test_a_world_is_named_for_its_process_and_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw5")
    first, second = WorldNames.new(), WorldNames.new()
    assert first.prefix.startswith(f"xm{os.getpid()}-gw5-")
    assert first.prefix != second.prefix
    assert first.node == f"{first.prefix}-node"
    assert first.pod("reviews-1") == f"{first.prefix}-reviews-1"
    assert names.owner(first.pod("reviews-1")) == os.getpid()
    assert first.subnet.network_address.packed[1] == 128 + 5
    assert first.bridge == str(first.subnet[1])
    assert first.pod_address(0) == str(first.subnet[10])


def test_pod_subnets_stay_out_of_the_service_range() -> None:
    for worker in range(0, 200, 7):
        subnet = ipaddress.IPv4Network(f"10.{128 + worker % 64}.0.0/24")
        assert not subnet.overlaps(names.SERVICE_RANGE)
    assert ipaddress.IPv4Address(names.NOWHERE) in names.SERVICE_RANGE
    assert ipaddress.IPv4Address(names.NOWHERE) not in names.ALLOCATED


def test_a_world_holds_a_bounded_number_of_pods() -> None:
    world = WorldNames("xm1-main-1", ipaddress.IPv4Network("10.128.1.0/24"))
    assert world.pod_address(244) == "10.128.1.254"
    with pytest.raises(ValueError, match="at most 245 pods"):
        world.pod_address(245)


@pytest.mark.parametrize("name", ["xm", "xmabc-1", "other-xm12-1", "/run/netns/xm1-a"])
def test_other_names_are_not_worlds(name: str) -> None:
    assert names.owner(name) is None


def test_cluster_ips_skip_the_claimed() -> None:
    ips = ClusterIPs()
    ips.claim("10.96.128.2")
    assert [ips.allocate(), ips.allocate()] == ["10.96.128.1", "10.96.128.3"]
    assert ips.taken == {"10.96.128.1", "10.96.128.2", "10.96.128.3"}


def test_objects_show_pods_with_addresses_and_services_with_their_pods() -> None:
    pod = PodInfo("reviews-1", "shop", "10.128.0.10", "reviews", {"app": "reviews"})
    assert kube.pod_object(pod)["status"]["podIP"] == "10.128.0.10"
    assert kube.pod_object(pod)["spec"]["serviceAccountName"] == "reviews"
    service, slice_ = kube.service_objects(
        ServiceName("reviews", "shop", "10.96.0.20"),
        [PortInfo("grpc", 9090, 8080, "grpc")],
        [pod],
    )
    assert service["spec"]["clusterIP"] == "10.96.0.20"
    assert service["spec"]["ports"] == [
        {"name": "grpc", "port": 9090, "targetPort": 8080, "appProtocol": "grpc"}
    ]
    assert slice_["metadata"]["labels"] == {kube.SERVICE_NAME_LABEL: "reviews"}
    assert slice_["ports"] == [{"name": "grpc", "port": 8080, "protocol": "TCP"}]
    [endpoint] = slice_["endpoints"]
    assert endpoint["addresses"] == ["10.128.0.10"]
    assert endpoint["targetRef"] == {"kind": "Pod", "name": "reviews-1", "namespace": "shop"}


def test_hosts_file_gives_the_short_name_in_the_pods_namespace_only() -> None:
    pod = PodInfo("client", "default", "10.128.0.11")
    here = ServiceName("reviews", "default", "10.96.0.20")
    there = ServiceName("catalog", "shop", "10.96.0.30")
    text = kube.hosts_file(pod, [there, here])
    assert text.splitlines() == [
        "127.0.0.1 localhost",
        "10.128.0.11 client",
        "10.96.0.20 reviews.default.svc.cluster.local reviews.default.svc reviews.default reviews",
        "10.96.0.30 catalog.shop.svc.cluster.local catalog.shop.svc catalog.shop",
    ]
    assert kube.resolve("catalog", "default", [here, there]) is None
    assert kube.resolve("catalog.shop", "default", [here, there]) == "10.96.0.30"


@given(name=LABEL, namespace=LABEL, other=LABEL)
def test_every_name_in_a_hosts_line_resolves_to_its_cluster_ip(
    name: str, namespace: str, other: str
) -> None:
    service = ServiceName(name, namespace, "10.96.7.7")
    for seen_from in (namespace, other):
        for host in service.names(seen_from):
            assert kube.resolve(host, seen_from, [service]) == "10.96.7.7"
        assert (name in service.names(seen_from)) == (seen_from == namespace)
