"""One HTTP/1.1 request and its reply over a fresh connection, with h11."""

from __future__ import annotations

import h11
import trio

from conformance.client.types import Exchange, Reply

READ_SIZE = 65536
CLOSED_BEFORE_REPLY = "connection closed before a reply"


async def exchange_h1(stream: trio.abc.Stream, exchange: Exchange) -> Reply:
    conn = h11.Connection(h11.CLIENT)
    headers = [("host", exchange.authority), *exchange.headers]
    if exchange.body or exchange.method in ("POST", "PUT", "PATCH"):
        headers.append(("content-length", str(len(exchange.body))))
    request = h11.Request(method=exchange.method, target=exchange.path, headers=headers)
    await stream.send_all(conn.send(request))
    if exchange.body:
        await stream.send_all(conn.send(h11.Data(data=exchange.body)))
    await stream.send_all(conn.send(h11.EndOfMessage()))
    reply = Reply()
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(READ_SIZE)
            if not data and reply.status is None:
                reply.error = CLOSED_BEFORE_REPLY
                break
            conn.receive_data(bytes(data))
            continue
        if isinstance(event, h11.Response):
            reply.status = event.status_code
            reply.headers = tuple(
                (n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers
            )
            if exchange.method == "HEAD":
                break
        elif isinstance(event, h11.InformationalResponse):
            continue
        elif isinstance(event, h11.Data):
            body += event.data
            reply.chunks += 1
        elif isinstance(event, h11.EndOfMessage):
            break
        elif isinstance(event, h11.ConnectionClosed):
            reply.error = CLOSED_BEFORE_REPLY
            break
    reply.body = bytes(body)
    return reply
