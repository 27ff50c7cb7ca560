"""A scenario as typed data: what to serve, what to start, what to send, what to see.

`load.py` builds these from a YAML file and validates every field; the runner
reads nothing else. Values still hold placeholders (`{backend:NAME}`,
`{port:NAME}`), which `placeholders.py` fills in per run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Headers = tuple[tuple[str, str], ...]
Json = Any


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    protocol: str  # h1 | h2 | grpc | any


@dataclass(frozen=True, slots=True)
class RequestSpec:
    host: str
    method: str = "GET"
    path: str = "/"
    headers: Headers = ()
    body: bytes = b""
    protocol: str = "h1"  # h1 | h2 | grpc
    timeout: float = 10.0


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

    @property
    def needs_injection(self) -> bool:
        return bool(self.xds) or any(_injects(s) for s in self.steps)

    def reason_to_differ(self, dataplane: str) -> str | None:
        for e in self.expect_differs:
            if e.dataplane == dataplane:
                return e.reason
        return None


def _injects(step: Step) -> bool:
    return step.action in ("xds_apply", "xds_delete") or any(_injects(s) for s in step.during)
