"""A scenario as typed data: what to serve, what to start, what to send, what to see.

`load.py` builds these from a YAML file and validates every field; the runner
reads nothing else. Values still hold placeholders (`{backend:NAME}`,
`{port:NAME}`), which `placeholders.py` fills in per run.

Pods mode adds who is who: each backend pod's namespace, service account and
labels, the client pods (`Client`, with or without a sidecar), the mesh's CA
(`MeshCA`), a request's client pod and the TLS it speaks itself (`ClientTls`),
and whether the scenario also runs across data planes (`cross`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api import contract

Headers = tuple[tuple[str, str], ...]
Json = Any


DEFAULT_CLIENT = "conformance"  # the client pod of pods mode (node id conformance.default)
TLS_CERTIFICATES = ("mesh", "foreign", "none")  # who signs a TLS client's certificate


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    protocol: str  # h1 | h2 | grpc | any
    # Pods mode: the backend pod's identity and labels (None: `app: <name>`).
    namespace: str = "default"
    service_account: str = "default"
    labels: tuple[tuple[str, str], ...] | None = None

    @property
    def pod_labels(self) -> dict[str, str]:
        return dict(self.labels) if self.labels is not None else {"app": self.name}


@dataclass(frozen=True, slots=True)
class Client:
    """A client pod of pods mode: requests name it with `from`."""

    name: str
    namespace: str = "default"
    service_account: str = "default"
    labels: tuple[tuple[str, str], ...] = ()
    sidecar: bool = True  # False: no sidecar and no capture, as a pod outside the mesh


@dataclass(frozen=True, slots=True)
class MeshCA:
    """The mesh's CA is on: `xds-server serve --ca-dir` with a root the run makes."""

    cert_ttl: str | None = None  # --cert-ttl, e.g. 3s
    mtls_mode: str | None = None  # --mtls-mode: STRICT | PERMISSIVE | DISABLE
    trust_domain: str = contract.CLUSTER_DOMAIN  # --trust-domain

    def serve_flags(self) -> tuple[str, ...]:
        flags: list[str] = []
        if self.cert_ttl is not None:
            flags += ["--cert-ttl", self.cert_ttl]
        if self.mtls_mode is not None:
            flags += ["--mtls-mode", self.mtls_mode]
        if self.trust_domain != contract.CLUSTER_DOMAIN:
            flags += ["--trust-domain", self.trust_domain]
        return tuple(flags)


@dataclass(frozen=True, slots=True)
class ClientTls:
    """TLS the client application speaks itself, straight to a pod (it has no sidecar).

    The client trusts the mesh's root for the server's certificate (no host
    name check) and presents a certificate for the SPIFFE ID
    `spiffe://<trust_domain>/ns/<namespace>/sa/<service_account>` signed by
    `certificate`: the mesh's CA, a foreign CA, or none at all. None in a
    field means the mesh's trust domain, or the client pod's namespace and
    service account.
    """

    certificate: str = "mesh"  # mesh | foreign | none
    trust_domain: str | None = None
    namespace: str | None = None
    service_account: str | None = None


@dataclass(frozen=True, slots=True)
class RequestSpec:
    host: str
    method: str = "GET"
    path: str = "/"
    headers: Headers = ()
    body: bytes = b""
    protocol: str = "h1"  # h1 | h2 | grpc
    timeout: float = 10.0
    client: str = DEFAULT_CLIENT  # pods mode: the client pod that sends it (`from`)
    tls: ClientTls | None = None  # pods mode: TLS of the client's own


