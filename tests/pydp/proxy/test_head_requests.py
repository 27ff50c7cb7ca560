"""HEAD through the proxy to an HTTP/1.1 client: the head a GET would get, framed as Envoy
frames it (`transfer-encoding: chunked` without a content-length), and no body."""

from __future__ import annotations

from collections.abc import Callable

import trio

from tests.pydp.proxy.backend import Backends, Received, Reply
from tests.pydp.proxy.client import h2_client
from tests.pydp.proxy.harness import H2_OPTIONS, FakeRuntime, hcm, routes, serving, to

HEAD = b"HEAD %s HTTP/1.1\r\nHost: svc\r\n\r\n"
GET = b"GET %s HTTP/1.1\r\nHost: svc\r\n\r\n"


def _end_of_head(buffer: bytes) -> int | None:
    at = buffer.find(b"\r\n\r\n")
    return at + 4 if at >= 0 else None


class RawClient:
    """Raw bytes on one connection: HEAD answers end with their head."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def head(self, path: bytes = b"/") -> dict[bytes, bytes]:
        await self.stream.send_all(HEAD % path)
        return _fields(await self._until(_end_of_head))

    async def get(self, path: bytes = b"/") -> bytes:
        """A GET on the same connection: its whole answer (content-length framed)."""
        await self.stream.send_all(GET % path)
        head = await self._until(_end_of_head)
        length = int(_fields(head)[b"content-length"])
        return head + await self._until(lambda b: length if len(b) >= length else None)

    async def _until(self, end_of: Callable[[bytes], int | None]) -> bytes:
        """The buffered bytes up to `end_of(buffer)`, reading until it says where."""
        while True:
            end = end_of(self.buffer)
            if end is not None:
                out, self.buffer = self.buffer[:end], self.buffer[end:]
                return out
            with trio.fail_after(5):
                data = await self.stream.receive_some(65536)
            assert data, f"the proxy closed the connection; got {self.buffer!r}"
            self.buffer += data


def _fields(head: bytes) -> dict[bytes, bytes]:
    lines = head.split(b"\r\n")
    fields = dict(line.split(b": ", 1) for line in lines[1:] if line)
    fields[b":status"] = lines[0].split(b" ")[1]
    return fields


def _backend_reply(received: Received) -> Reply:
    """HEAD: no body, and a content-length only for /length; GET: a JSON body."""
    headers = [(b"content-type", b"application/json")]
    if received.header(":method") != "HEAD":
        return Reply(200, [*headers, (b"content-length", b"10")], b'{"a": "b"}')
    if received.path == "/length":
        headers.append((b"content-length", b"17"))
    return Reply(200, headers)


async def _exchange(proxy: tuple[str, int], path: bytes) -> tuple[dict[bytes, bytes], bytes]:
    stream = await trio.open_tcp_stream(*proxy)
    try:
        client = RawClient(stream)
        head = await client.head(path)
        after = await client.get(path)
        return head, after
    finally:
        await stream.aclose()


async def test_head_without_length_is_chunked_from_either_upstream_protocol(
    runtime: FakeRuntime, backends: Backends
) -> None:
    h1 = await backends.start(_backend_reply)
    h2 = await backends.start(_backend_reply, protocol="h2")
    runtime.add_cluster("h1", [h1.address])
    runtime.add_cluster("h2", [h2.address], **H2_OPTIONS)
    table = routes(to("h2", "/h2"), to("h1"))
    async with serving(runtime, hcm(table)) as proxy:
        for path, backend in ((b"/", h1), (b"/h2", h2)):
            head, after = await _exchange(proxy, path)
            assert head[b":status"] == b"200"
            assert head[b"content-type"] == b"application/json"
            assert head[b"transfer-encoding"] == b"chunked"
            assert b"content-length" not in head
            assert after.startswith(b"HTTP/1.1 200 OK\r\n")
            assert after.endswith(b'{"a": "b"}')
            assert [r.header(":method") for r in backend.received] == ["HEAD", "GET"]


async def test_head_with_length_keeps_it(runtime: FakeRuntime, backends: Backends) -> None:
    h1 = await backends.start(_backend_reply)
    runtime.add_cluster("h1", [h1.address])
    async with serving(runtime, hcm(routes(to("h1")))) as proxy:
        head, after = await _exchange(proxy, b"/length")
    assert head[b"content-length"] == b"17"
    assert b"transfer-encoding" not in head
    assert after.endswith(b'{"a": "b"}')


async def test_head_local_replies(runtime: FakeRuntime) -> None:
    direct = {
        "match": {"prefix": "/direct"},
        "direct_response": {"status": 200, "body": {"inline_string": "hello"}},
    }
    empty = {"match": {"prefix": "/empty"}, "direct_response": {"status": 200}}
    nothing = {"match": {"prefix": "/none"}, "direct_response": {"status": 204}}
    async with serving(runtime, hcm(routes(direct, empty, nothing))) as proxy:
        stream = await trio.open_tcp_stream(*proxy)
        client = RawClient(stream)
        with_body = await client.head(b"/direct")
        without = await client.head(b"/empty")
        no_content = await client.head(b"/none")
        await stream.aclose()
    assert (with_body[b"content-length"], with_body[b"content-type"]) == (b"5", b"text/plain")
    assert b"transfer-encoding" not in with_body
    assert without[b"transfer-encoding"] == b"chunked"
    assert b"content-length" not in without
    assert no_content[b":status"] == b"204"
    assert b"transfer-encoding" not in no_content and b"content-length" not in no_content


async def test_head_from_an_http2_client_has_no_framing_header(
    runtime: FakeRuntime, backends: Backends
) -> None:
    h1 = await backends.start(_backend_reply)
    runtime.add_cluster("h1", [h1.address])
    async with serving(runtime, hcm(routes(to("h1")))) as proxy, h2_client(proxy) as client:
        answer = await client.request("HEAD", "/")
    assert answer.status == 200
    assert answer.header("content-type") == "application/json"
    assert answer.header("transfer-encoding") is None
    assert answer.body == b""
