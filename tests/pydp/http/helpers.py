"""Helpers shared by the HTTP protocol tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from pydp.http import Data, Event, H2ClientConnection, H2ServerConnection

Chunkings = Callable[[bytes], Iterator[list[bytes]]]


class Receiver(Protocol):
    def receive_data(self, data: bytes) -> list[Event]: ...


def whole(data: bytes) -> Iterator[list[bytes]]:
    yield [data]


def bytewise(data: bytes) -> Iterator[list[bytes]]:
    yield [data[i : i + 1] for i in range(len(data))]


def every_offset(data: bytes) -> Iterator[list[bytes]]:
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]


def feed(conn: Receiver, chunks: Sequence[bytes]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        events += conn.receive_data(chunk)
    return merge_data(events)


def merge_data(events: list[Event]) -> list[Event]:
    """Consecutive `Data` of one stream joined: chunking must not matter."""
    out: list[Event] = []
    for event in events:
        last = out[-1] if out else None
        if isinstance(event, Data) and isinstance(last, Data) and last.stream_id == event.stream_id:
            out[-1] = Data(event.stream_id, last.data + event.data)
        else:
            out.append(event)
    return out


class H2Pair:
    """A client and a server wired back to back; what either side's calls
    return is queued for the other until `pump()`."""

    def __init__(
        self, client: H2ClientConnection | None = None, server: H2ServerConnection | None = None
    ) -> None:
        self.client = client or H2ClientConnection()
        self.server = server or H2ServerConnection()
        self.to_server = bytearray()
        self.to_client = bytearray()
        self.pump()

    def client_send(self, *events: Event) -> None:
        for event in events:
            self.to_server += self.client.send(event)

    def server_send(self, *events: Event) -> None:
        for event in events:
            self.to_client += self.server.send(event)

    def server_ack(self, stream_id: int, size: int) -> None:
        self.to_client += self.server.ack_data(stream_id, size)

    def client_ack(self, stream_id: int, size: int) -> None:
        self.to_server += self.client.ack_data(stream_id, size)

    def pump(self) -> tuple[list[Event], list[Event]]:
        """Move bytes both ways until both sides are quiet: (client events, server events)."""
        client_events: list[Event] = []
        server_events: list[Event] = []
        while True:
            self.to_server += self.client.data_to_send()
            self.to_client += self.server.data_to_send()
            if not self.to_server and not self.to_client:
                return merge_data(client_events), merge_data(server_events)
            if self.to_server:
                data, self.to_server = bytes(self.to_server), bytearray()
                server_events += self.server.receive_data(data)
            if self.to_client:
                data, self.to_client = bytes(self.to_client), bytearray()
                client_events += self.client.receive_data(data)
