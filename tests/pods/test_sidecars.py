"""Pods calling Services through their sidecars, as in a cluster: no proxy in the client.

A client pod's application calls a Service by name and by ClusterIP; the
capture hands the connection to the client's sidecar, which routes on the
Host and sends it to the server pod, whose capture hands it to the server's
sidecar, which forwards to the application on the pod's loopback. Every
pairing of Envoy and pydp.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from conformance.pods.bed import Bed, echo_command, open_bed
from conformance.pods.kube import PortInfo
from tests.pods.support import fetch, require_pods, stat

# What a sidecar may add to a request on its way (Envoy's router and connection manager).
SIDECAR_HEADERS = {"x-forwarded-proto", "x-request-id", "x-envoy-expected-rq-timeout-ms"}
PAIRINGS = [("envoy", "envoy"), ("envoy", "pydp"), ("pydp", "envoy"), ("pydp", "pydp")]


@pytest.fixture(autouse=True)
def _pods() -> None:
    require_pods()


async def mesh(bed: Bed, client_dataplane: str, server_dataplane: str) -> None:
    server = bed.add_pod("reviews-1", labels={"app": "reviews"}, service_account="reviews")
    client = bed.add_pod("client")
    bed.add_service("reviews", [server], [PortInfo("http", 9080, 9080)], cluster_ip="10.96.0.20")
    await bed.publish()
    await bed.start_app(server, echo_command("reviews-1", [9080]), port=9080)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: bed.start_sidecar(server, server_dataplane, app_port=9080))
        nursery.start_soon(lambda: bed.start_sidecar(client, client_dataplane))


@pytest.mark.parametrize(("client_dataplane", "server_dataplane"), PAIRINGS)
async def test_a_service_by_name_and_by_cluster_ip(
    tmp_path: Path, client_dataplane: str, server_dataplane: str
) -> None:
    with trio.fail_after(90):
        async with open_bed(tmp_path) as bed:
            await mesh(bed, client_dataplane, server_dataplane)
            client, server = bed.pods["client"], bed.pods["reviews-1"]
            urls = {
                "reviews:9080": "http://reviews:9080/hello?x=1",
                "reviews.default.svc.cluster.local:9080": (
                    "http://reviews.default.svc.cluster.local:9080/hello?x=1"
                ),
                "10.96.0.20:9080": "http://10.96.0.20:9080/hello?x=1",
            }
            for authority, url in urls.items():
                got = await fetch(bed, client, url, "x-app: yes")
                assert got.get("status") == 200, got
                assert got["headers"]["x-echo-backend"] == ["reviews-1"]
                seen = json.loads(got["body"])
                assert (seen["method"], seen["path"], seen["query"]) == ("GET", "/hello", "x=1")
                assert seen["authority"] == authority
                assert seen["address"] == "127.0.0.1:9080"  # the app's loopback, by the sidecar
                assert seen["headers"]["x-app"] == ["yes"]
                assert seen["headers"]["accept-encoding"] == ["identity"]
                added = set(seen["headers"]) - {"host", "accept-encoding", "x-app"}
                assert added <= SIDECAR_HEADERS, added
                assert "x-forwarded-proto" in added
            outbound = stat(await bed.admin(client, "/stats"), "http.outbound.downstream_rq_2xx")
            inbound = stat(await bed.admin(server, "/stats"), "http.inbound.downstream_rq_2xx")
            assert (outbound, inbound) == (3, 3)


async def test_capture_is_transparent_and_ports_can_be_excluded(tmp_path: Path) -> None:
    with trio.fail_after(90):
        async with open_bed(tmp_path) as bed:
            server = bed.add_pod("reviews-1", labels={"app": "reviews"})
            client = bed.add_pod("client")
            bed.add_service("reviews", [server], [PortInfo("http", 9080, 9080)])
            await bed.publish()
            await bed.start_app(server, echo_command("reviews-1", [9080]), port=9080)
            direct = echo_command("direct", [9999])
            direct[direct.index("127.0.0.1:9999")] = "0.0.0.0:9999"
            await bed.start_app(server, direct, name="direct", port=9999)
            await bed.start_sidecar(server, "envoy", app_port=9080, exclude_inbound_ports=[9999])
            await bed.start_sidecar(client, "envoy", exclude_outbound_ports=[9999])

            rules = (await bed.exec(client, ["iptables", "-t", "nat", "-S"])).stdout
            assert "-A XDSMESH_OUTPUT -m owner --uid-owner 1337 -j RETURN" in rules
            assert "-A XDSMESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001" in rules

            # A pod address is no Service: the client's sidecar has no route for it.
            got = await fetch(bed, client, f"http://{server.address}:9080/")
            assert got["status"] == 404
            assert got["headers"]["server"] == ["envoy"]
            # A name nothing resolves is an error of the client's own, before any connection.
            assert "error" in await fetch(bed, client, "http://nothing.default:9080/")
            # An excluded port goes straight to the application, no sidecar on either side.
            got = await fetch(bed, client, f"http://{server.address}:9999/")
            seen = json.loads(got["body"])
            assert seen["name"] == "direct" and seen["address"] == f"{server.address}:9999"
            assert "x-request-id" not in seen["headers"] and "server" not in got["headers"]


async def test_with_a_ca_the_pods_speak_mtls_as_their_service_accounts(tmp_path: Path) -> None:
    with trio.fail_after(90):
        async with open_bed(tmp_path, ca_dir=tmp_path / "ca") as bed:
            server = bed.add_pod("reviews-1", labels={"app": "reviews"}, service_account="reviews")
            client = bed.add_pod("client", service_account="frontend")
            bed.add_service("reviews", [server], [PortInfo("http", 9080, 9080)])
            await bed.publish()
            await bed.start_app(server, echo_command("reviews-1", [9080]), port=9080)
            await bed.start_sidecar(server, "envoy", app_port=9080)
            await bed.start_sidecar(client, "envoy")
            got = await fetch(
                bed, client, "http://reviews:9080/", "x-forwarded-client-cert: forged"
            )
            assert got["status"] == 200, got
            [xfcc] = json.loads(got["body"])["headers"]["x-forwarded-client-cert"]
            fields = dict(part.split("=", 1) for part in xfcc.split(";"))
            assert fields["By"] == "spiffe://cluster.local/ns/default/sa/reviews"
            assert fields["URI"] == "spiffe://cluster.local/ns/default/sa/frontend"
