"""What the client sends (`Exchange`) and what it got back (`Reply`)."""

from __future__ import annotations

from dataclasses import dataclass, field

Headers = tuple[tuple[str, str], ...]
PROTOCOLS = ("h1", "h2", "grpc")


@dataclass(frozen=True, slots=True)
class Exchange:
    method: str = "GET"
    path: str = "/"
    authority: str = ""
    headers: Headers = ()
    body: bytes = b""
    protocol: str = "h1"
    timeout: float = 10.0
    scheme: str = "http"  # HTTP/2 `:scheme`; https over TLS


@dataclass(slots=True)
class Reply:
    status: int | None = None
    headers: Headers = ()
    body: bytes = b""
    trailers: Headers = ()
    error: str | None = None
    elapsed: float = 0.0
    chunks: int = field(default=0)
