"""Protocol errors, split by whose fault they are (the h11 model).

`RemoteProtocolError`: the peer sent something we will not accept. On the
server side `error_status_hint` is the status to answer with (Envoy's: 400,
413, 426, 431, 501 ...) and `details` Envoy's response code details string
(`http1.codec_error`, `http1.headers_too_large`, ...), for access logs. On the
client side the hint is 502, as Envoy answers downstream for an upstream
protocol error.

`LocalProtocolError`: we were asked to send something the protocol forbids
(a body longer than its content-length, a response before a request ...);
a bug in the caller.

`stream_id` says where to answer: the stream whose response has not started
yet (send `Response(stream_id, error_status_hint, ...)`, then close), or None
when no response can be sent any more (just close).
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of both kinds; the message names what was wrong."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        details: str = "http1.codec_error",
        stream_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.error_status_hint = status
        self.details = details
        self.stream_id = stream_id


class LocalProtocolError(ProtocolError):
    """The caller tried to send something invalid."""

    def __init__(self, message: str, *, status: int = 500, details: str = "local_error") -> None:
        super().__init__(message, status=status, details=details)


class RemoteProtocolError(ProtocolError):
    """The peer sent something invalid or unsupported."""
