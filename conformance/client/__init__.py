"""The runner's own HTTP client: HTTP/1.1 (h11), HTTP/2 prior knowledge and gRPC (h2).

One connection per request, so every request is routed afresh and nothing is
pooled between steps. Failures (refused, reset, timed out) come back as a
`Reply` with `error` set rather than as exceptions.
"""

from __future__ import annotations

import time

import h2.exceptions
import h11
import trio

from conformance.client.http1 import exchange_h1
from conformance.client.http2 import exchange_h2
from conformance.client.types import Exchange, Reply

__all__ = ["Exchange", "Reply", "send"]


async def send(
    exchange: Exchange, address: tuple[str, int], *, local_host: str | None = None
) -> Reply:
    """Send one request to `address` and read the whole reply (or the failure)."""
    started = time.monotonic()
    try:
        with trio.fail_after(exchange.timeout):
            stream = await trio.open_tcp_stream(*address, local_address=local_host)
            async with stream:
                if exchange.protocol == "h1":
                    reply = await exchange_h1(stream, exchange)
                else:
                    reply = await exchange_h2(stream, exchange)
    except trio.TooSlowError:
        reply = Reply(error=f"no complete reply within {exchange.timeout}s")
    except ConnectionRefusedError:
        reply = Reply(error="connection refused")
    except (trio.BrokenResourceError, ConnectionResetError, OSError) as e:
        reply = Reply(error=f"connection broken: {type(e).__name__}")
    except (h11.RemoteProtocolError, h2.exceptions.ProtocolError) as e:
        reply = Reply(error=f"protocol error: {e}")
    reply.elapsed = time.monotonic() - started
    return reply
