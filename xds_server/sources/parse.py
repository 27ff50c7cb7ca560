"""One Kubernetes object, as a plain dict, into a model object.

The dict has the shape the Kubernetes API and a YAML manifest share, so the
manifests folder and a Kubernetes watch can both call `parse_object`. It
applies the defaults the API server fills in and a hand-written manifest
leaves out (namespace `default`, protocol TCP, targetPort equal to port,
service account `default`, the EndpointSlice conditions), so that the same
object gives the same model from either source.

Objects of kinds the mesh does not read (Deployments, ConfigMaps, another
group's `Service`) come back as `Skipped`; objects it reads are validated
field by field, and all of their problems are raised together in one
`InvalidObject`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from xds_server.model import (
    AuthorizationPolicy,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    Labels,
    PeerAuthentication,
    Pod,
    Service,
    ServicePort,
)
from xds_server.sources.fields import (
    Check,
    FieldPath,
    FieldProblem,
    Reader,
    dns1035_label,
    dns_label,
    dns_subdomain,
    ip_address,
    one_of,
    render_path,
    show,
)
from xds_server.sources.policies import authorization_policy, peer_authentication

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROTOCOLS = ("TCP", "UDP", "SCTP")

Parsed = Service | EndpointSlice | Pod | PeerAuthentication | AuthorizationPolicy

# (API group, kind) -> the version the mesh reads.
_VERSIONS = {
    ("", "Service"): "v1",
    ("discovery.k8s.io", "EndpointSlice"): "v1",
    ("", "Pod"): "v1",
    ("security.xdsmesh.io", "PeerAuthentication"): "v1alpha1",
    ("security.xdsmesh.io", "AuthorizationPolicy"): "v1alpha1",
}
_NAMESPACED = {kind for _, kind in _VERSIONS}
_HINTS = {
    ("", "Endpoints"): "the mesh reads EndpointSlices, not Endpoints",
    **{
        (istio, kind): f"the mesh reads security.xdsmesh.io/v1alpha1 {kind}, of the same shape"
        for istio in ("security.istio.io",)
        for kind in ("PeerAuthentication", "AuthorizationPolicy")
    },
}


@dataclass(frozen=True, slots=True)
class Skipped:
    """An object the mesh does not use, and why."""

    what: str
    reason: str

    def __str__(self) -> str:
        return f"{self.what}: skipped ({self.reason})"


class InvalidObject(Exception):
    """An object the mesh reads, with everything that is wrong with it."""

    def __init__(self, what: str, problems: Sequence[FieldProblem]) -> None:
        super().__init__(f"{what}: " + "; ".join(map(str, problems)))
        self.what = what
        self.problems = tuple(problems)


def describe(obj: object) -> str:
    """`Kind namespace/name`, as far as a possibly broken object allows."""
    if not isinstance(obj, Mapping):
        return ""
    kind = obj.get("kind")
    kind = kind if isinstance(kind, str) and kind else "object"
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name = meta.get("name")
    name = name if isinstance(name, str) and name else "(no name)"
    namespace = meta.get("namespace")
    if isinstance(namespace, str) and namespace:
        return f"{kind} {namespace}/{name}"
    if kind in _NAMESPACED:
        return f"{kind} default/{name}"
    return f"{kind} {name}"


def parse_object(obj: object) -> Parsed | Skipped:
    """The model object for `obj`; raises `InvalidObject` naming every bad field."""
    what = describe(obj)
    if not isinstance(obj, Mapping):
        problem = FieldProblem((), f"must be a mapping (a Kubernetes object), got {show(obj)}")
        raise InvalidObject(what, [problem])
    r = Reader()
    api_version = r.string(obj, ("apiVersion",), required=True)
    kind = r.string(obj, ("kind",), required=True)
    if api_version is None or kind is None:
        raise InvalidObject(what, r.problems)
    group, _, version = api_version.rpartition("/")
    wanted = _VERSIONS.get((group, kind))
    if wanted is None:
        return Skipped(
            what, _HINTS.get((group, kind), f"the mesh does not read {api_version} {kind}")
        )
    if version != wanted:
        expected = f"{group}/{wanted}" if group else wanted
        r.fail(("apiVersion",), f"{kind} is read as {expected!r}, got {api_version!r}")
        raise InvalidObject(what, r.problems)

    meta = r.mapping(obj, ("metadata",), required=True)
    name_check = dns1035_label if kind == "Service" else dns_subdomain
    name = r.string(meta, ("metadata", "name"), name_check, required=True) or ""
    namespace = r.string(meta, ("metadata", "namespace"), dns_label) or "default"
    labels = r.labels(meta, ("metadata", "labels"))
    parsed = _PARSERS[kind](r, obj, namespace, name, labels)
    if r.problems:
        raise InvalidObject(what, r.problems)
    if isinstance(parsed, str):
        return Skipped(what, parsed)
    return parsed


def _service(
    r: Reader, obj: Mapping[str, object], namespace: str, name: str, labels: Labels
) -> Service | str:
    spec = r.mapping(obj, ("spec",), required=True)
    types = one_of("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
    if r.string(spec, ("spec", "type"), types) == "ExternalName":
        return "type ExternalName is not supported by the mesh"
    raw_ip = r.string(spec, ("spec", "clusterIP"), _cluster_ip)
    headless = raw_ip == "None"
    ports: list[ServicePort] = []
    unnamed: list[FieldPath] = []
    for path, item in r.items(spec, ("spec", "ports"), required=not headless):
        port = r.port(item, (*path, "port"), required=True)
        if item.get("name") in (None, ""):
            unnamed.append((*path, "name"))
        ports.append(
            ServicePort(
                port=port or 0,
                name=r.string(item, (*path, "name"), dns_label) or "",
                target_port=r.port_or_name(item, (*path, "targetPort")) or port,
                protocol=r.string(item, (*path, "protocol"), one_of(*PROTOCOLS)) or "TCP",
                app_protocol=r.string(item, (*path, "appProtocol")),
            )
        )
    if spec.get("ports") == [] and not headless:
        r.fail(("spec", "ports"), "must list at least one port")
    if len(ports) > 1:
        for path in unnamed:
            r.fail(path, "required when a Service has several ports")
    names = [(p.name, f"port name {p.name!r}") if p.name else None for p in ports]
    _unique(r, ("spec", "ports"), "name", names)
    numbers = [((p.port, p.protocol), f"port {p.port}/{p.protocol}") for p in ports]
    _unique(r, ("spec", "ports"), "port", [n if n[0][0] else None for n in numbers])
    return Service(
        namespace=namespace,
        name=name,
        ports=tuple(ports),
        cluster_ip=None if raw_ip in (None, "", "None") else raw_ip,
        selector=r.labels(spec, ("spec", "selector")),
        labels=labels,
    )


def _cluster_ip(value: str) -> str | None:
    return None if value in ("", "None") else ip_address()(value)


def _endpoint_slice(
    r: Reader, obj: Mapping[str, object], namespace: str, name: str, labels: Labels
) -> EndpointSlice:
    service_name = dict(labels).get(SERVICE_NAME_LABEL)
    if service_name is None:
        r.fail(("metadata", "labels", SERVICE_NAME_LABEL), "required: the name of its Service")
    address_type = r.string(obj, ("addressType",), one_of("IPv4", "IPv6", "FQDN"), required=True)
    ports = [
        EndpointPort(
            port=r.port(item, (*path, "port"), required=True) or 0,
            name=r.string(item, (*path, "name"), dns_label) or "",
            protocol=r.string(item, (*path, "protocol"), one_of(*PROTOCOLS)) or "TCP",
        )
        for path, item in r.items(obj, ("ports",))
    ]
    _unique(r, ("ports",), "name", [(p.name, f"port name {p.name!r}") for p in ports])
    address_check = {"IPv4": ip_address(4), "IPv6": ip_address(6), "FQDN": dns_subdomain}
    check = address_check.get(address_type or "")
    endpoints = [
        _endpoint(r, path, item, check)
        for path, item in r.items(obj, ("endpoints",), required=True)
    ]
    return EndpointSlice(
        namespace=namespace,
        name=name,
        service_name=service_name or "",
        ports=tuple(ports),
        endpoints=tuple(endpoints),
        address_type=address_type or "IPv4",
    )


def _endpoint(
    r: Reader, path: FieldPath, item: Mapping[str, object], check: Check | None
) -> Endpoint:
    addresses = r.strings(item, (*path, "addresses"), check)
    if item.get("addresses") == []:
        r.fail((*path, "addresses"), "must list at least one address")
    conditions = r.mapping(item, (*path, "conditions"))
    ready = r.boolean(conditions, (*path, "conditions", "ready"))
    serving = r.boolean(conditions, (*path, "conditions", "serving"))
    terminating = r.boolean(conditions, (*path, "conditions", "terminating"))
    ref = r.mapping(item, (*path, "targetRef"))
    ref_kind = r.string(ref, (*path, "targetRef", "kind"))
    ref_name = r.string(ref, (*path, "targetRef", "name"), dns_subdomain)
    ready = True if ready is None else ready
    return Endpoint(
        addresses=tuple(addresses),
        ready=ready,
        serving=ready if serving is None else serving,
        terminating=bool(terminating),
        zone=r.string(item, (*path, "zone")),
        node_name=r.string(item, (*path, "nodeName"), dns_subdomain),
        pod_name=ref_name if ref_kind == "Pod" else None,
    )


def _pod(r: Reader, obj: Mapping[str, object], namespace: str, name: str, labels: Labels) -> Pod:
    spec = r.mapping(obj, ("spec",))
    account = r.string(spec, ("spec", "serviceAccountName"), dns_subdomain) or r.string(
        spec, ("spec", "serviceAccount"), dns_subdomain
    )
    status = r.mapping(obj, ("status",))
    return Pod(
        namespace=namespace,
        name=name,
        service_account=account or "default",
        labels=labels,
        ip=r.string(status, ("status", "podIP"), ip_address()),
    )


def _unique(
    r: Reader, path: FieldPath, field: str, keys: Sequence[tuple[object, str] | None]
) -> None:
    """Reports each (key, description) whose key an earlier item of the list has."""
    first: dict[object, int] = {}
    for i, entry in enumerate(keys):
        if entry is None:
            continue
        key, text = entry
        if key in first:
            r.fail((*path, i, field), f"{text} is also used by {render_path((*path, first[key]))}")
        else:
            first[key] = i


_PARSERS: dict[str, Callable[[Reader, Mapping[str, object], str, str, Labels], Parsed | str]] = {
    "Service": _service,
    "EndpointSlice": _endpoint_slice,
    "Pod": _pod,
    "PeerAuthentication": peer_authentication,
    "AuthorizationPolicy": authorization_policy,
}


def check_slice_ports(endpoint_slice: EndpointSlice, service: Service) -> list[FieldProblem]:
    """Ports of the slice that name no port of its Service (they would match nothing)."""
    names = {p.name for p in service.ports}
    known = ", ".join(repr(p.name) for p in service.ports if p.name)
    known = known or ("one unnamed port" if service.ports else "no ports")
    problems = []
    for i, port in enumerate(endpoint_slice.ports):
        if port.name not in names:
            wanted = f"port named {port.name!r}" if port.name else "unnamed port"
            message = f"Service {service.namespace}/{service.name} has no {wanted} (it has {known})"
            problems.append(FieldProblem(("ports", i, "name"), message))
    return problems
