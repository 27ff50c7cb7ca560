"""The echo backend over real loopback sockets: HTTP/1.1, HTTP/2, gRPC, every control header."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest
import trio

from conformance.client import Exchange, Reply, send
from conformance.echo.app import EchoApp, stream_chunk
from conformance.echo.grpc_frame import frame, unframe
from conformance.echo.server import serve

PROTOCOLS = ["h1", "h2"]


@pytest.fixture
async def echo() -> AsyncIterator[tuple[str, int]]:
    async with trio.open_nursery() as nursery:
        [bound] = await nursery.start(partial(serve, EchoApp("e1"), [("127.0.0.1", 0)]))
        yield bound
        nursery.cancel_scope.cancel()


async def call(address: tuple[str, int], protocol: str = "h1", **fields: Any) -> Reply:
    fields.setdefault("authority", "svc.test")
    headers = tuple(fields.pop("headers", {}).items())
    return await send(Exchange(protocol=protocol, headers=headers, **fields), address)


def seen(reply: Reply) -> dict[str, Any]:
    assert reply.status is not None, reply.error
    body: dict[str, Any] = json.loads(reply.body)
    return body


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_echoes_what_it_received(echo: tuple[str, int], protocol: str) -> None:
    reply = await call(
        echo, protocol, method="POST", path="/a/b?x=1&y=2", body=b"hello", headers={"x-k": "v"}
    )
    assert reply.status == 200
    assert dict(reply.headers)["x-echo-backend"] == "e1"
    body = seen(reply)
    assert body["name"] == "e1"
    assert body["address"] == f"127.0.0.1:{echo[1]}"
    assert body["protocol"] == ("HTTP/1.1" if protocol == "h1" else "HTTP/2")
    assert (body["method"], body["path"], body["query"]) == ("POST", "/a/b", "x=1&y=2")
    assert body["authority"] == "svc.test"
    assert body["headers"]["x-k"] == ["v"]
    assert body["body"] == {
        "length": 5,
        "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_status_and_added_headers(echo: tuple[str, int], protocol: str) -> None:
    reply = await call(
        echo, protocol, headers={"x-echo-status": "503", "x-echo-header-x-extra": "yes"}
    )
    assert reply.status == 503
    assert ("x-extra", "yes") in reply.headers
    assert seen(reply)["headers"]["x-echo-status"] == ["503"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_delay(echo: tuple[str, int], protocol: str) -> None:
    started = time.monotonic()
    reply = await call(echo, protocol, headers={"x-echo-delay-ms": "150"})
    assert reply.status == 200
    assert time.monotonic() - started >= 0.15
    late = await call(echo, protocol, headers={"x-echo-delay-ms": "500"}, timeout=0.1)
    assert late.status is None
    assert late.error is not None and "within 0.1s" in late.error


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_reset_closes_without_an_answer(echo: tuple[str, int], protocol: str) -> None:
    reply = await call(echo, protocol, headers={"x-echo-reset": "1"})
    assert reply.status is None
    assert reply.error is not None


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_stream(echo: tuple[str, int], protocol: str) -> None:
    reply = await call(echo, protocol, headers={"x-echo-stream": "40x20000"})
    assert reply.status == 200
    assert reply.body == b"".join(stream_chunk(i, 20000) for i in range(40))
    assert "content-length" not in dict(reply.headers)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_large_request_body(echo: tuple[str, int], protocol: str) -> None:
    reply = await call(echo, protocol, method="PUT", body=b"z" * 3_000_000)
    assert seen(reply)["body"]["length"] == 3_000_000


async def test_fail_first_counts_per_key_and_stats(echo: tuple[str, int]) -> None:
    control = {"x-echo-fail-first": "2", "x-echo-key": "k", "x-echo-status": "502"}
    statuses = [(await call(echo, headers=control)).status for _ in range(4)]
    assert statuses == [502, 502, 200, 200]
    other = await call(echo, "h2", headers={"x-echo-fail-first": "1", "x-echo-key": "j"})
    assert other.status == 503
    stats = seen(await call(echo, path="/__echo/stats"))
    assert stats["keys"] == {"k": 4, "j": 1}
    assert stats["requests"] == 5
    assert stats["protocols"] == {"HTTP/1.1": 4, "HTTP/2": 1}


async def test_only_applies_controls_to_named_backends(echo: tuple[str, int]) -> None:
    assert (await call(echo, headers={"x-echo-status": "500", "x-echo-only": "e2"})).status == 200
    assert (
        await call(echo, headers={"x-echo-status": "500", "x-echo-only": "e2,e1"})
    ).status == 500


async def test_bad_control_is_a_400_naming_the_header(echo: tuple[str, int]) -> None:
    reply = await call(echo, headers={"x-echo-stream": "lots"})
    assert reply.status == 400
    assert b"x-echo-stream" in reply.body


async def test_grpc_unary_and_stream(echo: tuple[str, int]) -> None:
    unary = await call(
        echo, "grpc", method="POST", path="/conformance.Echo/Unary", body=frame(b"ping")
    )
    assert unary.status == 200
    assert dict(unary.trailers) == {"grpc-status": "0"}
    [message] = unframe(unary.body)
    assert json.loads(message)["grpc_messages"] == 1
    stream = await call(
        echo,
        "grpc",
        method="POST",
        path="/conformance.Echo/ServerStream",
        body=frame(b"a") + frame(b"b"),
        headers={"x-echo-stream": "3x7"},
    )
    messages = unframe(stream.body)
    assert json.loads(messages[0])["grpc_messages"] == 2
    assert messages[1:] == [stream_chunk(i, 7) for i in range(3)]


async def test_grpc_errors(echo: tuple[str, int]) -> None:
    failed = await call(
        echo,
        "grpc",
        method="POST",
        path="/conformance.Echo/Unary",
        body=frame(b""),
        headers={"x-echo-grpc-status": "14", "x-echo-grpc-message": "down"},
    )
    assert dict(failed.trailers) == {"grpc-status": "14", "grpc-message": "down"}
    assert failed.body == b""
    unknown = await call(
        echo, "grpc", method="POST", path="/conformance.Echo/Nope", body=frame(b"")
    )
    assert dict(unknown.trailers)["grpc-status"] == "12"


async def test_protocol_restriction() -> None:
    async with trio.open_nursery() as nursery:
        [h1_only] = await nursery.start(partial(serve, EchoApp("a"), [("127.0.0.1", 0)], "h1"))
        [h2_only] = await nursery.start(partial(serve, EchoApp("b"), [("127.0.0.1", 0)], "h2"))
        assert (await call(h1_only, "h1")).status == 200
        assert (await call(h1_only, "h2")).status is None
        assert (await call(h2_only, "h2")).status == 200
        assert (await call(h2_only, "h1")).status is None
        nursery.cancel_scope.cancel()


def test_runs_as_a_process() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "conformance.echo", "--name", "p1", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("listening 127.0.0.1:")
            port = int(line.strip().rsplit(":", 1)[1])
            reply = trio.run(partial(call, ("127.0.0.1", port), path="/x"))
            assert seen(reply)["name"] == "p1"
        finally:
            proc.terminate()
            proc.wait(10)
