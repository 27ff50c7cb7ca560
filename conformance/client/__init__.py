"""The runner's own HTTP client: HTTP/1.1 (h11), HTTP/2 prior knowledge and gRPC (h2).

One connection per request, so every request is routed afresh and nothing is
pooled between steps. Failures (refused, reset, timed out) come back as a
`Reply` with `error` set rather than as exceptions.

Over TLS (`tls`, a client context) a server that refuses the client does so
with an alert, a reset or a close, during the handshake or (TLS 1.3) just
after it, whichever the timing gives; so every end of the connection before
a reply is the one error `TLS_REFUSED`. The client's own refusal of the
server's certificate is `TLS_UNTRUSTED` and the reason.
"""

from __future__ import annotations

import ssl
import time
from typing import Any

import h2.exceptions
import h11
import trio

from conformance.client.http1 import exchange_h1
from conformance.client.http2 import exchange_h2
from conformance.client.types import Exchange, Reply

__all__ = ["TLS_REFUSED", "TLS_UNTRUSTED", "Exchange", "Reply", "send"]

TLS_REFUSED = "tls: the server ended the connection before a reply"
TLS_UNTRUSTED = "tls: the server's certificate is not trusted"


_KEPT = ("tls:", "no complete reply")  # errors of a TLS exchange reported as they are


class _Untrusted(Exception):
    pass


async def send(
    exchange: Exchange,
    address: tuple[str, int],
    *,
    local_host: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> Reply:
    """Send one request to `address` and read the whole reply (or the failure)."""
    started = time.monotonic()
    try:
        with trio.fail_after(exchange.timeout):
            sock = await trio.open_tcp_stream(*address, local_address=local_host)
            stream: trio.abc.Stream = sock if tls is None else await _handshake(sock, tls)
            async with stream:
                if exchange.protocol == "h1":
                    reply = await exchange_h1(stream, exchange)
                else:
                    reply = await exchange_h2(stream, exchange)
    except _Untrusted as e:
        reply = Reply(error=f"{TLS_UNTRUSTED}: {e}")
    except trio.TooSlowError:
        reply = Reply(error=f"no complete reply within {exchange.timeout}s")
    except ConnectionRefusedError:
        reply = Reply(error="connection refused")
    except (trio.BrokenResourceError, ConnectionResetError, OSError) as e:
        reply = Reply(error=f"connection broken: {type(e).__name__}")
    except (h11.RemoteProtocolError, h2.exceptions.ProtocolError) as e:
        reply = Reply(error=f"protocol error: {e}")
    if tls is not None and reply.status is None and not (reply.error or "").startswith(_KEPT):
        reply.error = TLS_REFUSED
    reply.elapsed = time.monotonic() - started
    return reply


async def _handshake(stream: trio.SocketStream, context: ssl.SSLContext) -> trio.SSLStream[Any]:
    secure = trio.SSLStream(stream, context, https_compatible=True)
    try:
        await secure.do_handshake()
    except trio.BrokenResourceError as e:
        await stream.aclose()
        if isinstance(e.__cause__, ssl.SSLCertVerificationError):
            raise _Untrusted(e.__cause__.verify_message) from None
        raise  # the server's refusal: `send` reports it as TLS_REFUSED, as every other end
    return secure
