"""The Kubernetes resources the control plane reads, and where the API serves them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    # Served only where its CustomResourceDefinition is installed; absent reads as empty.
    custom: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None) -> str:
        """The collection's URL path, in one namespace or (None) across all of them."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None and self.namespaced:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


SERVICES = Resource("", "v1", "Service", "services")
ENDPOINT_SLICES = Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices")
PODS = Resource("", "v1", "Pod", "pods")
NAMESPACES = Resource("", "v1", "Namespace", "namespaces", namespaced=False)
PEER_AUTHENTICATIONS = Resource(
    "security.xdsmesh.io", "v1alpha1", "PeerAuthentication", "peerauthentications", custom=True
)
AUTHORIZATION_POLICIES = Resource(
    "security.xdsmesh.io", "v1alpha1", "AuthorizationPolicy", "authorizationpolicies", custom=True
)

# What the model is built from (the mesh's own kinds are in api/crds/).
MODEL_RESOURCES = (SERVICES, ENDPOINT_SLICES, PODS, PEER_AUTHENTICATIONS, AUTHORIZATION_POLICIES)
