"""The SDS secrets of a proxy: its certificate as `default`, the trust bundle as `ROOTCA`.

`SecretSource` is what the pipeline adds to each node's resources: called
with a node profile, it returns that identity's two secrets as they stand
now. The certificate and key travel inline (Envoy's `inline_bytes`); the
profile has been checked against what the proxy proved on its xDS stream
(`xds_server.auth`) before any of this is sent to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from api.contract import NodeProfile
from xds_server.ca.identity import SECRET_ROOT, SECRET_WORKLOAD, Identity
from xds_server.ca.workloads import Issued, WorkloadCertificates
from xds_server.resources import Resources

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def workload_secret(issued: Issued) -> Any:
    return secret_pb2.Secret(
        name=SECRET_WORKLOAD,
        tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_bytes=issued.chain_pem),
            private_key=base_pb2.DataSource(inline_bytes=issued.key_pem),
        ),
    )


def root_secret(bundle_pem: bytes) -> Any:
    return secret_pb2.Secret(
        name=SECRET_ROOT,
        validation_context=common_pb2.CertificateValidationContext(
            trusted_ca=base_pb2.DataSource(inline_bytes=bundle_pem)
        ),
    )


class SecretSource:
    """Node profile -> its secrets, issuing and renewing certificates as needed."""

    def __init__(self, certificates: WorkloadCertificates, clock: Clock = utcnow) -> None:
        self.certificates = certificates
        self.clock = clock
        self._messages: dict[bytes, Any] = {}

    def __call__(self, profile: NodeProfile) -> Resources:
        now = self.clock()
        issued = self.certificates.get(Identity(profile.namespace, profile.service_account), now)
        bundle = self.certificates.authority.bundle_pem(now)
        return Resources(
            secrets={
                SECRET_WORKLOAD: self._cached(issued.chain_pem, lambda: workload_secret(issued)),
                SECRET_ROOT: self._cached(bundle, lambda: root_secret(bundle)),
            }
        )

    def _cached(self, key: bytes, make: Callable[[], Any]) -> Any:
        found = self._messages.get(key)
        if found is None:
            if len(self._messages) > 4096:
                self._messages.clear()
            found = self._messages[key] = make()
        return found
