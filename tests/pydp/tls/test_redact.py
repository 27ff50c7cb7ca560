"""Private keys never reach `/config_dump`: Envoy's `[redacted]`, wherever they sit."""

from __future__ import annotations

import base64
import json

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from google.protobuf import any_pb2

from api import contract
from pydp.config_dump import build_config_dump, to_json
from pydp.tls.redact import REDACTED, redacted
from pydp.xds.store import DumpedResource, TypeDump
from tests.pydp.tls.pki import Pki, cert_secret_message, roots_secret_message

PKI = Pki()
LEAF = PKI.leaf(uris=("spiffe://cluster.local/ns/a/sa/b",))


def test_a_secrets_private_key_is_redacted_and_its_certificate_kept() -> None:
    secret = cert_secret_message("default", LEAF)
    out = redacted(secret)
    assert out.tls_certificate.private_key.inline_bytes == REDACTED.encode()
    assert out.tls_certificate.certificate_chain.inline_bytes == LEAF.chain_pem
    assert secret.tls_certificate.private_key.inline_bytes == LEAF.key_pem  # input unchanged


def test_keys_inside_any_and_inside_sensitive_messages_are_redacted() -> None:
    context = tls_pb2.DownstreamTlsContext()
    context.common_tls_context.tls_certificates.add(
        certificate_chain=base_pb2.DataSource(inline_bytes=LEAF.chain_pem),
        private_key=base_pb2.DataSource(inline_string=LEAF.key_pem.decode()),
        password=base_pb2.DataSource(filename="/etc/password"),
    )
    packed = any_pb2.Any()
    packed.Pack(context)
    unpacked = tls_pb2.DownstreamTlsContext()
    assert redacted(packed).Unpack(unpacked)
    cert = unpacked.common_tls_context.tls_certificates[0]
    assert cert.private_key.inline_string == REDACTED
    assert cert.password.filename == REDACTED  # every text field of a sensitive message
    assert cert.certificate_chain.inline_bytes == LEAF.chain_pem


def test_config_dump_shows_secrets_without_their_keys() -> None:
    secrets = TypeDump(
        contract.TYPE_SECRET,
        "7",
        (
            DumpedResource("default", "7", cert_secret_message("default", LEAF), 0.0, False),
            DumpedResource("ROOTCA", "7", roots_secret_message("ROOTCA", PKI), 0.0, False),
        ),
        None,
    )
    bootstrap = bootstrap_pb2.Bootstrap()
    bootstrap.static_resources.secrets.add(
        name="static",
        tls_certificate=common_pb2.TlsCertificate(
            private_key=base_pb2.DataSource(inline_bytes=LEAF.key_pem)
        ),
    )
    dump = to_json(build_config_dump([secrets], bootstrap=bootstrap))
    text = json.dumps(dump)
    assert "PRIVATE KEY" not in text
    assert base64.b64encode(LEAF.key_pem).decode() not in text
    found = to_json(build_config_dump([secrets]), "dynamic_active_secrets")["configs"]
    assert [s["name"] for s in found] == ["default", "ROOTCA"]
    first = found[0]["secret"]["tls_certificate"]
    assert first["private_key"] == {"inline_bytes": base64.b64encode(b"[redacted]").decode()}
    assert base64.b64decode(first["certificate_chain"]["inline_bytes"]) == LEAF.chain_pem
    roots = found[1]["secret"]["validation_context"]["trusted_ca"]["inline_bytes"]
    assert base64.b64decode(roots) == PKI.roots_pem
