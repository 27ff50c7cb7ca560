"""pydp in the mesh with a real xds-server and its CA: mTLS both ways, peer modes, rotation.

The client sidecar's outbound listener calls the Service `server.shop`, whose
one endpoint is the server sidecar's inbound listener (in front of an echo
backend); the Service is in the mesh, so the client originates mTLS to it
and the server terminates it. Each side is pydp or stock Envoy, so pydp is
checked against itself and against Envoy in both directions. The mesh
objects and the harness are the Envoy test's (`test_envoy_mtls.py`).
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import ssl
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.harness import manifests
from tests.harness.backends import EchoServer, echo_backends
from tests.harness.net import free_port, loopback, wait_until
from tests.harness.procs import ControlPlane, control_plane, envoy
from tests.harness.pydp_proc import Pydp, pydp
from tests.harness.traffic import under_load
from tests.integration.test_envoy_mtls import (
    CLIENT_ID,
    HOST,
    _mesh_objects,
    peer_authentication,
)
from xds_server.ca.authority import Authority
from xds_server.ca.certs import new_key, self_signed_root
from xds_server.ca.identity import Identity
from xds_server.ca.store import DirectoryFiles, load_authority
from xds_server.ca.workloads import Issued, issue

SERVER_ID = "spiffe://cluster.local/ns/shop/sa/server"
CLUSTER = f"outbound|80||{HOST}"


class Proxy(Protocol):
    def stat(self, name: str) -> int: ...

    def stats(self, prefix: str) -> dict[str, int]: ...


def sidecar(kind: str, bootstrap: str, workdir: Path, name: str) -> AbstractContextManager[Proxy]:
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

    def request(self, path: str = "/") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.outbound, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": HOST})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def direct(self, context: ssl.SSLContext | None) -> tuple[int, dict[str, Any]]:
        """A request straight to the server sidecar's inbound listener."""
        conn: http.client.HTTPConnection
        if context is None:
            conn = http.client.HTTPConnection(self.address, self.inbound, timeout=5)
        else:
            conn = http.client.HTTPSConnection(
                self.address, self.inbound, timeout=5, context=context
            )
        try:
            conn.request("GET", "/direct", headers={"Host": HOST})
            response = conn.getresponse()
            body = response.read()
            return response.status, json.loads(body) if response.status == 200 else {}
        finally:
            conn.close()

    def policies(self, *objects: dict[str, Any]) -> None:
        manifests.write(self.folder / "policies.yaml", list(objects))

    def refused(self, context: ssl.SSLContext | None) -> bool:
        try:
            self.direct(context)
        except (OSError, http.client.HTTPException):
            return True
        return False

    def authority(self) -> Authority:
        authority, _ = load_authority(
            DirectoryFiles(self.ca_dir), "cluster.local", dt.datetime.now(dt.UTC)
        )
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


def _mesh(
    tmp_path: Path, client_kind: str, server_kind: str, *, extra: tuple[str, ...] = ()
) -> Iterator[Mesh]:
    folder, ca_dir = tmp_path / "manifests", tmp_path / "ca"
    folder.mkdir()
    address, inbound, outbound, app = loopback(), free_port(), free_port(), free_port()
    manifests.write(folder / "mesh.yaml", _mesh_objects(address, inbound))
    with (
        echo_backends({"server-app": "127.0.0.1"}, app) as backends,
        control_plane(folder, tmp_path, "--ca-dir", str(ca_dir), *extra) as cp,
    ):
        common = ["--ca-dir", str(ca_dir), "--delta"]
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
def mesh(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Mesh]:
    """pydp on both sides, or the (client, server) data planes the test names."""
    client_kind, server_kind = getattr(request, "param", ("pydp", "pydp"))
    yield from _mesh(tmp_path, client_kind, server_kind)


@pytest.fixture
def short_lived(tmp_path: Path) -> Iterator[Mesh]:
    yield from _mesh(tmp_path, "pydp", "pydp", extra=("--cert-ttl", "3s"))