@dataclass(frozen=True, slots=True)
class Expect:
    """What must be observed; every field left None is not checked."""

    status: int | None = None
    error: bool | None = None
    backend: tuple[str | None, ...] | None = None  # one of these answered (None: no backend)
    headers: tuple[tuple[str, str | None], ...] = ()  # response headers; None means absent
    upstream: tuple[tuple[str, str], ...] = ()  # fields of what the backend saw
    upstream_headers: tuple[tuple[str, str | None], ...] = ()
    body: str | None = None
    body_contains: str | None = None
    body_length: int | None = None
    grpc_status: int | None = None
    grpc_message: str | None = None
    grpc_messages: int | None = None
    by_status: tuple[tuple[int, Expect], ...] = ()  # more checks for replies with that status
    # Over all the requests of a step:
    distribution: tuple[tuple[str, float], ...] = ()
    statuses: tuple[tuple[int, int], ...] = ()
    backends_seen: tuple[str, ...] | None = None
    distinct_backends: int | None = None
    # Other steps:
    requests: int | None = None  # `count` steps
    xds: tuple[tuple[str, str], ...] = ()  # `xds_state` steps: type -> ACKED | NACKED

    def per_request(self) -> bool:
        return any(
            v not in (None, ())
            for v in (
                self.status,
                self.error,
                self.backend,
                self.headers,
                self.upstream,
                self.upstream_headers,
                self.body,
                self.body_contains,
                self.body_length,
                self.grpc_status,
                self.grpc_message,
                self.grpc_messages,
                self.by_status,
            )
        )


@dataclass(frozen=True, slots=True)
class Step:
    """One step: `action` names what it does; the other fields serve that action."""

    id: str
    action: str
    name: str = ""
    request: RequestSpec | None = None
    repeat: int = 1
    concurrency: int = 1
    timeout: float = 10.0
    expect: Expect = field(default_factory=Expect)
    objects: tuple[Json, ...] = ()  # apply / delete / xds_apply / xds_delete
    target: str = ""  # stop_backend / start_backend: the backend; count: the key
    seconds: float = 0.0  # sleep / restart_control_plane (time down)
    renewals: int = 0  # renewals: how many new certificates every sidecar must ACK
    during: tuple[Step, ...] = ()  # traffic
    anonymous_backends: bool = False  # request: record backend counts without names

    @property
    def label(self) -> str:
        return self.name or self.action


@dataclass(frozen=True, slots=True)
class ExpectedDifference:
    dataplane: str
    reason: str


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    source: str
    backends: tuple[Backend, ...]
    manifests: tuple[Json, ...]
    steps: tuple[Step, ...]
    docs: tuple[str, ...] = ()
    xds: tuple[Json, ...] = ()
    expect_differs: tuple[ExpectedDifference, ...] = ()
    ports: tuple[str, ...] = ()  # every `{port:NAME}` the scenario uses
    modes: tuple[str, ...] = ("loopback",)  # where it runs: loopback, pods (`--pods`)
    ca: MeshCA | None = None  # pods mode: the mesh's CA, mTLS between sidecars
    clients: tuple[Client, ...] = ()  # pods mode: client pods besides the default
    cross: bool = False  # pods mode: also run clients on one data plane, backends on another

    @property
    def needs_injection(self) -> bool:
        return bool(self.xds) or any(_injects(s) for s in self.steps)

    def client(self, name: str) -> Client:
        """The client pod `name`: one of `clients`, or the default client."""
        for c in self.clients:
            if c.name == name:
                return c
        if name == DEFAULT_CLIENT:
            return Client(DEFAULT_CLIENT)
        raise KeyError(f"scenario {self.name}: no client pod {name!r}")

    @property
    def client_pods(self) -> tuple[Client, ...]:
        """Every client pod of pods mode: the default one first, then the others."""
        others = tuple(c for c in self.clients if c.name != DEFAULT_CLIENT)
        return (self.client(DEFAULT_CLIENT), *others)

    def reason_to_differ(self, run: str) -> str | None:
        """Why run `run` may differ: an entry naming it, or (across data planes,
        `client->server`) naming either data plane of it."""
        for e in self.expect_differs:
            if e.dataplane == run:
                return e.reason
        for e in self.expect_differs:
            if e.dataplane in run.split(CROSS):
                return e.reason
        return None


CROSS = "->"  # a run across data planes: `<clients' data plane>-><backends' data plane>`


def _injects(step: Step) -> bool:
    return step.action in ("xds_apply", "xds_delete") or any(_injects(s) for s in step.during)
