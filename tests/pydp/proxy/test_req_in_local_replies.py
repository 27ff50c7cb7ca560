"""`%REQ(...)%` in the headers of replies pydp makes itself reads the request, as in Envoy."""

from __future__ import annotations

import trio

from tests.pydp.proxy.harness import FakeRuntime, hcm, routes, serving, to


def _tagged(value: str) -> dict[str, object]:
    return {"header": {"key": "x-tag", "value": value}}


async def _get(proxy: tuple[str, int], path: bytes) -> bytes:
    stream = await trio.open_tcp_stream(*proxy)
    try:
        await stream.send_all(b"GET %s HTTP/1.1\r\nHost: svc\r\nx-id: abc\r\n\r\n" % path)
        head = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in head:
                data = await stream.receive_some(65536)
                assert data, head
                head += data
        return head
    finally:
        await stream.aclose()


async def test_direct_responses_redirects_and_unknown_clusters(runtime: FakeRuntime) -> None:
    direct = {
        "match": {"prefix": "/direct"},
        "direct_response": {"status": 200, "body": {"inline_string": "hi"}},
        "response_headers_to_add": [_tagged("d-%REQ(x-id)%")],
    }
    redirect = {
        "match": {"prefix": "/redirect"},
        "redirect": {"path_redirect": "/elsewhere"},
        "response_headers_to_add": [_tagged("r-%REQ(x-id)%")],
    }
    missing = {**to("nowhere", "/missing"), "response_headers_to_add": [_tagged("m-%REQ(x-id)%")]}
    async with serving(runtime, hcm(routes(direct, redirect, missing))) as proxy:
        replies = [await _get(proxy, path) for path in (b"/direct", b"/redirect", b"/missing")]
    assert [r.split(b"\r\n", 1)[0] for r in replies] == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 301 Moved Permanently",
        b"HTTP/1.1 503 Service Unavailable",
    ]
    for reply, tag in zip(replies, (b"d-abc", b"r-abc", b"m-abc"), strict=True):
        assert b"\r\nx-tag: " + tag + b"\r\n" in reply, reply
