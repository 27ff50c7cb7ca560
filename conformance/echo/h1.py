"""HTTP/1.1 on one connection, with h11: requests in, `EchoApp` replies out (keep-alive)."""

from __future__ import annotations

from collections.abc import Sequence

import h11
import trio

from conformance.echo.app import HTTP1, EchoApp, EchoRequest
from conformance.echo.sockets import abort

MAX_HEADER_BYTES = 64 * 1024
READ_SIZE = 65536


async def serve_h1(stream: trio.SocketStream, app: EchoApp, local: str, initial: bytes) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    conn.receive_data(initial)
    while True:
        try:
            received = await _read_request(stream, conn)
        except h11.RemoteProtocolError as e:
            await _bad_request(stream, conn, str(e))
            return
        if received is None:
            return
        head, body = received
        request = EchoRequest(
            protocol=HTTP1,
            method=head.method.decode("latin-1"),
            target=head.target.decode("latin-1"),
            authority=_host(head.headers),
            headers=tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in head.headers),
            body=body,
            local_address=local,
        )
        reply = app.handle(request)
        if reply.delay:
            await trio.sleep(reply.delay)
        if reply.reset:
            await abort(stream)
            return
        headers = list(reply.headers)
        await stream.send_all(conn.send(h11.Response(status_code=reply.status, headers=headers)))
        for part in reply.parts:
            await stream.send_all(conn.send(h11.Data(data=part)))
        await stream.send_all(conn.send(h11.EndOfMessage()))
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            return
        conn.start_next_cycle()


async def _read_request(
    stream: trio.SocketStream, conn: h11.Connection
) -> tuple[h11.Request, bytes] | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(READ_SIZE))
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            return head, bytes(body)
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def _bad_request(stream: trio.SocketStream, conn: h11.Connection, why: str) -> None:
    if conn.our_state is not h11.IDLE:
        return
    body = f"bad request: {why}\n".encode()
    headers = [("content-type", "text/plain"), ("content-length", str(len(body)))]
    try:
        await stream.send_all(conn.send(h11.Response(status_code=400, headers=headers)))
        await stream.send_all(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
    except (h11.LocalProtocolError, trio.BrokenResourceError):
        pass


def _host(headers: Sequence[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"host":
            return value.decode("latin-1")
    return ""
