"""One downstream request: the connection manager's part (Envoy's `ActiveStream`).

Theory of operation
-------------------
`handle_request` runs a request to its end on the task that calls it (the
HTTP/1.1 connection's own task, or one task per HTTP/2 stream): answer
`Expect: 100-continue` locally, sanitize the headers, route, then reply
locally (no route, redirect, direct response, refused upgrade, unknown
cluster) or hand over to the `Forwarder` (the router filter).

Timeouts are deadlines on one cancel scope around all of it (`Deadlines`):
the connection manager's `request_timeout` (until the request is complete
or the response starts), the stream idle timeout (moved forward on every
read and write; the route's `idle_timeout` replaces the listener's once
routed) and the route timeout (armed when the request is complete). When the
scope fires, whichever deadline has passed picks the answer: 408 `request
timeout`, 408/504 `stream timeout` (SI), 504 `upstream request timeout` (UT)
- or a reset when the response had already started.

Errors arriving from the body pump (the client reset the stream, or sent a
malformed body) are recorded with `fail` and end the scope the same way.
Every request ends with its stats and one access log entry.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import trio

from pydp.http import Data, EndOfMessage, InformationalResponse, ProtocolError, Request, Response
from pydp.proxy.context import (
    DownstreamProtocolError,
    DownstreamReset,
    DownstreamStream,
    HttpContext,
)
from pydp.proxy.forward import Forwarder
from pydp.proxy.headers import HeaderList, add_connection_headers, sanitize_request
from pydp.proxy.local_reply import (
    REQUEST_TIMEOUT,
    STREAM_TIMEOUT,
    codec_error_body,
    grpc_reply,
    is_grpc,
    text_reply,
)
from pydp.proxy.stream_info import StreamInfo
from pydp.router import (
    NO_ROUTE,
    DirectResponse,
    Forward,
    Redirect,
    apply_mutations,
    local_reply_headers,
)

_INF = float("inf")


class Deadlines:
    """The request's timers, as the deadline of one cancel scope.

    Deadlines are plain numbers until the scope exists, so a request whose
    timers are known when it starts registers one trio deadline, once. The
    idle deadline is moved lazily: activity only records its time, and the
    scope's deadline (`idle + slack` past the last move) moves again once
    `slack` has passed - the timer never fires early, at most `slack` late.
    """

    __slots__ = (
        "activity",
        "clock",
        "idle",
        "idle_timeout",
        "request",
        "route",
        "scope",
        "slack",
    )

    def __init__(self, clock: trio.abc.Clock, idle_timeout: float | None, now: float) -> None:
        self.clock = clock
        self.scope: trio.CancelScope | None = None
        self.request = _INF
        self.route = _INF
        self.activity = now
        self.idle_timeout: float | None = None
        self.slack = 0.0
        self.idle = _INF
        self.set_idle_timeout(idle_timeout)

    def open(self) -> trio.CancelScope:
        scope = self.scope = trio.CancelScope(deadline=min(self.idle, self.request, self.route))
        return scope

    def _apply(self) -> None:
        if self.scope is not None:
            self.scope.deadline = min(self.idle, self.request, self.route)

    def bump_idle(self) -> None:
        if self.idle_timeout is not None:
            now = self.activity = self.clock.current_time()
            if now + self.idle_timeout > self.idle - self.slack:
                self.idle = now + self.idle_timeout + self.slack
                self._apply()

    def set_idle_timeout(self, timeout: float | None) -> None:
        self.idle_timeout = timeout or None
        self.slack = min(1.0, timeout / 20) if timeout else 0.0
        self.idle = self.activity + timeout + self.slack if timeout else _INF
        self._apply()

    def set_request(self, deadline: float) -> None:
        self.request = deadline
        self._apply()

    def set_route(self, deadline: float) -> None:
        self.route = deadline
        self._apply()

    def cancel(self) -> None:
        if self.scope is not None:
            self.scope.cancel()

    def expired(self) -> str:
        now = self.clock.current_time()
        if self.route <= now:
            return "route"
        if self.request <= now:
            return "request"
        return "idle"


class ActiveRequest:
    def __init__(self, ds: DownstreamStream, request: Request, ctx: HttpContext) -> None:
        self.ds = ds
        self.request = request
        self.ctx = ctx
        self.clock = clock = ctx.clock
        now = clock.current_time()
        self.info = StreamInfo(time.time(), now)
        self.request_complete = request.end_stream
        self.request_complete_at: float | None = now if request.end_stream else None
        self.response_started = False
        self.response_complete = False
        self.head_request = request.headers[0][1] == b"HEAD"
        self.headers: HeaderList | None = None
        self.logged_headers: Sequence[tuple[bytes, bytes]] | None = None
        self.grpc = False
        self.failure: Exception | None = None
        self.forwarder: Forwarder | None = None
        self.timers = Deadlines(clock, ctx.config.stream_idle_timeout, now)

    async def run(self) -> None:
        ctx = self.ctx
        stats, names = ctx.stats, ctx.names
        stats.inc(names.rq_total)
        stats.inc(names.rq_http2_total if self.ds.protocol == "HTTP/2" else names.rq_http1_total)
        stats.gauge_add(names.rq_active, 1)
        timers = self.timers
        try:
            if ctx.config.request_timeout and not self.request_complete:
                timers.request = self.info.start + ctx.config.request_timeout
            if self.ds.expect_continue:
                with timers.open():
                    await self._continue()
                timers.scope = None
            if timers.scope is None or not timers.scope.cancelled_caught:
                action = self._route()
                with timers.open():
                    await action()
            if self.failure is not None:
                raise self.failure
            if timers.scope is not None and timers.scope.cancelled_caught:
                await self._timed_out()
        except DownstreamReset:
            self.info.flag("DC")
        except DownstreamProtocolError as exc:
            await self._protocol_error(exc.error)
        finally:
            self._finish()

    def fail(self, exc: Exception) -> None:
        """From a helper task: end the request with `exc`."""
        if self.failure is None:
            self.failure = exc
        self.timers.cancel()

    def complete_request(self) -> None:
        self.request_complete = True
        self.request_complete_at = self.clock.current_time()
        if self.timers.request != _INF:
            self.timers.set_request(_INF)

    async def _continue(self) -> None:
        ds, ctx = self.ds, self.ctx
        ds.write(InformationalResponse(ds.stream_id, 100, []))
        self.info.response_code = 100
        ctx.stats.inc(ctx.names.rq_class[1])
        await ds.flush()

    def _route(self) -> Callable[[], Awaitable[None]]:
        """Route the request (synchronously); what to do about it."""
        ds, ctx, request = self.ds, self.ctx, self.request
        config = ctx.config
        headers = self.headers = sanitize_request(
            request.headers, config, ctx.remote[0], ctx.scheme, ds.expect_continue
        )
        self.grpc = is_grpc(headers)
        table = config.route_table
        if table is None and config.rds_name is not None:
            table = ctx.runtime.route_table(config.rds_name)
        decision = table.route(headers, random.getrandbits(64)) if table is not None else NO_ROUTE
        names = ctx.names
        stats = ctx.stats
        if isinstance(decision, Forward):
            if request.upgrade is not None:
                return partial(self.send_local_reply, 403, b"")
            policy = decision.policy
            if policy.idle_timeout is not None:
                self.timers.set_idle_timeout(policy.idle_timeout)
            forwarder = Forwarder.create(self, decision)
            if forwarder is None:
                stats.inc(names.no_cluster)
                self.info.flag("NC")
                extra = self.route_mutations([], decision)
                return partial(self.send_local_reply, policy.cluster_not_found_status, b"", extra)
            self.forwarder = forwarder
            if self.request_complete and policy.timeout:
                self.timers.route = self.info.start + policy.timeout
            return forwarder.run
        if isinstance(decision, DirectResponse):
            stats.inc(names.rq_direct_response)
            reply = local_reply_headers(decision, ctx.format)
            return partial(self.send_local_reply, decision.status, decision.body, headers=reply)
        if isinstance(decision, Redirect):
            stats.inc(names.rq_redirect)
            reply = local_reply_headers(decision, ctx.format)
            return partial(self.send_local_reply, decision.status, b"", headers=reply)
        stats.inc(names.no_route)
        self.info.flag("NR")
        return partial(self.send_local_reply, decision.status, b"")

    def route_mutations(self, extra: HeaderList, decision: Forward) -> HeaderList:
        mutations = decision.policy.response_mutations
        if not mutations:
            return extra
        return apply_mutations(extra, mutations, self.ctx.format)

    async def send_local_reply(
        self,
        status: int,
        body: bytes,
        extra: Sequence[tuple[bytes, bytes]] = (),
        *,
        headers: HeaderList | None = None,
    ) -> None:
        """Answer locally (`headers` from the router replace the built ones), or reset
        the stream when the response has already started."""
        ds = self.ds
        if self.response_started:
            await self.reset_downstream()
            return
        if self.grpc:
            if headers is not None:
                extra = headers[1:]
            headers = grpc_reply(status, body, extra)
            status, body = 200, b""
        elif headers is None:
            headers = text_reply(status, body, extra)
        add_connection_headers(headers, self.ctx.config.server_name)
        if self.head_request:
            body = b""
        if not self.request_complete:
            ds.ending_early()
            self.ctx.stats.inc(self.ctx.names.rq_response_before_rq_complete)
        sid = ds.stream_id
        ds.write(Response(sid, status, headers, not body))
        if body:
            ds.write(Data(sid, body))
        ds.write(EndOfMessage(sid))
        self.response_started = True
        self.response_complete = True
        self.info.response_code = status
        self.info.bytes_sent += len(body)
        await ds.flush()

    async def reset_downstream(self) -> None:
        self.ctx.stats.inc(self.ctx.names.rq_tx_reset)
        await self.ds.reset()

    async def _timed_out(self) -> None:
        ctx = self.ctx
        which = self.timers.expired()
        if which == "route" and self.forwarder is not None:
            await self.forwarder.on_route_timeout()
        elif which == "request":
            ctx.stats.inc(ctx.names.rq_timeout)
            await self.send_local_reply(408, REQUEST_TIMEOUT)
        else:
            ctx.stats.inc(ctx.names.rq_idle_timeout)
            self.info.flag("SI")
            await self.send_local_reply(504 if self.request_complete else 408, STREAM_TIMEOUT)

    async def _protocol_error(self, error: ProtocolError) -> None:
        self.info.flag("DPE")
        if self.response_started or error.stream_id is None:
            await self.reset_downstream()
            return
        self.grpc = False
        await self.send_local_reply(error.error_status_hint, codec_error_body(error))

    def _finish(self) -> None:
        ctx = self.ctx
        stats, names = ctx.stats, ctx.names
        info = self.info
        if self.ds.reset_by_peer:
            info.flag("DC")
        if "DC" in info.flags:
            stats.inc(names.rq_rx_reset)
        stats.gauge_add(names.rq_active, -1)
        end = self.clock.current_time()
        code = info.response_code
        if code >= 200:
            stats.inc(names.rq_class[code // 100])
        if self.response_complete:
            stats.inc(names.rq_completed)
        stats.observe(names.rq_time, (end - info.start) * 1000)
        headers = self.logged_headers or self.headers or self.request.headers
        ctx.runtime.access_log(
            ctx.listener, info.http_entry(headers, self.ds.protocol, end, ctx.remote)
        )


async def handle_request(ds: DownstreamStream, request: Request, ctx: HttpContext) -> None:
    """Serve one request to its end (access log included)."""
    await ActiveRequest(ds, request, ctx).run()


def error_reply(
    error: ProtocolError, server_name: bytes, *, grpc: bool = False
) -> tuple[int, HeaderList, bytes]:
    """(status, headers, body) of the answer to a request the codec rejected."""
    status = error.error_status_hint
    body = codec_error_body(error)
    if grpc:
        headers = grpc_reply(status, body)
        status, body = 200, b""
    else:
        headers = text_reply(status, body)
    add_connection_headers(headers, server_name)
    return status, headers, body
