"""Throughput of the protocol layer alone (no sockets), printed, never asserted.

Run: `python -m bench.pydp_codec` from the repository root. One
"request" is what a proxy's codecs do for a typical 200-byte GET: the
downstream side parses it and serializes the response, the upstream side
serializes it and parses the response.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydp.http import (
    Data,
    EndOfMessage,
    H1ClientConnection,
    H1ServerConnection,
    H2ClientConnection,
    H2ServerConnection,
    Request,
    Response,
)

GET = (
    b"GET /api/v1/items?id=12345&view=full HTTP/1.1\r\n"
    b"Host: backend.default.svc.cluster.local:8080\r\n"
    b"User-Agent: curl/8.5.0\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n"
    b"X-Request-Id: 0b7f9c1e-2d4a-4c3e-9f1a-55aa\r\n\r\n"
)
RESPONSE = (
    b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{"ok": true}\n'
)
BODY = b'{"ok": true}\n'
RESPONSE_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"13")]


def downstream_h1(n: int) -> None:
    conn = H1ServerConnection()
    for _ in range(n):
        request = conn.receive_data(GET)[0]
        sid = request.stream_id  # type: ignore[union-attr]
        conn.send(Response(sid, 200, RESPONSE_HEADERS))
        conn.send(Data(sid, BODY))
        conn.send(EndOfMessage(sid))
        conn.next_events()


def upstream_h1(n: int) -> None:
    conn = H1ClientConnection()
    headers = [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", b"backend.default.svc.cluster.local:8080"),
        (b":path", b"/api/v1/items?id=12345&view=full"),
        (b"user-agent", b"curl/8.5.0"),
        (b"accept", b"*/*"),
        (b"x-request-id", b"0b7f9c1e-2d4a-4c3e-9f1a-55aa"),
    ]
    for _ in range(n):
        sid = conn.open_stream()
        conn.send(Request(sid, headers, True))
        conn.send(EndOfMessage(sid))
        conn.receive_data(RESPONSE)


def proxy_h1(n: int) -> None:
    downstream = H1ServerConnection()
    upstream = H1ClientConnection()
    for _ in range(n):
        request = downstream.receive_data(GET)[0]
        assert isinstance(request, Request)
        up = upstream.open_stream()
        upstream.send(Request(up, request.headers, request.end_stream))
        upstream.send(EndOfMessage(up))
        sid = request.stream_id
        for event in upstream.receive_data(RESPONSE):
            if isinstance(event, Response):
                downstream.send(Response(sid, event.status, event.headers, event.end_stream))
            elif isinstance(event, Data):
                downstream.send(Data(sid, event.data))
            elif isinstance(event, EndOfMessage):
                downstream.send(EndOfMessage(sid))
        downstream.next_events()


def downstream_h2(n: int) -> None:
    client = H2ClientConnection()
    server = H2ServerConnection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    headers = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"/")]
    wires = []
    for _ in range(n):
        sid = client.open_stream()
        wires.append(client.send(Request(sid, headers, True)))
    start = time.perf_counter()
    for wire in wires:
        for event in server.receive_data(wire):
            if isinstance(event, Request):
                sid = event.stream_id
                server.send(Response(sid, 200, RESPONSE_HEADERS))
                server.send(Data(sid, BODY))
                server.send(EndOfMessage(sid))
    _h2_elapsed.append(time.perf_counter() - start)


_h2_elapsed: list[float] = []


def rate(run: Callable[[int], None], n: int) -> float:
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        run(n)
        elapsed = _h2_elapsed.pop() if _h2_elapsed else time.perf_counter() - start
        best = max(best, n / elapsed)
    return best


def main() -> None:
    print(f"request {len(GET)} bytes, response {len(RESPONSE)} bytes; best of 3, one core")
    print(
        f"h1 downstream (parse request, serialize response): {rate(downstream_h1, 50_000):,.0f}/s"
    )
    print(f"h1 upstream (serialize request, parse response):   {rate(upstream_h1, 50_000):,.0f}/s")
    print(f"h1 proxy (both legs, events forwarded):            {rate(proxy_h1, 50_000):,.0f}/s")
    print(f"h2 downstream (parse request, serialize response): {rate(downstream_h2, 5_000):,.0f}/s")


if __name__ == "__main__":
    main()
