"""HTTP/1.1 response heads (client side) into `Response` events.

1xx heads become `InformationalResponse` (101 is an error: pydp never asks
to upgrade); 204 and 304 responses and responses to HEAD have no body; a
response framed by neither Content-Length nor chunked runs until EOF
(`until_close`). Errors carry the status hint 502.
"""

from __future__ import annotations

from pydp.http.events import InformationalResponse, Response
from pydp.http.h1_parse import MessageReader, UnsolicitedError
from pydp.http.headers import STATUS_BYTES
from pydp.http.limits import H1Options, Limits


class ResponseReader(MessageReader):
    """Client side: parses the response to the request in flight."""

    def __init__(self, limits: Limits, options: H1Options) -> None:
        super().__init__(limits, options, client_side=True)
        self.expecting = False
        self.head_request = False
        self.interim = False
        self.head_done = False
        self.finished = False
        self.until_close = False

    def expect(self, stream_id: int, head_request: bool) -> None:
        self.stream_id = stream_id
        self.expecting = True
        self.head_request = head_request
        self.head_done = False
        self.finished = False
        self.until_close = False

    def on_message_begin(self) -> None:
        self.idle = -self.chunk_len
        if not self.expecting:
            raise UnsolicitedError
        self.in_message = True
        self._reset_head()

    def on_headers_complete(self) -> None:
        self.idle = -self.chunk_len
        parser = self.parser
        status: int = parser.get_status_code()
        headers = [(b":status", STATUS_BYTES.get(status) or str(status).encode())]
        headers += self.headers
        framed = self.chunked or self.content_length is not None
        if status < 200:
            if status < 100 or status == 101:
                raise self.error(f"unexpected status {status}", 502, "http1.codec_error")
            if framed and (self.chunked or self.content_length):
                raise self.error(
                    f"{status} response with a body", 502, "http1.content_length_not_allowed"
                )
            self.interim = True
            self.events.append(InformationalResponse(self.stream_id, status, headers))
            return
        if status == 204 and (self.chunked or self.content_length):
            detail = "transfer_encoding" if self.chunked else "content_length"
            raise self.error("204 response with a body", 502, f"http1.{detail}_not_allowed")
        no_body = self.head_request or status in (204, 304)
        self.until_close = not no_body and not framed
        self.keep_alive = self.keep_alive_for(parser.get_http_version()) and not self.until_close
        end_stream = no_body or (not self.chunked and self.content_length == 0)
        self.events.append(Response(self.stream_id, status, headers, end_stream))
        self.begin_body()
        if self.head_request:
            self.head_done = True
            self._complete()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            self.in_message = False
            return
        if not self.head_done:
            self._complete()

    def _complete(self) -> None:
        self.expecting = False
        self.finished = True
        self.end_message()
