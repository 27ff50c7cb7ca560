"""The mesh's security as the server runs it: CA, SDS secrets, xDS authentication, renewal.

`MeshCa.start` loads (or on first start generates) the CA from `--ca-dir` or
from the Kubernetes Secret `--ca-secret` names (`secret_store`), and picks
how proxies prove who they are: with a Kubernetes client, a service account
token checked by TokenReview; otherwise a token minted by `xds-server
bootstrap --ca-dir` with the key kept beside the CA. `install` makes the
pipeline translate with mTLS and add each node's secrets; `renew` is the
task that republishes when a certificate is due.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from api import contract
from xds_server.auth.gate import Gate, TokenKeyAuthenticator
from xds_server.auth.tokenreview import TokenReviewAuthenticator, kubernetes_reviewer
from xds_server.ca.certs import CertificateError
from xds_server.ca.identity import check_trust_domain
from xds_server.ca.renewal import renew_forever
from xds_server.ca.sds import SecretSource, utcnow
from xds_server.ca.secret_store import SecretFiles, parse_reference
from xds_server.ca.store import CaFiles, DirectoryFiles, load_authority, token_key
from xds_server.ca.workloads import WorkloadCertificates
from xds_server.pipeline import Pipeline
from xds_server.translate import MeshSecurity

log = logging.getLogger("xds_server.ca")


class KubeTarget(Protocol):
    """Where the cluster is (the server's Kubernetes settings)."""

    @property
    def kubeconfig(self) -> str | None: ...
    @property
    def context(self) -> str | None: ...
    @property
    def in_cluster(self) -> bool: ...


@dataclass(frozen=True)
class SecuritySettings:
    """Where the CA's files are: `ca_dir`, or `ca_secret` ("namespace/name", with Kubernetes)."""

    ca_dir: str | None = None
    ca_secret: str | None = None
    trust_domain: str = "cluster.local"
    cert_ttl: float = 24 * 3600.0  # seconds
    mtls_mode: str = "PERMISSIVE"


@dataclass
class MeshCa:
    certificates: WorkloadCertificates
    secrets: SecretSource
    security: MeshSecurity
    gate: Gate

    @classmethod
    def start(cls, settings: SecuritySettings, kube: KubeTarget | None = None) -> MeshCa:
        """Raises `CertificateError` or `IdentityError` naming what is wrong.

        With `kube` (the cluster the server watches), proxies prove themselves
        with service account tokens; without, with tokens of the CA's key.
        """
        trust_domain = check_trust_domain(settings.trust_domain)
        client = None
        if kube is not None:
            from xds_server.sources.kube.config import make_client  # noqa: PLC0415

            client = make_client(
                kubeconfig=kube.kubeconfig, context=kube.context, in_cluster=kube.in_cluster
            )
        files = _files(settings, client)
        authority, generated = load_authority(files, trust_domain, utcnow())
        roots = authority.roots(utcnow())
        if not roots:
            raise CertificateError(f"{files}: every root certificate has expired")
        root = roots[-1]
        log.info(
            "%s CA in %s, root %s (valid until %s), trust domain %s",
            "generated a" if generated else "loaded the",
            files,
            root.subject.rfc4514_string(),
            root.not_valid_after_utc.isoformat(),
            trust_domain,
        )
        certificates = WorkloadCertificates(authority, dt.timedelta(seconds=settings.cert_ttl))
        if client is not None:
            reviewer = kubernetes_reviewer(client, audiences=(contract.XDS_TOKEN_AUDIENCE,))
            gate = Gate(TokenReviewAuthenticator(reviewer))
        else:
            gate = Gate(TokenKeyAuthenticator(token_key(files)))
        security = MeshSecurity(mtls=True, trust_domain=trust_domain, mode=settings.mtls_mode)
        return cls(certificates, SecretSource(certificates), security, gate)

    def install(self, pipeline: Pipeline) -> None:
        pipeline.security = self.security
        pipeline.secrets = self.secrets

    async def renew(self, pipeline: Pipeline) -> None:
        await renew_forever(self.certificates, pipeline.republish)


def _files(settings: SecuritySettings, client: Any) -> CaFiles:
    if settings.ca_secret is not None:
        if client is None:
            raise CertificateError("--ca-secret keeps the CA in Kubernetes: it needs --kubernetes")
        try:
            namespace, name = parse_reference(settings.ca_secret)
        except ValueError as e:
            raise CertificateError(f"--ca-secret: {e}") from None
        return SecretFiles(client, namespace, name)
    if settings.ca_dir is None:
        raise CertificateError("the CA needs --ca-dir or --ca-secret")
    return DirectoryFiles(settings.ca_dir)
