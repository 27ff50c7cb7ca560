"""Which workloads are in the mesh, what peer mode they run, which policies select them.

A Service is *in the mesh* when every endpoint of its EndpointSlices is a
Pod the model knows (by the endpoint's `targetRef`, else by its address),
each Pod has a sidecar (no `security.xdsmesh.io/tls-mode: disabled` label)
and none runs in DISABLE mode. Clients then originate mTLS to it and check
that the server is one of the SPIFFE IDs of those Pods' service accounts;
every other Service is reached in plaintext (which PERMISSIVE accepts).

A proxy's workload is its identity (namespace and service account, from its
node profile): a selector selects it when it selects one of the Pods that run
as that identity. Peer authentication resolves as Istio's does: a policy
that selects the workload wins over the namespace-wide one, which wins over
the mesh default; UNSET passes to the next; among several at one level the
first by name wins (Istio: the oldest), with a warning.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field

from xds_server.ca.identity import spiffe_id
from xds_server.model import (
    AuthorizationPolicy,
    Endpoint,
    Labels,
    Model,
    PeerAuthentication,
    Pod,
    Service,
    selects,
)
from xds_server.translate.security import DISABLE

TLS_MODE_LABEL = "security.xdsmesh.io/tls-mode"
NO_SIDECAR = "disabled"
UNSET = "UNSET"


@dataclass
class MeshIndex:
    """Lookups over one model, built once per model."""

    pods_by_identity: dict[tuple[str, str], list[Pod]] = field(default_factory=dict)
    pods_by_address: dict[tuple[str, str], Pod] = field(default_factory=dict)
    pods: dict[tuple[str, str], Pod] = field(default_factory=dict)
    peer: dict[str, list[PeerAuthentication]] = field(default_factory=dict)
    authz: dict[str, list[AuthorizationPolicy]] = field(default_factory=dict)

    @classmethod
    def build(cls, model: Model) -> MeshIndex:
        index = cls(pods=dict(model.pods))
        for pod in model.pods.values():
            index.pods_by_identity.setdefault((pod.namespace, pod.service_account), []).append(pod)
            if pod.ip:
                index.pods_by_address[(pod.namespace, pod.ip)] = pod
        for key in sorted(model.peer_authentications):
            p = model.peer_authentications[key]
            index.peer.setdefault(p.namespace, []).append(p)
        for key in sorted(model.authorization_policies):
            a = model.authorization_policies[key]
            index.authz.setdefault(a.namespace, []).append(a)
        return index

    def workload_labels(self, namespace: str, service_account: str) -> tuple[Labels, ...]:
        pods = self.pods_by_identity.get((namespace, service_account), [])
        return tuple(sorted({p.labels for p in pods}))

    def peer_mode(
        self, namespace: str, labels: tuple[Labels, ...], default: str, warnings: list[str]
    ) -> str:
        policies = self.peer.get(namespace, [])
        workload = [p for p in policies if p.selector and _selects_any(p.selector, labels)]
        wide = [p for p in policies if not p.selector]
        for level in (workload, wide):
            if len(level) > 1:
                names = ", ".join(p.name for p in level)
                warnings.append(
                    f"PeerAuthentications {names} in {namespace} select the same workload; "
                    f"{level[0].name} applies"
                )
            if level and level[0].mode != UNSET:
                return level[0].mode
        return default

    def authorization(
        self, namespace: str, labels: tuple[Labels, ...]
    ) -> tuple[AuthorizationPolicy, ...]:
        return tuple(
            p
            for p in self.authz.get(namespace, [])
            if not p.selector or _selects_any(p.selector, labels)
        )

    def pod_of(self, namespace: str, endpoint: Endpoint) -> Pod | None:
        if endpoint.pod_name is not None:
            return self.pods.get((namespace, endpoint.pod_name))
        found = [self.pods_by_address.get((namespace, a)) for a in endpoint.addresses]
        return found[0] if found and all(p is found[0] for p in found) else None

    def upstream_identities(
        self, model: Model, service: Service, trust_domain: str, default_mode: str
    ) -> tuple[str, ...] | None:
        """The SPIFFE IDs a client must accept from `service`; None if it is not in the mesh."""
        accounts: set[str] = set()
        for endpoint_slice in model.slices.get((service.namespace, service.name), ()):
            for endpoint in endpoint_slice.endpoints:
                pod = self.pod_of(endpoint_slice.namespace, endpoint)
                if pod is None or dict(pod.labels).get(TLS_MODE_LABEL) == NO_SIDECAR:
                    return None
                if self.peer_mode(pod.namespace, (pod.labels,), default_mode, []) == DISABLE:
                    return None
                accounts.add(pod.service_account)
        if not accounts:
            return None
        return tuple(sorted(spiffe_id(trust_domain, service.namespace, a) for a in accounts))


def _selects_any(selector: Labels, labels: Iterable[Labels]) -> bool:
    return any(selects(selector, one) for one in labels)


_last: tuple[weakref.ref[Model], MeshIndex] | None = None


def mesh_index(model: Model) -> MeshIndex:
    """The index of `model`, reused while the same model is translated (one per model)."""
    global _last
    if _last is not None and _last[0]() is model:
        return _last[1]
    index = MeshIndex.build(model)
    _last = (weakref.ref(model), index)
    return index


def cache_clear() -> None:
    global _last
    _last = None
