"""Two stock Envoys through a real xds-server with its CA: mTLS, peer modes, RBAC, rotation.

Envoy A is the client's sidecar (its outbound listener), Envoy B the server's
(its inbound listener, in front of an echo backend on 127.0.0.1). The Service
`server.shop` has one endpoint: B's inbound listener on a loopback address,
with a targetRef to the Pod `server-1` (service account `server`), so the
Service is in the mesh and A originates mTLS to it, expecting B's SPIFFE ID.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness import manifests
from tests.harness.backends import EchoServer, echo_backends
from tests.harness.net import free_port, loopback, wait_until
from tests.harness.procs import ControlPlane, Envoy, control_plane, envoy
from tests.harness.traffic import under_load
from xds_server.ca.authority import Authority
from xds_server.ca.certs import new_key, self_signed_root
from xds_server.ca.identity import Identity
from xds_server.ca.store import DirectoryFiles, load_authority
from xds_server.ca.workloads import Issued, issue

HOST = "server.shop.svc.cluster.local"
CLIENT_ID = "spiffe://cluster.local/ns/shop/sa/client"
SECURITY = "security.xdsmesh.io/v1alpha1"


def _mesh_objects(address: str, inbound_port: int) -> list[dict[str, Any]]:
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


@dataclass
class Mesh:
    cp: ControlPlane
    client: Envoy
    server: Envoy
    backend: EchoServer
    folder: Path
    ca_dir: Path
    outbound: int
    inbound: int
    address: str

    def request(self, path: str = "/", method: str = "GET") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.outbound, timeout=10)
        try:
            conn.request(method, path, headers={"Host": HOST})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def policies(self, *objects: dict[str, Any]) -> None:
        manifests.write(self.folder / "policies.yaml", list(objects))

    def direct(
        self, context: ssl.SSLContext | None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """A request straight to B's inbound listener, plaintext or with `context`."""
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

    def client_context(self, issued: Issued, roots_pem: bytes, tmp: Path) -> ssl.SSLContext:
        cert, key = (
            tmp / f"{issued.cert.serial_number}.pem",
            tmp / f"{issued.cert.serial_number}.key",
        )
        cert.write_bytes(issued.chain_pem)
        key.write_bytes(issued.key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False  # workload certificates name a SPIFFE ID, not a host
        context.load_verify_locations(cadata=roots_pem.decode())
        context.load_cert_chain(cert, key)
        return context

    def mesh_authority(self) -> Authority:
        authority, generated = load_authority(
            DirectoryFiles(self.ca_dir), "cluster.local", dt.datetime.now(dt.UTC)
        )
        assert not generated
        return authority


def _mesh(tmp_path: Path, *, delta: bool = False, extra: tuple[str, ...] = ()) -> Iterator[Mesh]:
    folder, ca_dir = tmp_path / "manifests", tmp_path / "ca"
    folder.mkdir()
    address, inbound, outbound, app = loopback(), free_port(), free_port(), free_port()
    manifests.write(folder / "mesh.yaml", _mesh_objects(address, inbound))
    with (
        echo_backends({"server-app": "127.0.0.1"}, app) as backends,
        control_plane(folder, tmp_path, "--ca-dir", str(ca_dir), *extra) as cp,
    ):
        common = ["--ca-dir", str(ca_dir), *(["--delta"] if delta else [])]
        server_boot = cp.bootstrap(
            "server-1.shop",
            "shop",
            "--service-account",
            "server",
            "--admin-port",
            str(free_port()),
            "--inbound-port",
            str(inbound),
            "--outbound-port",
            str(free_port()),
            "--app-port",
            str(app),
            *common,
        )
        client_boot = cp.bootstrap(
            "client-1.shop",
            "shop",
            "--service-account",
            "client",
            "--admin-port",
            str(free_port()),
            "--outbound-port",
            str(outbound),
            "--inbound-port",
            str(free_port()),
            *common,
        )
        with (
            envoy(server_boot, tmp_path, "server") as server,
            envoy(client_boot, tmp_path, "client") as client,
        ):
            mesh = Mesh(
                cp,
                client,
                server,
                backends["server-app"],
                folder,
                ca_dir,
                outbound,
                inbound,
                address,
            )
            wait_until(lambda: _ok(mesh), timeout=20)
            yield mesh
            for proxy in (client, server):
                assert proxy.stat("cluster_manager.cds.update_rejected") == 0
                assert proxy.stat("listener_manager.lds.update_rejected") == 0


def _ok(mesh: Mesh) -> bool:
    try:
        return mesh.request()[0] == 200
    except OSError:
        return False


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Mesh]:
    yield from _mesh(tmp_path)


def test_sidecars_speak_mtls_and_the_workload_learns_its_caller(mesh: Mesh) -> None:
    status, body = mesh.request("/hello")
    assert status == 200
    seen = json.loads(body)
    assert seen["name"] == "server-app"
    assert seen["path"] == "/hello"
    xfcc = seen["headers"]["x-forwarded-client-cert"]
    assert f"URI={CLIENT_ID}" in xfcc
    assert "By=spiffe://cluster.local/ns/shop/sa/server" in xfcc
    server_tls = mesh.server.stats("ssl.handshake")
    assert any(k.startswith("listener.") and v > 0 for k, v in server_tls.items()), server_tls
    client_tls = mesh.client.stats("ssl.handshake")
    assert client_tls.get(f"cluster.outbound|80||{HOST}.ssl.handshake", 0) > 0, client_tls


def test_permissive_accepts_plaintext_and_strips_a_forged_identity(mesh: Mesh) -> None:
    status, seen = mesh.direct(None, {"x-forwarded-client-cert": f"URI={CLIENT_ID}"})
    assert status == 200
    assert "x-forwarded-client-cert" not in seen["headers"]


