"""pydp in the mesh with a real xds-server and its CA: mTLS both ways, peer modes, rotation.

The client sidecar's outbound listener calls the Service `server.shop`, whose
one endpoint is the server sidecar's inbound listener (in front of an echo
backend); the Service is in the mesh, so the client originates mTLS to it
and the server terminates it. Each side is pydp or stock Envoy, so pydp is
checked against itself and against Envoy in both directions (the harness:
`tests.harness.mtls_mesh`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.mtls_mesh import (
    CLIENT_ID,
    CLUSTER,
    SERVER_ID,
    Mesh,
    Proxy,
    open_mesh,
    peer_authentication,
)
from tests.harness.net import wait_until
from tests.harness.pydp_proc import Pydp
from tests.harness.traffic import under_load
from xds_server.ca.authority import Authority
from xds_server.ca.certs import new_key, self_signed_root
from xds_server.ca.identity import Identity
from xds_server.ca.workloads import issue


@pytest.fixture
def mesh(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Mesh]:
    """pydp on both sides, or the (client, server) data planes the test names."""
    client_kind, server_kind = getattr(request, "param", ("pydp", "pydp"))
    yield from open_mesh(tmp_path, client_kind, server_kind, delta=True)


@pytest.fixture
def short_lived(tmp_path: Path) -> Iterator[Mesh]:
    yield from open_mesh(tmp_path, "pydp", "pydp", delta=True, extra=("--cert-ttl", "3s"))


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
