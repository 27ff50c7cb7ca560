"""TLS over a plain socket stream, with the data path's fast reads and writes.

Theory of operation
-------------------
As `trio.SSLStream` does, an `ssl.SSLObject` works on two memory BIOs and
the stream moves bytes between them and the socket; unlike it, nothing goes
through the scheduler unless it has to wait. A read returns what the
`SSLObject` can decrypt from the bytes already fed; when it wants more, the
socket is read through `pydp.sockets.receive_some` (a plain `read(2)` when
the kernel has bytes; the first read after a write yields first, as
`yield_first` does, since an answer cannot be there yet). A write encrypts
into the outgoing BIO and writes the records at once (`write_now`); only
what the kernel leaves over waits, under a lock that keeps records in order
when another task writes meanwhile (taken without a scheduler trip when
free). trio.SSLStream's semantics are kept where pydp relies on them:

- `do_handshake` runs once (reads and writes start it too); an `ssl` error
  there or later raises `trio.BrokenResourceError` from that error, and the
  stream stays broken.
- A write cancelled or failed part-way leaves records half sent: the stream
  is broken from then on.
- End of stream: the peer's close_notify, or the socket's EOF without one
  (a "ragged EOF", which HTTPS accepts, as `https_compatible=True`), reads
  as b"". `aclose` sends close_notify when it can leave at once (Envoy
  sends one too; through trio's stream pydp sent none) and does not wait for
  the peer's.

One task reads at a time (each connection has one reader); writes may come
from several. Bytes the `SSLObject` must send while reading (TLS 1.3
post-handshake messages) take the same ordered path as writes.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

import trio

from pydp.sockets import RECEIVE_SIZE, receive_some, write_now


class TlsStream(trio.abc.Stream):
    """TLS on `transport_stream` (fast on a `trio.SocketStream`; any stream works),
    client or server side (`server_side`)."""

    def __init__(
        self,
        transport_stream: trio.abc.Stream,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
    ) -> None:
        self.transport_stream = transport_stream
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._incoming, self._outgoing, server_side=server_side, server_hostname=server_hostname
        )
        self._send_lock = trio.Lock()
        self._handshake_lock = trio.Lock()
        self._sent = False  # data was written since the last read from the socket
        self._handshaken = False
        self._broken = False
        self._closed = False

    # -- what the handshake settled ------------------------------------------------------

    def getpeercert(self, binary_form: bool = False) -> Any:
        return self._ssl.getpeercert(binary_form)

    def selected_alpn_protocol(self) -> str | None:
        return self._ssl.selected_alpn_protocol()

    def version(self) -> str | None:
        return self._ssl.version()

    def cipher(self) -> tuple[str, str, int] | None:
        return self._ssl.cipher()

    @property
    def session_reused(self) -> bool:
        return self._ssl.session_reused

    # -- the handshake -------------------------------------------------------------------

    async def do_handshake(self) -> None:
        """Complete the handshake (once); raises `trio.BrokenResourceError` from the
        `ssl` error when it fails."""
        self._check()
        if self._handshaken:
            return
        async with self._handshake_lock:  # a second caller waits for the first one's
            self._check()
            if not self._handshaken:
                await self._handshake()

    async def _handshake(self) -> None:
        while True:
            try:
                self._ssl.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                self._broken = True
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self._flush()  # the alert, when ssl produced one
                raise trio.BrokenResourceError(f"TLS handshake failed: {exc}") from exc
            await self._flush()
            data = await receive_some(self.transport_stream, RECEIVE_SIZE)
            if not data:
                self._broken = True
                raise trio.BrokenResourceError("the peer closed during the TLS handshake")
            self._incoming.write(data)
        self._handshaken = True
        await self._flush()

    # -- data ----------------------------------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if not self._handshaken or self._broken or self._closed:
            await self.do_handshake()
        size = max_bytes or RECEIVE_SIZE
        ssl_object = self._ssl
        while True:
            try:
                return ssl_object.read(size)
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""  # close_notify, or EOF without one
            except ssl.SSLError as exc:
                self._broken = True
                raise trio.BrokenResourceError(f"TLS error: {exc}") from exc
            if self._outgoing.pending:
                await self._flush()
            if self._incoming.eof:
                return b""
            sent, self._sent = self._sent, False
            data = await receive_some(self.transport_stream, RECEIVE_SIZE, yield_first=sent)
            if data:
                self._incoming.write(data)
            else:
                self._incoming.write_eof()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if not self._handshaken or self._broken or self._closed:
            await self.do_handshake()
        try:
            self._ssl.write(data)
        except ssl.SSLError as exc:
            self._broken = True
            raise trio.BrokenResourceError(f"TLS error: {exc}") from exc
        await self._flush()
        self._sent = True

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport_stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        """Send close_notify if it can leave at once (no other write in progress, room in
        the socket), without waiting for the peer's, then close the socket."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._handshaken and not self._broken and not self._send_lock.locked():
                with contextlib.suppress(ssl.SSLError):
                    self._ssl.unwrap()  # queues our close_notify, then wants the peer's
                out = self._outgoing.read()
                if out:
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        write_now(self.transport_stream, out)
        finally:
            await self.transport_stream.aclose()

    # -- internals -----------------------------------------------------------------------

    def _check(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the TLS stream was closed")
        if self._broken:
            raise trio.BrokenResourceError("the TLS stream is broken")

    async def _flush(self) -> None:
        """Write the records waiting in the outgoing BIO, in order with other writers."""
        out = self._outgoing.read()
        if not out:
            return
        lock = self._send_lock
        try:
            try:
                lock.acquire_nowait()
            except trio.WouldBlock:
                await lock.acquire()
        except BaseException:
            self._broken = True  # these records are lost: the peer cannot decrypt what follows
            raise
        try:
            rest = write_now(self.transport_stream, out)
            if rest:
                await self.transport_stream.send_all(rest)
        except BaseException:
            self._broken = True
            raise
        finally:
            lock.release()
