"""Requests the codec rejects: Envoy's status, body and connection close."""

from __future__ import annotations

import pytest

from tests.pydp.proxy.backend import Backends
from tests.pydp.proxy.client import h2_client, raw_exchange
from tests.pydp.proxy.harness import FakeRuntime, hcm, routes, serving, to

MANY = b"GET / HTTP/1.1\r\nhost: x\r\n" + b"".join(b"h%d: v\r\n" % i for i in range(120)) + b"\r\n"
HUGE = b"GET / HTTP/1.1\r\nhost: x\r\nx: " + b"a" * 70000 + b"\r\n\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "status_line", "body"),
    [
        (b"GET /foo HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n", b"400 Bad Request", b"Bad Request"),
        (b"GET /foo HTTP/1.1\r\n\r\n", b"400 Bad Request", b""),
        (b"GET /foo HTTP/1.0\r\n\r\n", b"426 Upgrade Required", b"Upgrade Required"),
        (b"CONNECT x:443 HTTP/1.1\r\nhost: x:443\r\n\r\n", b"404 Not Found", b""),
        (MANY, b"431 Request Header Fields Too Large", b"Request Header Fields Too Large"),
        (HUGE, b"431 Request Header Fields Too Large", b"Request Header Fields Too Large"),
        (
            b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n"
            b"transfer-encoding: chunked\r\n\r\n",
            b"400 Bad Request",
            b"Bad Request",
        ),
    ],
)
async def test_rejected_requests(
    runtime: FakeRuntime,
    backends: Backends,
    request_bytes: bytes,
    status_line: bytes,
    body: bytes,
) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        data, closed = await raw_exchange(proxy, request_bytes)
    head, _, received_body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status_line + b"\r\n")
    assert b"\r\nconnection: close" in head
    assert b"\r\nserver: envoy" in head
    assert received_body == body
    if body:
        assert b"\r\ncontent-type: text/plain" in head
    assert closed
    assert backend.received == []
    ((_, entry),) = runtime.entries
    assert entry.response_code == int(status_line[:3])
    assert runtime.counter("http.ingress.downstream_rq_4xx") == 1


async def test_a_bad_body_after_a_good_head(runtime: FakeRuntime, backends: Backends) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    request = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        data, closed = await raw_exchange(proxy, request)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert data.endswith(b"Bad Request")
    assert closed
    assert "DPE" in runtime.entries[0][1].response_flags


async def test_h2_stream_error_is_answered_on_its_stream(runtime: FakeRuntime) -> None:
    many = [(f"h{i}", "v") for i in range(120)]
    async with serving(runtime, hcm(routes())) as proxy, h2_client(proxy) as client:
        rejected = await client.request(headers=many)
        after = await client.request()
    assert rejected.status == 431
    assert rejected.body == b"Request Header Fields Too Large"
    assert after.status == 404
    assert [e.response_code for _, e in runtime.entries] == [431, 404]
    assert runtime.entries[0][1].response_flags == "DPE"
