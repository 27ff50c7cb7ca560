"""One HTTP/2 (prior knowledge) or gRPC request and its reply over a fresh connection."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import trio

from conformance.client.types import Exchange, Reply

READ_SIZE = 65536


async def exchange_h2(stream: trio.abc.Stream, exchange: Exchange) -> Reply:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding=None))
    conn.initiate_connection()
    stream_id = conn.get_next_available_stream_id()
    headers = [
        (":method", exchange.method),
        (":scheme", exchange.scheme),
        (":authority", exchange.authority),
        (":path", exchange.path),
    ]
    if exchange.protocol == "grpc":
        headers += [("content-type", "application/grpc"), ("te", "trailers")]
    headers += list(exchange.headers)
    conn.send_headers(stream_id, headers, end_stream=not exchange.body)
    await stream.send_all(conn.data_to_send())
    reply = Reply()
    body = bytearray()
    pending = memoryview(exchange.body)
    done = False
    while not done:
        while pending:
            window = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if window <= 0:
                break
            chunk, pending = pending[:window], pending[window:]
            conn.send_data(stream_id, bytes(chunk), end_stream=not pending)
        if out := conn.data_to_send():
            await stream.send_all(out)
        data = await stream.receive_some(READ_SIZE)
        if not data:
            reply.error = reply.error or "connection closed before the reply ended"
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                for name, value in _text(event.headers):
                    if name == ":status":
                        reply.status = int(value)
                    else:
                        reply.headers += ((name, value),)
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                body += event.data or b""
                reply.chunks += 1
                conn.acknowledge_received_data(event.flow_controlled_length or 0, stream_id)
            elif isinstance(event, h2.events.TrailersReceived) and event.stream_id == stream_id:
                reply.trailers = tuple(_text(event.headers))
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                done = True
            elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                reply.error = f"stream reset (error code {event.error_code})"
                done = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                reply.error = reply.error or f"connection terminated ({event.error_code})"
                done = True
    if out := conn.data_to_send():
        await stream.send_all(out)
    reply.body = bytes(body)
    return reply


def _text(headers: object) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in headers or []:  # type: ignore[attr-defined]
        out.append((_decode(name), _decode(value)))
    return out


def _decode(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value