def test_strict_refuses_plaintext_and_foreign_certificates(mesh: Mesh, tmp_path: Path) -> None:
    mesh.policies(peer_authentication("STRICT"))

    def plaintext_refused() -> bool:
        try:
            mesh.direct(None)
        except (OSError, http.client.HTTPException):
            return True
        return False

    wait_until(plaintext_refused, timeout=10)
    assert mesh.request()[0] == 200  # the mesh hop is mTLS and still passes
    now = dt.datetime.now(dt.UTC)
    authority = mesh.mesh_authority()
    roots = authority.bundle_pem(now)
    client = Identity("shop", "client")
    mesh_cert = issue(authority, client, now, dt.timedelta(hours=1))
    status, seen = mesh.direct(mesh.client_context(mesh_cert, roots, tmp_path))
    assert status == 200  # a certificate of the mesh's CA and trust domain is accepted
    assert f"URI={CLIENT_ID}" in seen["headers"]["x-forwarded-client-cert"]

    other_ca = Authority.of(self_signed_root(new_key(), "other.example", now), "other.example")
    same_ca_other_domain = Authority.of(authority.signer(now), "other.example")
    for foreign in (other_ca, same_ca_other_domain):
        cert = issue(foreign, client, now, dt.timedelta(hours=1))
        with pytest.raises((ssl.SSLError, OSError, http.client.HTTPException)):
            mesh.direct(mesh.client_context(cert, roots, tmp_path))
    hits = mesh.backend.hits
    assert plaintext_refused()
    assert mesh.backend.hits == hits


def _status_becomes(mesh: Mesh, path: str, status: int, method: str = "GET") -> None:
    wait_until(lambda: mesh.request(path, method)[0] == status, timeout=10)


def test_authorization_by_principal_namespace_method_and_path(mesh: Mesh) -> None:
    mesh.policies(
        authorization("deny-client", "DENY", [{"from": [{"source": {"principals": [CLIENT_ID]}}]}])
    )
    _status_becomes(mesh, "/", 403)
    hits = mesh.backend.hits
    status, body = mesh.request()
    assert (status, body) == (403, b"RBAC: access denied")
    assert mesh.backend.hits == hits  # the workload never saw it

    # Wildcards: DENY every principal but the client's.
    mesh.policies(
        authorization(
            "deny-others", "DENY", [{"from": [{"source": {"notPrincipals": ["*/sa/client"]}}]}]
        )
    )
    _status_becomes(mesh, "/", 200)

    mesh.policies(
        authorization("from-other", "ALLOW", [{"from": [{"source": {"namespaces": ["other"]}}]}])
    )
    _status_becomes(mesh, "/", 403)
    mesh.policies(
        authorization("from-shop", "ALLOW", [{"from": [{"source": {"namespaces": ["shop"]}}]}])
    )
    _status_becomes(mesh, "/", 200)

    mesh.policies(
        authorization("no-post", "DENY", [{"to": [{"operation": {"methods": ["POST"]}}]}])
    )
    _status_becomes(mesh, "/", 403, "POST")
    assert mesh.request("/", "GET")[0] == 200

    mesh.policies(
        authorization("public", "ALLOW", [{"to": [{"operation": {"paths": ["/public/*"]}}]}]),
        authorization("no-secrets", "DENY", [{"to": [{"operation": {"paths": ["*.secret"]}}]}]),
    )
    _status_becomes(mesh, "/private", 403)
    assert mesh.request("/public/page?x=1")[0] == 200
    assert mesh.request("/public/key.secret")[0] == 403

    mesh.policies()  # no policy: everything is allowed again
    _status_becomes(mesh, "/private", 200)


@pytest.fixture
def short_lived(tmp_path: Path) -> Iterator[Mesh]:
    yield from _mesh(tmp_path, delta=True, extra=("--cert-ttl", "3s"))


def test_certificates_rotate_under_steady_traffic_without_a_failure(short_lived: Mesh) -> None:
    mesh = short_lived

    def updates(proxy: Envoy) -> int:
        return proxy.stat("sds.default.update_success")

    proxies = (mesh.client, mesh.server)
    before = [updates(p) for p in proxies]
    # Renewed at half of three seconds: several new certificates on each side.
    outcome = under_load(
        mesh.request,
        lambda: all(updates(p) >= b + 3 for p, b in zip(proxies, before, strict=True)),
        timeout=15,
    )
    assert outcome.failures == []
    assert outcome.sent > 50
    assert "update_rejected" not in str(
        {k: v for k, v in mesh.server.stats("sds.default").items() if "rejected" in k and v}
    )


def test_a_proxy_without_a_token_is_refused(mesh: Mesh, tmp_path: Path) -> None:
    """The xDS stream itself is authenticated: no token, no configuration and no key."""
    boot = mesh.cp.bootstrap(
        "intruder-1.shop",
        "shop",
        "--service-account",
        "server",
        "--admin-port",
        str(free_port()),
        "--outbound-port",
        str(free_port()),
        "--inbound-port",
        str(free_port()),
    )
    config = tmp_path / "intruder.yaml"
    config.write_text(boot)
    from tests.harness.procs import binary, process  # noqa: PLC0415

    args = [binary("envoy"), "-c", str(config), "--use-dynamic-base-id", "--log-level", "warn"]
    with process(args, tmp_path / "intruder.log"):
        wait_until(lambda: "refused xDS stream" in mesh.cp.process.output(), timeout=15)
    assert "carries no 'authorization: Bearer <token>'" in mesh.cp.process.output()
    assert "intruder-1.shop" not in {p["proxy"] for p in mesh.cp.syncz()}
