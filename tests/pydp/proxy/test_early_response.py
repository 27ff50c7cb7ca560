"""An upstream answering before the request ended, as Envoy relays it: no
`x-envoy-upstream-service-time` (Envoy times from the end of the request) and,
to an HTTP/1.1 client, `connection: close` (the connection cannot be reused)."""

from __future__ import annotations

import trio

from tests.pydp.proxy.harness import FakeRuntime, hcm, routes, serving, to

REPLY = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 6\r\n\r\ndenied"


async def _answer_at_once(stream: trio.SocketStream) -> None:
    """A backend that answers as soon as it has the request head."""
    head = b""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(65536)
    await stream.send_all(REPLY)
    with trio.move_on_after(5):
        while await stream.receive_some(65536):
            pass
    await stream.aclose()


async def test_a_reply_before_the_request_ended(runtime: FakeRuntime) -> None:
    async with trio.open_nursery() as nursery:
        [listener] = await trio.open_tcp_listeners(0, host="127.0.0.1")
        backend = listener.socket.getsockname()[:2]
        nursery.start_soon(trio.serve_listeners, _answer_at_once, [listener])
        runtime.add_cluster("c", [backend])
        async with serving(runtime, hcm(routes(to("c")))) as proxy:
            client = await trio.open_tcp_stream(*proxy)
            request = b"POST / HTTP/1.1\r\nHost: svc\r\ncontent-length: 5\r\n\r\n"
            await client.send_all(request)  # the body is not sent yet
            answer = b""
            with trio.fail_after(5):
                while b"denied" not in answer:
                    answer += await client.receive_some(65536)
            head = answer.split(b"\r\n\r\n")[0].lower()
            assert head.startswith(b"http/1.1 403")
            assert b"\r\nconnection: close" in head
            assert b"x-envoy-upstream-service-time" not in head
            await client.aclose()
        nursery.cancel_scope.cancel()