@pytest.mark.parametrize(
    "mesh",
    [("pydp", "pydp"), ("envoy", "pydp"), ("pydp", "envoy")],
    indirect=True,
    ids=["pydp-to-pydp", "envoy-to-pydp", "pydp-to-envoy"],
)
def test_requests_cross_the_mesh_over_mtls(mesh: Mesh) -> None:
    status, body = mesh.request("/hello")
    assert status == 200
    seen = json.loads(body)
    assert (seen["name"], seen["path"]) == ("server-app", "/hello")
    xfcc = seen["headers"]["x-forwarded-client-cert"]
    assert f"URI={CLIENT_ID}" in xfcc  # the client's certificate, as the server verified it
    assert f"By={SERVER_ID}" in xfcc  # the server's own
    assert mesh.server.stat(f"listener.0.0.0.0_{mesh.inbound}.ssl.handshake") > 0  # terminated
    client_tls = mesh.client.stats("ssl.handshake")
    assert client_tls.get(f"cluster.{CLUSTER}.ssl.handshake", 0) > 0, client_tls  # originated
    assert mesh.server.stat(f"listener.0.0.0.0_{mesh.inbound}.ssl.fail_verify_san") == 0


def test_permissive_takes_both_and_strict_refuses_plaintext_and_foreign_certificates(
    mesh: Mesh,
) -> None:
    now = dt.datetime.now(dt.UTC)
    authority = mesh.authority()
    roots = authority.bundle_pem(now)
    client = Identity("shop", "client")
    mesh_cert = issue(authority, client, now, dt.timedelta(hours=1))
    prefix = f"listener.0.0.0.0_{mesh.inbound}."

    # PERMISSIVE (the default): plaintext and mTLS are both served.
    assert mesh.direct(None)[0] == 200
    status, seen = mesh.direct(mesh.context(mesh_cert, roots))
    assert status == 200
    assert f"URI={CLIENT_ID}" in seen["headers"]["x-forwarded-client-cert"]
    assert mesh.server.stat("tls_inspector.tls_found") >= 1
    assert mesh.server.stat("tls_inspector.tls_not_found") >= 1

    mesh.policies(peer_authentication("STRICT"))
    wait_until(lambda: mesh.refused(None), timeout=10)
    assert mesh.request()[0] == 200  # the mesh hop is mTLS and still passes
    assert mesh.direct(mesh.context(mesh_cert, roots))[0] == 200
    errors = mesh.server.stat(prefix + "ssl.connection_error")
    assert errors >= 1  # the plaintext client failed the handshake

    other_ca = Authority.of(self_signed_root(new_key(), "other.example", now), "other.example")
    same_ca_other_domain = Authority.of(authority.signer(now), "other.example")
    hits = mesh.backend.hits
    for foreign in (other_ca, same_ca_other_domain):
        assert mesh.refused(mesh.context(issue(foreign, client, now, dt.timedelta(hours=1)), roots))
    assert mesh.refused(mesh.context(None, roots))  # no certificate at all
    assert mesh.backend.hits == hits
    wait_until(lambda: mesh.server.stat(prefix + "ssl.fail_verify_san") == 1)
    assert mesh.server.stat(prefix + "ssl.fail_verify_error") == 1
    assert mesh.server.stat(prefix + "ssl.fail_verify_no_cert") == 1


def test_certificates_rotate_under_steady_traffic_without_a_failure(short_lived: Mesh) -> None:
    mesh = short_lived

    def updates(proxy: Proxy) -> int:
        return proxy.stat("sds.default.update_success")

    proxies = (mesh.client, mesh.server)
    before = [updates(p) for p in proxies]
    # Renewed at half of three seconds: several new certificates on each side.
    outcome = under_load(
        mesh.request,
        lambda: all(updates(p) >= b + 3 for p, b in zip(proxies, before, strict=True)),
        timeout=20,
    )
    assert outcome.failures == []
    assert outcome.sent > 50
    assert mesh.server.stat(f"listener.0.0.0.0_{mesh.inbound}.ssl.handshake") >= 1
    assert mesh.server.stat("sds.default.update_rejected") == 0


def test_config_dump_shows_the_secrets_without_the_private_key(mesh: Mesh) -> None:
    server = mesh.server
    assert isinstance(server, Pydp)
    dump = json.loads(server.get("/config_dump?resource=dynamic_active_secrets"))
    secrets = {s["name"]: s["secret"] for s in dump["configs"]}
    assert set(secrets) == {"default", "ROOTCA"}
    certificate = secrets["default"]["tls_certificate"]
    assert base64.b64decode(certificate["private_key"]["inline_bytes"]) == b"[redacted]"
    chain = base64.b64decode(certificate["certificate_chain"]["inline_bytes"])
    assert chain.startswith(b"-----BEGIN CERTIFICATE-----")
    assert "LS0tLS1CRUdJTiBQUklWQVRF" not in server.get("/config_dump")  # "-----BEGIN PRIVATE"
