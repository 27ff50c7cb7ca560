"""The typed model between sources and translation.

Sources (the manifests folder, the Kubernetes API) turn objects into these
frozen, hashable values after validating them; the translator reads nothing
else. Being hashable lets the translator memoize per object, so a change
recomputes only what it touches.

Endpoint selection follows kube-proxy: ready endpoints serve; endpoints that
are serving but terminating are used only when a port has no ready endpoint;
all others are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]


def labels_of(mapping: Mapping[str, str] | None) -> Labels:
    """Labels as a sorted tuple, so that objects holding them stay hashable."""
    return tuple(sorted((mapping or {}).items()))


@dataclass(frozen=True, slots=True)
class ObjectKey:
    """Identifies an object by kind, namespace and name."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class ServicePort:
    port: int
    name: str = ""
    target_port: int | str | None = None
    protocol: str = "TCP"
    app_protocol: str | None = None


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    ports: tuple[ServicePort, ...]
    cluster_ip: str | None = None
    selector: Labels = ()
    labels: Labels = ()

    @property
    def key(self) -> ObjectKey:
        return ObjectKey("Service", self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class EndpointPort:
    port: int
    name: str = ""
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class Endpoint:
    addresses: tuple[str, ...]
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    zone: str | None = None
    node_name: str | None = None
    pod_name: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointSlice:
    namespace: str
    name: str
    service_name: str
    ports: tuple[EndpointPort, ...]
    endpoints: tuple[Endpoint, ...]
    address_type: str = "IPv4"

    @property
    def key(self) -> ObjectKey:
        return ObjectKey("EndpointSlice", self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class Pod:
    namespace: str
    name: str
    service_account: str = "default"
    labels: Labels = ()
    ip: str | None = None

    @property
    def key(self) -> ObjectKey:
        return ObjectKey("Pod", self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class ResolvedEndpoint:
    """One address:port that serves a Service port, with its locality."""

    address: str
    port: int
    zone: str = ""
    node_name: str = ""


MTLS_MODES = ("UNSET", "DISABLE", "PERMISSIVE", "STRICT")
POLICY_ACTIONS = ("ALLOW", "DENY")


@dataclass(frozen=True, slots=True)
class PeerAuthentication:
    """Whether a workload's inbound traffic must be mTLS (Istio's PeerAuthentication).

    An empty selector covers the whole namespace; otherwise the Pods whose
    labels include it. UNSET inherits from the namespace, then the mesh.
    """

    namespace: str
    name: str
    mode: str = "UNSET"
    selector: Labels = ()

    @property
    def key(self) -> ObjectKey:
        return ObjectKey("PeerAuthentication", self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class PolicySource:
    """Who calls: every non-empty field must match (a field matches if any value does).

    Principals are SPIFFE IDs (`spiffe://` may be left out, as Istio allows)
    with at most one `*` at the start or the end; namespaces likewise.
    """

    principals: tuple[str, ...] = ()
    not_principals: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    not_namespaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyOperation:
    """What is called: every non-empty field must match (a field matches if any value does).

    Paths are exact, or have one `*` at the start or the end.
    """

    methods: tuple[str, ...] = ()
    not_methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    not_paths: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    not_ports: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """Matches when one of `sources` and one of `operations` match (empty: any)."""

    sources: tuple[PolicySource, ...] = ()
    operations: tuple[PolicyOperation, ...] = ()


@dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    """Who may call a workload (Istio's AuthorizationPolicy, ALLOW and DENY).

    Targets the whole namespace with an empty selector, else the Pods whose
    labels include it. DENY policies are checked first; when ALLOW policies
    select a workload, a request none of their rules match is denied; a
    workload no policy selects allows everything.
    """

    namespace: str
    name: str
    action: str = "ALLOW"
    selector: Labels = ()
    rules: tuple[PolicyRule, ...] = ()

    @property
    def key(self) -> ObjectKey:
        return ObjectKey("AuthorizationPolicy", self.namespace, self.name)


MeshPolicy = PeerAuthentication | AuthorizationPolicy


def split_pattern(value: str) -> tuple[str, str | None]:
    """A policy pattern as (its text, where its `*` is: 'any', 'prefix', 'suffix' or None).

    `*` alone is 'any'; `abc*` is ('abc', 'prefix'); `*abc` is ('abc', 'suffix').
    """
    if value == "*":
        return "", "any"
    if value.endswith("*"):
        return value[:-1], "prefix"
    if value.startswith("*"):
        return value[1:], "suffix"
    return value, None


def selects(selector: Labels, labels: Labels) -> bool:
    """Whether labels include every pair of a selector (the empty selector selects all)."""
    have = dict(labels)
    return all(have.get(k) == v for k, v in selector)


@dataclass(frozen=True)
class Model:
    """Everything the translator needs: a consistent, validated view of the world.

    `slices` maps (namespace, service name) to that Service's EndpointSlices,
    sorted by name so that equal inputs give equal models. The mesh policies
    are keyed by (namespace, name).
    """

    services: Mapping[tuple[str, str], Service] = field(default_factory=dict)
    slices: Mapping[tuple[str, str], tuple[EndpointSlice, ...]] = field(default_factory=dict)
    pods: Mapping[tuple[str, str], Pod] = field(default_factory=dict)
    peer_authentications: Mapping[tuple[str, str], PeerAuthentication] = field(default_factory=dict)
    authorization_policies: Mapping[tuple[str, str], AuthorizationPolicy] = field(
        default_factory=dict
    )

    @classmethod
    def build(
        cls,
        services: Iterable[Service] = (),
        slices: Iterable[EndpointSlice] = (),
        pods: Iterable[Pod] = (),
        policies: Iterable[MeshPolicy] = (),
    ) -> Model:
        by_service: dict[tuple[str, str], list[EndpointSlice]] = {}
        for s in slices:
            by_service.setdefault((s.namespace, s.service_name), []).append(s)
        policies = list(policies)
        return cls(
            services={(s.namespace, s.name): s for s in services},
            slices={k: tuple(sorted(v, key=lambda s: s.name)) for k, v in by_service.items()},
            pods={(p.namespace, p.name): p for p in pods},
            peer_authentications={
                (p.namespace, p.name): p for p in policies if isinstance(p, PeerAuthentication)
            },
            authorization_policies={
                (p.namespace, p.name): p for p in policies if isinstance(p, AuthorizationPolicy)
            },
        )

    def sorted_services(self) -> list[Service]:
        return [self.services[k] for k in sorted(self.services)]


def resolve_endpoints(
    service: Service, port: ServicePort, slices: Iterable[EndpointSlice]
) -> tuple[ResolvedEndpoint, ...]:
    """The endpoints that serve `port` of `service`, by kube-proxy's rules.

    A slice port matches a Service port by name (both empty for an unnamed
    single port). Ready endpoints win; if there are none, serving-but-
    terminating ones are used; the result is sorted and free of duplicates.
    """
    ready: set[ResolvedEndpoint] = set()
    fallback: set[ResolvedEndpoint] = set()
    for s in slices:
        if s.address_type not in ("IPv4", "IPv6"):
            continue
        target = next((p.port for p in s.ports if p.name == port.name), None)
        if target is None:
            continue
        for ep in s.endpoints:
            if ep.ready and not ep.terminating:
                bucket = ready
            elif ep.serving and ep.terminating:
                bucket = fallback
            else:
                continue
            for address in ep.addresses:
                bucket.add(ResolvedEndpoint(address, target, ep.zone or "", ep.node_name or ""))
    chosen = ready or fallback
    return tuple(sorted(chosen, key=lambda e: (e.address, e.port, e.zone, e.node_name)))
