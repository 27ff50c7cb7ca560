"""TLS contexts from secrets: built once, replaced on rotation, old ones still working."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from pydp.tls.contexts import TlsContexts, TlsUnavailable
from pydp.tls.files import SecretFiles
from tests.pydp.tls.handshakes import client_config, handshake, server_config
from tests.pydp.tls.pki import Pki, secrets

PKI = Pki()
SERVER_ID = "spiffe://cluster.local/ns/shop/sa/server"
CLIENT_ID = "spiffe://cluster.local/ns/shop/sa/client"
SERVER_SECRETS = secrets(PKI.leaf(uris=(SERVER_ID,)), PKI)


@pytest.fixture
def tls(tmp_path: Path) -> TlsContexts:
    contexts = TlsContexts(SecretFiles(str(tmp_path)))
    contexts.update(SERVER_SECRETS)
    return contexts


def client_side(tmp_path: Path) -> ssl.SSLContext:
    (tmp_path / "client").mkdir(exist_ok=True)
    other = TlsContexts(SecretFiles(str(tmp_path / "client")))
    other.update(secrets(PKI.leaf(uris=(CLIENT_ID,)), PKI))
    return other.client(client_config(), "").ssl_context


def test_a_context_is_built_once_and_then_served_from_the_cache(tls: TlsContexts) -> None:
    first = tls.server(server_config())
    assert tls.server(server_config()) is first
    assert tls.builds == 1
    client = tls.client(client_config(), "h2")
    assert tls.client(client_config(), "h2") is client
    assert tls.builds == 2
    tls.update(dict(SERVER_SECRETS))  # the same secrets again: nothing is rebuilt
    assert tls.server(server_config()) is first
    assert tls.builds == 2


def test_server_contexts_follow_the_downstream_tls_context(tls: TlsContexts) -> None:
    strict = tls.server(server_config(require=True)).ssl_context
    assert strict.verify_mode is ssl.CERT_REQUIRED
    assert strict.minimum_version is ssl.TLSVersion.TLSv1_2
    assert strict.maximum_version is ssl.TLSVersion.TLSv1_3
    optional = tls.server(server_config(require=False)).ssl_context
    assert optional.verify_mode is ssl.CERT_OPTIONAL
    assert tls.server(server_config()).local_uri_sans == (SERVER_ID,)


def test_client_contexts_speak_tls12_without_hostname_checks(tls: TlsContexts) -> None:
    client = tls.client(client_config(), "").ssl_context
    assert client.verify_mode is ssl.CERT_REQUIRED
    assert client.check_hostname is False
    assert client.maximum_version is ssl.TLSVersion.TLSv1_2


def test_alpn_comes_from_the_config_or_else_from_the_pool(tmp_path: Path, tls: TlsContexts) -> None:
    server = tls.server(server_config()).ssl_context
    configured = tls.client(client_config(alpn=("http/1.1",)), "h2")
    _, c = handshake(server, configured.ssl_context)
    assert c.selected_alpn_protocol() == "http/1.1"
    fallback = tls.client(client_config(alpn=()), "h2")
    _, c = handshake(server, fallback.ssl_context)
    assert c.selected_alpn_protocol() == "h2"
    assert tls.client(client_config(alpn=()), "http/1.1") is not fallback


def test_a_rotation_swaps_contexts_and_old_ones_keep_working(
    tmp_path: Path, tls: TlsContexts
) -> None:
    client = client_side(tmp_path)
    old = tls.server(server_config())
    old_cert = {p for p in tls.files.files() if not p.name.endswith(".ca.pem")}
    tls.update(secrets(PKI.leaf(uris=(SERVER_ID,)), PKI))
    assert tls.builds == 2  # rebuilt at once, not at the next connection
    new = tls.server(server_config())
    assert new is not old and new.digests != old.digests
    assert tls.builds == 2
    assert len(old_cert) == 2
    assert not old_cert & set(tls.files.files())  # the old key is gone from the disk ...
    s, _ = handshake(old.ssl_context, client)  # ... and the old context still works
    assert s.version() is not None
    s, _ = handshake(new.ssl_context, client)
    new_cert = s.getpeercert(binary_form=True)
    assert new_cert is not None


def test_a_context_nobody_used_since_the_last_rotation_is_dropped(tls: TlsContexts) -> None:
    tls.server(server_config())
    tls.update(secrets(PKI.leaf(uris=(SERVER_ID,)), PKI))
    assert tls.builds == 2
    tls.update(secrets(PKI.leaf(uris=(SERVER_ID,)), PKI))
    assert tls.builds == 2  # not used after the first rotation: not rebuilt
    tls.server(server_config())
    assert tls.builds == 3


def test_a_missing_secret_makes_the_context_unavailable(tmp_path: Path) -> None:
    tls = TlsContexts(SecretFiles(str(tmp_path)))
    with pytest.raises(TlsUnavailable, match="secret 'default' has not arrived"):
        tls.server(server_config())
    tls.close()
    assert not any(tmp_path.iterdir())


def test_a_new_trust_bundle_rebuilds_the_contexts_that_use_it(tls: TlsContexts) -> None:
    other = Pki("other.example")
    first = tls.client(client_config(), "")
    tls.update({**SERVER_SECRETS, "ROOTCA": secrets(PKI.leaf(), PKI, other)["ROOTCA"]})
    assert tls.client(client_config(), "") is not first
