"""What the echo backend answers, with no I/O: a request in, a reply out.

`EchoApp.handle` reads the control headers (`control.py`), counts the request,
and builds an `EchoReply` that the protocol adapters carry out: wait `delay`,
reset the connection if `reset`, else send the status, the headers, each body
part (one part: a plain body; several: a stream) and any trailers.

The body of an ordinary reply is JSON describing the request as received:
`name`, `address` (the local address that accepted it), `protocol`, `method`,
`path`, `query`, `authority`, `headers` (name -> list of values, in order),
`body` (`sha256` and `length`) and, for gRPC, `grpc_messages`. Every reply
carries `x-echo-backend: <name>`, so the client knows who answered even when
the body is a stream. `GET /__echo/stats` returns the counters instead.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

from conformance.echo.control import Control, ControlError, parse_control
from conformance.echo.grpc_frame import FrameError, frame, unframe

STATS_PATH = "/__echo/stats"
BACKEND_HEADER = "x-echo-backend"
GRPC_SERVICE = "/conformance.Echo/"
GRPC_UNARY = GRPC_SERVICE + "Unary"
GRPC_STREAM = GRPC_SERVICE + "ServerStream"
HTTP1 = "HTTP/1.1"
HTTP2 = "HTTP/2"

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class EchoRequest:
    protocol: str
    method: str
    target: str
    authority: str
    headers: Headers
    body: bytes
    local_address: str


@dataclass(frozen=True, slots=True)
class EchoReply:
    status: int
    headers: Headers
    parts: tuple[bytes, ...] = ()
    trailers: Headers = ()
    delay: float = 0.0
    reset: bool = False


@dataclass
class EchoApp:
    name: str
    requests: int = 0
    by_key: Counter[str] = field(default_factory=Counter)
    by_protocol: Counter[str] = field(default_factory=Counter)

    def handle(self, request: EchoRequest) -> EchoReply:
        path, _, query = request.target.partition("?")
        if path == STATS_PATH and request.method == "GET":
            return self._json(200, self.stats())
        try:
            control = parse_control(request.headers)
        except ControlError as e:
            return self._text(400, f"{e}\n")
        self.requests += 1
        self.by_protocol[request.protocol] += 1
        if control.key:
            self.by_key[control.key] += 1
        if not control.applies_to(self.name):
            control = Control()
        failing = control.status
        if control.fail_first:
            failing = (
                (control.status or 503) if self.by_key[control.key] <= control.fail_first else None
            )
        described = self.describe(request, path, query)
        if _is_grpc(request):
            reply = self._grpc(request, path, control, described)
        else:
            reply = self._http(control, failing, described)
        parts, headers = reply.parts, reply.headers + control.headers
        if reply.status in (204, 304) or request.method == "HEAD":
            parts, headers = (), tuple(h for h in headers if h[0] != "content-length")
        return EchoReply(
            status=reply.status,
            headers=headers,
            parts=parts,
            trailers=reply.trailers,
            delay=control.delay_ms / 1000,
            reset=control.reset,
        )

    def stats(self) -> dict[str, object]:
        return {
            "name": self.name,
            "requests": self.requests,
            "keys": dict(self.by_key),
            "protocols": dict(self.by_protocol),
        }

    def describe(self, request: EchoRequest, path: str, query: str) -> dict[str, object]:
        headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            headers.setdefault(name, []).append(value)
        described: dict[str, object] = {
            "name": self.name,
            "address": request.local_address,
            "protocol": request.protocol,
            "method": request.method,
            "path": path,
            "query": query,
            "authority": request.authority,
            "headers": headers,
            "body": {
                "sha256": hashlib.sha256(request.body).hexdigest(),
                "length": len(request.body),
            },
        }
        return described

    def _http(
        self, control: Control, failing: int | None, described: dict[str, object]
    ) -> EchoReply:
        status = failing or 200
        if control.stream is not None:
            chunks, size = control.stream
            headers = ((BACKEND_HEADER, self.name), ("content-type", "application/octet-stream"))
            return EchoReply(status, headers, tuple(stream_chunk(i, size) for i in range(chunks)))
        return self._json(status, described)

    def _grpc(
        self, request: EchoRequest, path: str, control: Control, described: dict[str, object]
    ) -> EchoReply:
        headers = ((BACKEND_HEADER, self.name), ("content-type", "application/grpc"))
        try:
            described["grpc_messages"] = len(unframe(request.body))
        except FrameError as e:
            return EchoReply(200, headers, (), _grpc_trailers(13, f"bad request framing: {e}"))
        if path not in (GRPC_UNARY, GRPC_STREAM):
            return EchoReply(200, headers, (), _grpc_trailers(12, f"unknown method {path}"))
        if control.grpc_status:
            return EchoReply(
                200, headers, (), _grpc_trailers(control.grpc_status, control.grpc_message)
            )
        parts = [frame(_dump(described))]
        if path == GRPC_STREAM and control.stream is not None:
            chunks, size = control.stream
            parts += [frame(stream_chunk(i, size)) for i in range(chunks)]
        return EchoReply(200, headers, tuple(parts), _grpc_trailers(0, control.grpc_message))

    def _json(self, status: int, value: object) -> EchoReply:
        body = _dump(value)
        return EchoReply(
            status,
            (
                (BACKEND_HEADER, self.name),
                ("content-type", "application/json"),
                ("content-length", str(len(body))),
            ),
            (body,),
        )

    def _text(self, status: int, text: str) -> EchoReply:
        body = text.encode()
        return EchoReply(
            status,
            (
                (BACKEND_HEADER, self.name),
                ("content-type", "text/plain"),
                ("content-length", str(len(body))),
            ),
            (body,),
        )


def stream_chunk(index: int, size: int) -> bytes:
    """Chunk `index` of a streamed body: its index in hex, repeated to `size` bytes."""
    pattern = f"{index:08x}".encode()
    return (pattern * (size // len(pattern) + 1))[:size]


def _is_grpc(request: EchoRequest) -> bool:
    return request.protocol == HTTP2 and any(
        n == "content-type" and v.startswith("application/grpc") for n, v in request.headers
    )


def _grpc_trailers(status: int, message: str) -> Headers:
    trailers: Headers = (("grpc-status", str(status)),)
    return trailers + ((("grpc-message", message),) if message else ())


def _dump(value: object) -> bytes:
    return json.dumps(value, sort_keys=True).encode()
