"""Workload identities as SPIFFE IDs, and the names of the SDS secrets.

A workload is its namespace and service account; its SPIFFE ID is
`spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>` (Istio's form).
Every proxy receives two secrets by these names (Istio's): `default`, its own
certificate chain and key, and `ROOTCA`, the roots it trusts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SECRET_WORKLOAD = "default"
SECRET_ROOT = "ROOTCA"
SPIFFE_SCHEME = "spiffe://"

# SPIFFE: lowercase letters, digits, dots, dashes and underscores.
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


class CaError(ValueError):
    """What keeps the mesh's CA from starting or working; the message says why."""


class IdentityError(CaError):
    """A trust domain or SPIFFE ID that is not well formed."""


def check_trust_domain(trust_domain: str) -> str:
    """The trust domain itself; raises IdentityError naming what is wrong."""
    if not _TRUST_DOMAIN.fullmatch(trust_domain) or len(trust_domain) > 255:
        raise IdentityError(
            f"trust domain {trust_domain!r} must be 1-255 lowercase letters, digits, "
            "'.', '-' or '_'"
        )
    return trust_domain


@dataclass(frozen=True, slots=True, order=True)
class Identity:
    """Who a workload is: a service account in a namespace."""

    namespace: str
    service_account: str

    def spiffe_id(self, trust_domain: str) -> str:
        return spiffe_id(trust_domain, self.namespace, self.service_account)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.service_account}"


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    for what, value in (("namespace", namespace), ("service account", service_account)):
        if not _SEGMENT.fullmatch(value):
            raise IdentityError(f"{what} {value!r} cannot be part of a SPIFFE ID")
    return f"{SPIFFE_SCHEME}{check_trust_domain(trust_domain)}/ns/{namespace}/sa/{service_account}"


def parse_spiffe_id(uri: str) -> tuple[str, Identity] | None:
    """(trust domain, identity) of a workload SPIFFE ID, or None if it is not one."""
    if not uri.startswith(SPIFFE_SCHEME):
        return None
    parts = uri[len(SPIFFE_SCHEME) :].split("/")
    if len(parts) != 5 or parts[1] != "ns" or parts[3] != "sa":
        return None
    trust_domain, namespace, account = parts[0], parts[2], parts[4]
    if not _TRUST_DOMAIN.fullmatch(trust_domain):
        return None
    if not (_SEGMENT.fullmatch(namespace) and _SEGMENT.fullmatch(account)):
        return None
    return trust_domain, Identity(namespace, account)
