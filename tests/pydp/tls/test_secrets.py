"""SDS secrets compiled: inline material checked, everything else refused by name."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from pydp.errors import ConfigError
from pydp.tls.secrets import TLS_CERTIFICATE, VALIDATION_CONTEXT, compile_secret, compile_secrets
from tests.pydp.tls.pki import Pki, cert_secret_message, roots_secret_message
from xds_server.ca.certs import new_key

PKI = Pki()
LEAF = PKI.leaf(uris=("spiffe://cluster.local/ns/a/sa/b",))


def test_a_certificate_and_a_trust_bundle_compile_with_their_material() -> None:
    out = compile_secrets(
        {
            "default": cert_secret_message("default", LEAF),
            "ROOTCA": roots_secret_message("ROOTCA", PKI),
        }
    )
    cert, roots = out["default"], out["ROOTCA"]
    assert (cert.kind, cert.certificate_chain, cert.private_key) == (
        TLS_CERTIFICATE,
        LEAF.chain_pem,
        LEAF.key_pem,
    )
    assert (roots.kind, roots.trusted_ca) == (VALIDATION_CONTEXT, PKI.roots_pem)
    assert cert.not_after == LEAF.cert.not_valid_after_utc.timestamp()
    assert LEAF.key_pem.decode() not in repr(cert)  # keys never reach a log line


def test_inline_strings_count_as_inline_bytes() -> None:
    message = secret_pb2.Secret(
        name="default",
        tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_string=LEAF.chain_pem.decode()),
            private_key=base_pb2.DataSource(inline_string=LEAF.key_pem.decode()),
        ),
    )
    assert compile_secret(message) == compile_secret(cert_secret_message("default", LEAF))


def test_the_digest_changes_exactly_when_the_material_does() -> None:
    first = compile_secret(cert_secret_message("default", LEAF))
    again = compile_secret(cert_secret_message("default", LEAF))
    rotated = compile_secret(cert_secret_message("default", PKI.leaf(uris=("spiffe://x/y",))))
    assert first.digest == again.digest != rotated.digest
    assert compile_secret(roots_secret_message("ROOTCA", PKI)).digest != first.digest


def _with(message: Any, mutate: Any) -> Any:
    mutate(message)
    return message


def _encrypted_key() -> bytes:
    return new_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )


@pytest.mark.parametrize(
    ("message", "field", "problem"),
    [
        (secret_pb2.Secret(), "name", "must not be empty"),
        (secret_pb2.Secret(name="s"), "(resource)", "neither tls_certificate nor"),
        (
            secret_pb2.Secret(name="s", generic_secret=secret_pb2.GenericSecret()),
            "generic_secret",
            "is not supported by pydp",
        ),
        (
            _with(
                cert_secret_message("s", LEAF),
                lambda m: setattr(m.tls_certificate.private_key, "filename", "/etc/key.pem"),
            ),
            "tls_certificate.private_key.filename",
            "inline only (inline_bytes or inline_string)",
        ),
        (
            _with(
                roots_secret_message("s", PKI),
                lambda m: setattr(m.validation_context.trusted_ca, "environment_variable", "CA"),
            ),
            "validation_context.trusted_ca.environment_variable",
            "inline only",
        ),
        (
            _with(
                cert_secret_message("s", LEAF),
                lambda m: m.tls_certificate.ClearField("private_key"),
            ),
            "tls_certificate.private_key",
            "is required",
        ),
        (
            _with(
                cert_secret_message("s", LEAF),
                lambda m: setattr(m.tls_certificate.password, "inline_string", "x"),
            ),
            "tls_certificate.password",
            "is not supported by pydp",
        ),
        (
            _with(
                cert_secret_message("s", LEAF),
                lambda m: setattr(m.tls_certificate.certificate_chain, "inline_bytes", b"junk"),
            ),
            "tls_certificate.certificate_chain",
            "is not a PEM certificate list",
        ),
        (
            _with(
                cert_secret_message("s", LEAF),
                lambda m: setattr(m.tls_certificate.private_key, "inline_bytes", _encrypted_key()),
            ),
            "tls_certificate.private_key",
            "is not an unencrypted PEM private key",
        ),
        (
            _with(
                cert_secret_message("s", LEAF),
                lambda m: setattr(
                    m.tls_certificate.private_key, "inline_bytes", PKI.leaf().key_pem
                ),
            ),
            "tls_certificate.private_key",
            "does not match the first certificate",
        ),
        (
            _with(
                roots_secret_message("s", PKI),
                lambda m: m.validation_context.match_typed_subject_alt_names.add(),
            ),
            "validation_context.match_typed_subject_alt_names",
            "is not supported by pydp",
        ),
    ],
)
def test_what_pydp_cannot_honour_is_refused_naming_the_field(
    message: Any, field: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        compile_secret(message)
    assert raised.value.field == field
    assert problem in raised.value.problem
    assert b"PRIVATE KEY" not in str(raised.value).encode()
