"""Test clients for the proxy: HTTP/1.1 and HTTP/2 over trio, on pydp's codecs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from pydp.http import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    H1ClientConnection,
    H2ClientConnection,
    InformationalResponse,
    Request,
    Response,
    StreamReset,
)

Headers = list[tuple[bytes, bytes]]


@dataclass
class Answer:
    status: int
    headers: Headers
    body: bytes = b""
    trailers: Headers = field(default_factory=list)
    reset: bool = False
    informational: list[int] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name.encode():
                return value.decode()
        return None

    def names(self) -> list[str]:
        return [key.decode() for key, _ in self.headers if not key.startswith(b":")]


def request_headers(
    method: str, path: str, authority: str, extra: Sequence[tuple[str, str]]
) -> Headers:
    return [
        (b":method", method.encode()),
        (b":scheme", b"http"),
        (b":authority", authority.encode()),
        (b":path", path.encode()),
        *((k.encode(), v.encode()) for k, v in extra),
    ]


class H1Client:
    """One keep-alive HTTP/1.1 connection; requests one at a time."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.codec = H1ClientConnection()
        self.closed = False

    async def request(
        self,
        method: str = "GET",
        path: str = "/",
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | Sequence[bytes] = b"",
        authority: str = "example.com",
        trailers: Headers | None = None,
    ) -> Answer:
        sid = self.codec.open_stream()
        chunks = [body] if isinstance(body, bytes) else list(body)
        chunks = [c for c in chunks if c]
        end = not chunks and trailers is None
        out = self.codec.send(Request(sid, request_headers(method, path, authority, headers), end))
        for chunk in chunks:
            out += self.codec.send(Data(sid, chunk))
        out += self.codec.send(EndOfMessage(sid, trailers or []))
        await self.stream.send_all(out)
        return await self.response()

    async def response(self) -> Answer:
        answer: Answer | None = None
        informational: list[int] = []
        while True:
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                data = b""
            for event in self.codec.receive_data(data):
                if isinstance(event, InformationalResponse):
                    informational.append(event.status)
                elif isinstance(event, Response):
                    answer = Answer(event.status, event.headers, informational=informational)
                elif isinstance(event, Data):
                    assert answer is not None
                    answer.body += event.data
                elif isinstance(event, EndOfMessage):
                    assert answer is not None
                    answer.trailers = event.trailers
                    if self.codec.should_close:
                        self.closed = True
                    return answer
                elif isinstance(event, StreamReset):
                    self.closed = True
                    if answer is None:
                        raise ConnectionError("the proxy closed the connection before answering")
                    answer.reset = True
                    return answer
                elif isinstance(event, ConnectionClosed):
                    self.closed = True
            if not data:
                raise ConnectionError("the proxy closed the connection")


@asynccontextmanager
async def h1_client(address: tuple[str, int]) -> AsyncIterator[H1Client]:
    stream = await trio.open_tcp_stream(*address)
    try:
        yield H1Client(stream)
    finally:
        await stream.aclose()


async def h1_request(address: tuple[str, int], *args: object, **kwargs: object) -> Answer:
    """One request on a new connection."""
    async with h1_client(address) as client:
        return await client.request(*args, **kwargs)  # type: ignore[arg-type]


async def raw_exchange(
    address: tuple[str, int], data: bytes, wait: float = 5.0
) -> tuple[bytes, bool]:
    """Send `data`; return (everything received, whether the proxy closed the connection)
    - reading until EOF, or until nothing arrived for `wait` seconds."""
    stream = await trio.open_tcp_stream(*address)
    try:
        await stream.send_all(data)
        out = b""
        while True:
            with trio.move_on_after(wait):
                try:
                    chunk = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    chunk = b""
                if not chunk:
                    return out, True
                out += chunk
                continue
            return out, False
    finally:
        await stream.aclose()


class H2Client:
    """One HTTP/2 connection (prior knowledge) with concurrent requests."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.codec = H2ClientConnection()
        self.answers: dict[int, Answer] = {}
        self.done: dict[int, trio.Event] = {}
        self.lock = trio.Lock()
        self.goaway = False

    async def write(self, data: bytes = b"") -> None:
        async with self.lock:
            await self.stream.send_all(data + self.codec.data_to_send())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.write()
        task_status.started()
        while True:
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            events = self.codec.receive_data(data)
            for event in events:
                self._on(event)
            await self.write()
            if not data:
                for sid, done in self.done.items():
                    if not done.is_set():
                        self.answers.setdefault(sid, Answer(0, [])).reset = True
                        done.set()
                return

    def _on(self, event: Event) -> None:
        if isinstance(event, InformationalResponse):
            return
        if isinstance(event, Response):
            self.answers[event.stream_id] = Answer(event.status, event.headers)
        elif isinstance(event, Data):
            self.answers[event.stream_id].body += event.data
            self.codec.ack_data(event.stream_id, len(event.data))
        elif isinstance(event, EndOfMessage):
            self.answers[event.stream_id].trailers = event.trailers
            self.done[event.stream_id].set()
        elif isinstance(event, StreamReset):
            self.answers.setdefault(event.stream_id, Answer(0, [])).reset = True
            self.done[event.stream_id].set()
        elif isinstance(event, ConnectionClosed):
            self.goaway = True

    async def request(
        self,
        method: str = "GET",
        path: str = "/",
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        authority: str = "example.com",
        trailers: Headers | None = None,
    ) -> Answer:
        sid = self.codec.open_stream()
        self.done[sid] = trio.Event()
        end = not body and trailers is None
        out = self.codec.send(Request(sid, request_headers(method, path, authority, headers), end))
        if body:
            out += self.codec.send(Data(sid, body))
        if not end:
            out += self.codec.send(EndOfMessage(sid, trailers or []))
        await self.write(out)
        await self.done[sid].wait()
        return self.answers.get(sid, Answer(0, [], reset=True))


@asynccontextmanager
async def h2_client(address: tuple[str, int]) -> AsyncIterator[H2Client]:
    stream = await trio.open_tcp_stream(*address)
    client = H2Client(stream)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(client.run)
            yield client
            nursery.cancel_scope.cancel()
    finally:
        await stream.aclose()
