"""Two sidecars in a mesh with a real xds-server and its CA, for the mTLS tests.

The client's sidecar (its outbound listener) calls the Service `server.shop`,
whose one endpoint is the server's sidecar (its inbound listener on a
loopback address, in front of an echo backend on 127.0.0.1), with a
targetRef to the Pod `server-1` (service account `server`): the Service is
in the mesh, so the client originates mTLS to it, expecting the server's
SPIFFE ID. Each sidecar is stock Envoy or pydp (`open_mesh`).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import ssl
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tests.harness import manifests
from tests.harness.backends import EchoServer, echo_backends
from tests.harness.net import free_port, loopback, wait_until
from tests.harness.procs import ControlPlane, control_plane, envoy
from tests.harness.pydp_proc import pydp
from xds_server.ca.authority import Authority
from xds_server.ca.store import DirectoryFiles, load_authority
from xds_server.ca.workloads import Issued

HOST = "server.shop.svc.cluster.local"
CLUSTER = f"outbound|80||{HOST}"
CLIENT_ID = "spiffe://cluster.local/ns/shop/sa/client"
SERVER_ID = "spiffe://cluster.local/ns/shop/sa/server"
SECURITY = "security.xdsmesh.io/v1alpha1"


def mesh_objects(address: str, inbound_port: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "server", "namespace": "shop"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "server-1",
                "namespace": "shop",
                "labels": {"kubernetes.io/service-name": "server"},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": inbound_port}],
            "endpoints": [
                {
                    "addresses": [address],
                    "conditions": {"ready": True},
                    "targetRef": {"kind": "Pod", "name": "server-1", "namespace": "shop"},
                }
            ],
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "server-1", "namespace": "shop", "labels": {"app": "server"}},
            "spec": {"serviceAccountName": "server"},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "client-1", "namespace": "shop", "labels": {"app": "client"}},
            "spec": {"serviceAccountName": "client"},
        },
    ]


def peer_authentication(mode: str) -> dict[str, Any]:
    return {
        "apiVersion": SECURITY,
        "kind": "PeerAuthentication",
        "metadata": {"name": "server", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "server"}}, "mtls": {"mode": mode}},
    }


def authorization(name: str, action: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": SECURITY,
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "server"}}, "action": action, "rules": rules},
    }


class Proxy(Protocol):
    def stat(self, name: str) -> int: ...

    def stats(self, prefix: str) -> dict[str, int]: ...


def sidecar(kind: str, bootstrap: str, workdir: Path, name: str) -> AbstractContextManager[Proxy]:
    """A running sidecar of `kind` ("envoy" or "pydp") from `bootstrap`."""
    if kind == "pydp":
        return pydp(bootstrap, workdir, name=name)
    return envoy(bootstrap, workdir, name)


@dataclass
class Mesh:
    cp: ControlPlane
    client: Proxy
    server: Proxy
    backend: EchoServer
    folder: Path
    ca_dir: Path
    outbound: int
    inbound: int
    address: str
    tmp_path: Path

    def request(self, path: str = "/", method: str = "GET") -> tuple[int, bytes]:
        """A request through the client's sidecar to the Service."""
        conn = http.client.HTTPConnection("127.0.0.1", self.outbound, timeout=10)
        try:
            conn.request(method, path, headers={"Host": HOST})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def direct(
        self, context: ssl.SSLContext | None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """A request straight to the server sidecar's inbound listener, plaintext or
        with `context`; the echo's view of it when it answered 200."""
        conn: http.client.HTTPConnection
        if context is None:
            conn = http.client.HTTPConnection(self.address, self.inbound, timeout=5)
        else:
            conn = http.client.HTTPSConnection(
                self.address, self.inbound, timeout=5, context=context
            )
        try:
            conn.request("GET", "/direct", headers={"Host": HOST, **(headers or {})})
            response = conn.getresponse()
            body = response.read()
            return response.status, json.loads(body) if response.status == 200 else {}
        finally:
            conn.close()

    def refused(self, context: ssl.SSLContext | None) -> bool:
        try:
            self.direct(context)
        except (OSError, http.client.HTTPException):
            return True
        return False

    def policies(self, *objects: dict[str, Any]) -> None:
        manifests.write(self.folder / "policies.yaml", list(objects))

    def authority(self) -> Authority:
        """The control plane's CA, from its directory."""
        authority, generated = load_authority(
            DirectoryFiles(self.ca_dir), "cluster.local", dt.datetime.now(dt.UTC)
        )
        assert not generated
        return authority

    def context(self, issued: Issued | None, roots: bytes) -> ssl.SSLContext:
        """A TLS client context trusting `roots`, presenting `issued` if given."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False  # workload certificates name a SPIFFE ID, not a host
        context.load_verify_locations(cadata=roots.decode())
        if issued is not None:
            cert = self.tmp_path / f"{issued.cert.serial_number}.pem"
            key = self.tmp_path / f"{issued.cert.serial_number}.key"
            cert.write_bytes(issued.chain_pem)
            key.write_bytes(issued.key_pem)
            context.load_cert_chain(cert, key)
        return context


def open_mesh(
    tmp_path: Path,
    client_kind: str = "envoy",
    server_kind: str = "envoy",
    *,
    delta: bool = False,
    extra: tuple[str, ...] = (),
) -> Iterator[Mesh]:
    """The running mesh, once a request crosses it (for a fixture to yield from);
    `extra` goes to `xds-server serve`. Afterwards, neither sidecar rejected config."""
    folder, ca_dir = tmp_path / "manifests", tmp_path / "ca"
    folder.mkdir()
    address, inbound, outbound, app = loopback(), free_port(), free_port(), free_port()
    manifests.write(folder / "mesh.yaml", mesh_objects(address, inbound))
    with (
        echo_backends({"server-app": "127.0.0.1"}, app) as backends,
        control_plane(folder, tmp_path, "--ca-dir", str(ca_dir), *extra) as cp,
    ):
        common = ["--ca-dir", str(ca_dir), *(["--delta"] if delta else [])]
        server_boot = cp.bootstrap(
            "server-1.shop", "shop", "--service-account", "server",
            "--admin-port", str(free_port()), "--inbound-port", str(inbound),
            "--outbound-port", str(free_port()), "--app-port", str(app), *common,
        )  # fmt: skip
        client_boot = cp.bootstrap(
            "client-1.shop", "shop", "--service-account", "client",
            "--admin-port", str(free_port()), "--outbound-port", str(outbound),
            "--inbound-port", str(free_port()), *common,
        )  # fmt: skip
        with (
            sidecar(server_kind, server_boot, tmp_path, "server") as server,
            sidecar(client_kind, client_boot, tmp_path, "client") as client,
        ):
            mesh = Mesh(
                cp, client, server, backends["server-app"], folder, ca_dir,
                outbound, inbound, address, tmp_path,
            )  # fmt: skip
            wait_until(lambda: _crosses(mesh), timeout=20)
            yield mesh
            for proxy in (client, server):
                assert proxy.stat("cluster_manager.cds.update_rejected") == 0
                assert proxy.stat("listener_manager.lds.update_rejected") == 0


def _crosses(mesh: Mesh) -> bool:
    try:
        return mesh.request()[0] == 200
    except OSError:
        return False
