"""Reading fields of a scenario file: typed values, or a `ScenarioError` naming the field.

`FieldReader` holds the checks every part of the loader shares (a mapping with
known keys, a list, a non-empty string, a number in range, one of a set, a
backend of the scenario); `RequestReader` adds requests and expectations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conformance.echo.grpc_frame import frame
from conformance.scenario import (
    DEFAULT_CLIENT,
    TLS_CERTIFICATES,
    Client,
    ClientTls,
    Expect,
    RequestSpec,
)

REQUEST_PROTOCOLS = ("h1", "h2", "grpc")

PER_REQUEST = {
    "status",
    "error",
    "backend",
    "headers",
    "upstream",
    "upstream_headers",
    "body",
    "body_contains",
    "body_length",
    "grpc_status",
    "grpc_message",
    "grpc_messages",
    "by_status",
}
AGGREGATE = {"distribution", "statuses", "backends_seen", "distinct_backends"}
UPSTREAM_FIELDS = {
    "method",
    "path",
    "query",
    "authority",
    "protocol",
    "address",
    "body_length",
    "body_sha256",
}


class ScenarioError(ValueError):
    """A scenario file that cannot run; names the file and the field."""

    def __init__(self, source: str, where: str, problem: str) -> None:
        super().__init__(f"{source}: {where}: {problem}")
        self.source = source
        self.where = where
        self.problem = problem


class FieldReader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.backends: set[str] = set()
        self.pods_only = False  # the scenario's modes are [pods]
        self.has_ca = False
        self.clients: dict[str, Client] = {DEFAULT_CLIENT: Client(DEFAULT_CLIENT)}

    def pods_field(self, where: str) -> None:
        """Fail unless the scenario runs only as pods: `where` means nothing on loopback."""
        if not self.pods_only:
            raise self.fail(where, "exists in pods mode only: the scenario needs `modes: [pods]`")

    def ca_field(self, where: str) -> None:
        """Fail unless the scenario turns the mesh's CA on."""
        self.pods_field(where)
        if not self.has_ca:
            raise self.fail(where, "needs the mesh's CA: add `ca:` to the scenario")

    def fail(self, where: str, problem: str) -> ScenarioError:
        return ScenarioError(self.source, where, problem)

    def mapping(self, value: Any, where: str, allowed: set[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"must be a mapping, got {_kind(value)}")
        if allowed is not None:
            unknown = sorted(str(k) for k in value if k not in allowed)
            if unknown:
                raise self.fail(
                    where,
                    f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
                )
        return dict(value)

    def seq(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, f"must be a list, got {_kind(value)}")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"must be a non-empty string, got {value!r}")
        return value

    def number(self, value: Any, where: str, low: float = 0, high: float = 3600) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"must be a number, got {value!r}")
        if not low <= value <= high:
            raise self.fail(where, f"must be between {low} and {high}, got {value}")
        return float(value)

    def integer(self, value: Any, where: str, low: int = 0, high: int = 1_000_000) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be a whole number, got {value!r}")
        if not low <= value <= high:
            raise self.fail(where, f"must be between {low} and {high}, got {value}")
        return value

    def choice(self, value: Any, where: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self.fail(where, f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    def backend_name(self, value: Any, where: str) -> str:
        name = self.text(value, where)
        if name not in self.backends:
            raise self.fail(where, f"names no backend of this scenario: {name!r}")
        return name


class RequestReader(FieldReader):
    def request(self, value: Any, where: str) -> RequestSpec:
        allowed = {"host", "method", "path", "headers", "body", "body_size", "protocol", "timeout"}
        obj = self.mapping(value, where, allowed | {"from", "tls"})
        protocol = self.choice(obj.get("protocol", "h1"), f"{where}.protocol", REQUEST_PROTOCOLS)
        headers = []
        for k, v in self.mapping(obj.get("headers", {}), f"{where}.headers").items():
            if not isinstance(v, str | int | float) or isinstance(v, bool):
                raise self.fail(f"{where}.headers.{k}", f"must be a string or number, got {v!r}")
            headers.append((str(k).lower(), str(v)))
        if "body" in obj and "body_size" in obj:
            raise self.fail(where, "give body or body_size, not both")
        body = self.text(obj["body"], f"{where}.body").encode() if "body" in obj else b""
        if "body_size" in obj:
            body = pattern_body(self.integer(obj["body_size"], f"{where}.body_size", 1, 64 << 20))
        if protocol == "grpc":
            body = frame(body)
        path = self.text(obj.get("path", "/"), f"{where}.path")
        if not path.startswith("/"):
            raise self.fail(f"{where}.path", f"must start with '/', got {path!r}")
        client = DEFAULT_CLIENT
        if "from" in obj:
            self.pods_field(f"{where}.from")
            client = self.text(obj["from"], f"{where}.from")
            if client not in self.clients:
                raise self.fail(
                    f"{where}.from", f"names no client pod of this scenario: {client!r}"
                )
        tls = None
        if "tls" in obj:
            tls = self.client_tls(obj["tls"], f"{where}.tls")
            if self.clients[client].sidecar:
                raise self.fail(
                    f"{where}.tls",
                    f"client pod {client!r} has a sidecar, whose capture would take the "
                    "connection: TLS of the client's own needs a client with `sidecar: false`",
                )
            if protocol == "grpc":
                raise self.fail(f"{where}.tls", "goes with protocol h1 or h2")
        return RequestSpec(
            client=client,
            tls=tls,
            host=self.text(obj.get("host"), f"{where}.host"),
            method=self.text(
                obj.get("method", "POST" if protocol == "grpc" else "GET"), f"{where}.method"
            ),
            path=path,
            headers=tuple(headers),
            body=body,
            protocol=protocol,
            timeout=self.number(obj.get("timeout", 10), f"{where}.timeout", 0.05, 120),
        )

    def client_tls(self, value: Any, where: str) -> ClientTls:
        self.ca_field(where)
        allowed = {"certificate", "trust_domain", "namespace", "service_account"}
        obj = self.mapping(value or {}, where, allowed)
        optional = {
            key: self.text(obj[key], f"{where}.{key}")
            for key in ("trust_domain", "namespace", "service_account")
            if key in obj
        }
        certificate = self.choice(
            obj.get("certificate", "mesh"), f"{where}.certificate", TLS_CERTIFICATES
        )
        return ClientTls(certificate, **optional)

    def expect(self, value: Any, where: str, aggregate: set[str]) -> Expect:
        allowed = PER_REQUEST | aggregate
        obj = self.mapping(value, where, allowed)
        fields: dict[str, Any] = {}
        for key in ("status", "grpc_status", "body_length", "grpc_messages", "distinct_backends"):
            if key in obj:
                fields[key] = self.integer(obj[key], f"{where}.{key}", 0, 1 << 30)
        for key in ("body", "body_contains", "grpc_message"):
            if key in obj:
                if not isinstance(obj[key], str):
                    raise self.fail(f"{where}.{key}", f"must be a string, got {obj[key]!r}")
                fields[key] = obj[key]
        if "error" in obj:
            if not isinstance(obj["error"], bool):
                raise self.fail(f"{where}.error", "must be true or false")
            fields["error"] = obj["error"]
        if "backend" in obj:
            raw = obj["backend"]
            names = raw if isinstance(raw, list) else [raw]
            fields["backend"] = tuple(
                None if n is None else self.backend_name(n, f"{where}.backend") for n in names
            )
        for key in ("headers", "upstream_headers"):
            if key in obj:
                fields[key] = self.header_expectations(obj[key], f"{where}.{key}")
        if "upstream" in obj:
            up = self.mapping(obj["upstream"], f"{where}.upstream", UPSTREAM_FIELDS)
            fields["upstream"] = tuple(sorted((k, str(v)) for k, v in up.items()))
        if "distribution" in obj:
            dist = self.mapping(obj["distribution"], f"{where}.distribution")
            fields["distribution"] = tuple(
                (
                    self.backend_name(k, f"{where}.distribution"),
                    self.number(v, f"{where}.distribution.{k}", 0, 1e9),
                )
                for k, v in dist.items()
            )
            if sum(w for _, w in fields["distribution"]) <= 0:
                raise self.fail(f"{where}.distribution", "needs a positive weight")
        if "statuses" in obj:
            counts = self.mapping(obj["statuses"], f"{where}.statuses")
            fields["statuses"] = tuple(
                sorted(
                    (
                        self.integer(
                            int(k) if str(k).isdigit() else k, f"{where}.statuses", 100, 599
                        ),
                        self.integer(v, f"{where}.statuses.{k}"),
                    )
                    for k, v in counts.items()
                )
            )
        if "by_status" in obj:
            fields["by_status"] = tuple(
                (
                    self.integer(int(k) if str(k).isdigit() else k, f"{where}.by_status", 100, 599),
                    self.expect(v, f"{where}.by_status.{k}", set()),
                )
                for k, v in self.mapping(obj["by_status"], f"{where}.by_status").items()
            )
        if "backends_seen" in obj:
            seen = self.seq(obj["backends_seen"], f"{where}.backends_seen")
            fields["backends_seen"] = tuple(
                sorted(self.backend_name(n, f"{where}.backends_seen") for n in seen)
            )
        return Expect(**fields)

    def header_expectations(self, value: Any, where: str) -> tuple[tuple[str, str | None], ...]:
        out = []
        for k, v in self.mapping(value, where).items():
            if v is not None and (not isinstance(v, str | int | float) or isinstance(v, bool)):
                raise self.fail(f"{where}.{k}", f"must be a string, a number or null, got {v!r}")
            out.append((str(k).lower(), None if v is None else str(v)))
        return tuple(out)


def pattern_body(size: int) -> bytes:
    """A deterministic body of `size` bytes."""
    unit = b"conformance-body-"
    return (unit * (size // len(unit) + 1))[:size]


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
