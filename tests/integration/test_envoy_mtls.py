"""Two stock Envoys through a real xds-server with its CA: mTLS, peer modes, RBAC, rotation.

The mesh (`tests.harness.mtls_mesh`): the client's sidecar calls the Service
`server.shop`, whose one endpoint is the server's sidecar, in the mesh.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.mtls_mesh import (
    CLIENT_ID,
    CLUSTER,
    Mesh,
    Proxy,
    authorization,
    open_mesh,
    peer_authentication,
)
from tests.harness.net import free_port, wait_until
from tests.harness.traffic import under_load
from xds_server.ca.authority import Authority
from xds_server.ca.certs import new_key, self_signed_root
from xds_server.ca.identity import Identity
from xds_server.ca.workloads import issue


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Mesh]:
    yield from open_mesh(tmp_path)


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
    assert client_tls.get(f"cluster.{CLUSTER}.ssl.handshake", 0) > 0, client_tls


def test_permissive_accepts_plaintext_and_strips_a_forged_identity(mesh: Mesh) -> None:
    status, seen = mesh.direct(None, {"x-forwarded-client-cert": f"URI={CLIENT_ID}"})
    assert status == 200
    assert "x-forwarded-client-cert" not in seen["headers"]


def test_strict_refuses_plaintext_and_foreign_certificates(mesh: Mesh) -> None:
    mesh.policies(peer_authentication("STRICT"))
    wait_until(lambda: mesh.refused(None), timeout=10)
    assert mesh.request()[0] == 200  # the mesh hop is mTLS and still passes
    now = dt.datetime.now(dt.UTC)
    authority = mesh.authority()
    roots = authority.bundle_pem(now)
    client = Identity("shop", "client")
    mesh_cert = issue(authority, client, now, dt.timedelta(hours=1))
    status, seen = mesh.direct(mesh.context(mesh_cert, roots))
    assert status == 200  # a certificate of the mesh's CA and trust domain is accepted
    assert f"URI={CLIENT_ID}" in seen["headers"]["x-forwarded-client-cert"]

    other_ca = Authority.of(self_signed_root(new_key(), "other.example", now), "other.example")
    same_ca_other_domain = Authority.of(authority.signer(now), "other.example")
    for foreign in (other_ca, same_ca_other_domain):
        cert = issue(foreign, client, now, dt.timedelta(hours=1))
        with pytest.raises((ssl.SSLError, OSError, http.client.HTTPException)):
            mesh.direct(mesh.context(cert, roots))
    hits = mesh.backend.hits
    assert mesh.refused(None)
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
    yield from open_mesh(tmp_path, delta=True, extra=("--cert-ttl", "3s"))


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
