"""One downstream request: the connection manager's part (Envoy's `ActiveStream`).

Theory of operation
-------------------
`ActiveRequest.run` takes a request as far as it goes on the task that calls
it (the HTTP/1.1 connection's own task, or one task per HTTP/2 stream):
answer `Expect: 100-continue` locally, sanitize the headers, route, run the
connection manager's RBAC filters (`pydp.rbac`: the first that denies answers
403 `RBAC: access denied`, and the request goes no further), then reply
locally (no route, redirect, direct response, refused upgrade, unknown
cluster) or hand over to the `Forwarder` (the router filter). `finish` then
answers what ended it early, and counts and logs the request.

Timeouts are deadlines of one `Alarm` (`Deadlines`), which cancels the
scope the caller runs `run` in: the connection manager's `request_timeout`
(until the request is complete or the response starts), the stream idle
timeout (moved forward on every read and write; the route's `idle_timeout`
replaces the listener's once routed) and the route timeout (armed when the
request is complete). When the scope is cancelled, the caller calls
`finish(timed_out=True)` outside it, and whichever deadline has passed picks
the answer: 408 `request timeout`, 408/504 `stream timeout` (SI), 504
`upstream request timeout` (UT) - or a reset when the response had already
started.

Errors arriving from the body pump (the client reset the stream, or sent a
malformed body) are recorded with `fail` and end the scope the same way.
Every request ends with its stats and one access log entry (`close`, which
the caller also calls when its task is cancelled from outside).
"""

from __future__ import annotations

import random
import re
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
    RBAC_ACCESS_DENIED,
    REQUEST_TIMEOUT,
    STREAM_TIMEOUT,
    codec_error_body,
    grpc_reply,
    is_grpc,
    text_reply,
)
from pydp.proxy.stat_names import rbac_names
from pydp.proxy.stream_info import StreamInfo
from pydp.proxy.timers import Alarm
from pydp.rbac import RbacRequest, run_filters
from pydp.router import (
    NO_ROUTE,
    Decision,
    DirectResponse,
    Forward,
    NoRoute,
    Redirect,
    apply_mutations,
    local_reply_headers,
)

_INF = float("inf")
_random_bits = random.getrandbits
_SPACE = re.compile(r"[ \t\n\v\f\r]")
Action = Callable[[], Awaitable[None]]


class Deadlines:
    """The request's timers, as the deadline of the caller's `Alarm`.

    Deadlines are plain numbers; the alarm is set to the earliest of them
    whenever one changes (a float store, see `pydp.proxy.timers`), so the
    idle deadline follows every read and write exactly.
    """

    __slots__ = ("activity", "alarm", "clock", "idle", "idle_timeout", "request", "route")

    def __init__(
        self, alarm: Alarm, clock: trio.abc.Clock, idle_timeout: float | None, now: float
    ) -> None:
        self.alarm = alarm
        self.clock = clock
        self.request = _INF
        self.route = _INF
        self.activity = now
        self.idle_timeout = idle_timeout or None
        self.idle = now + idle_timeout if idle_timeout else _INF

    def arm(self) -> None:
        self.alarm.set(min(self.idle, self.request, self.route))

    def disarm(self) -> None:
        self.alarm.set(_INF)

    def bump_idle(self) -> None:
        if self.idle_timeout is not None:
            now = self.activity = self.clock.current_time()
            self.idle = now + self.idle_timeout
            self.arm()

    def set_idle_timeout(self, timeout: float | None) -> None:
        self.idle_timeout = timeout or None
        self.idle = self.activity + timeout if timeout else _INF
        self.arm()

    def set_request(self, deadline: float) -> None:
        self.request = deadline
        self.arm()

    def set_route(self, deadline: float) -> None:
        self.route = deadline
        self.arm()

    def cancel(self) -> None:
        scope = self.alarm.scope
        if scope is not None:
            scope.cancel()

    def expired(self) -> str:
        now = self.clock.current_time()
        if self.route <= now:
            return "route"
        if self.request <= now:
            return "request"
        return "idle"


class ActiveRequest:
    """One request: `run` inside the scope the alarm cancels, then `finish` (outside
    it if it was cancelled)."""

    __slots__ = (
        "clock",
        "closed",
        "ctx",
        "details",
        "ds",
        "failure",
        "forwarder",
        "grpc",
        "head_request",
        "headers",
        "info",
        "logged_headers",
        "request",
        "request_complete",
        "request_complete_at",
        "response_complete",
        "response_started",
        "timers",
    )

    def __init__(
        self, ds: DownstreamStream, request: Request, ctx: HttpContext, alarm: Alarm
    ) -> None:
        self.ds = ds
        self.request = request
        self.ctx = ctx
        self.clock = clock = ctx.clock
        now = clock.current_time()
        self.info = StreamInfo(time.time(), now)
        complete = self.request_complete = request.end_stream
        self.request_complete_at: float | None = now if complete else None
        self.response_started = False
        self.response_complete = False
        self.head_request = request.headers[0][1] == b"HEAD"
        self.headers: HeaderList | None = None
        self.logged_headers: Sequence[tuple[bytes, bytes]] | None = None
        self.grpc: bool | None = None
        self.failure: Exception | None = None
        self.forwarder: Forwarder | None = None
        self.closed = False
        self.details: str | None = None  # %RESPONSE_CODE_DETAILS%, when pydp knows it
        self.timers = Deadlines(alarm, clock, ctx.config.stream_idle_timeout, now)

    async def run(self) -> None:
        """Answer `100 Continue`, route, and reply or forward; a client reset or a
        malformed body is kept for `finish`. The alarm is disarmed on the way out."""
        ctx = self.ctx
        stats, names = ctx.stats, ctx.names
        counters = stats.counters
        counters[names.rq_total] += 1
        http2 = self.ds.protocol == "HTTP/2"
        counters[names.rq_http2_total if http2 else names.rq_http1_total] += 1
        stats.gauges[names.rq_active] += 1
        timers = self.timers
        try:
            request_timeout = ctx.config.request_timeout
            if request_timeout and not self.request_complete:
                timers.request = self.info.start + request_timeout
            if self.ds.expect_continue:
                timers.arm()
                await self._continue()
            action = self._route()
            timers.arm()
            await action()
        except (DownstreamReset, DownstreamProtocolError) as exc:
            if self.failure is None:
                self.failure = exc
        finally:
            timers.disarm()

    async def finish(self, timed_out: bool = False) -> None:
        """After `run`: answer the failure or the timeout that ended it, then count and
        log the request (`close`)."""
        try:
            if self.failure is not None:
                raise self.failure
            if timed_out:
                await self._timed_out()
        except DownstreamReset:
            self.info.flag("DC")
        except DownstreamProtocolError as exc:
            await self._protocol_error(exc.error)
        finally:
            self.close()

    def close(self) -> None:
        """Count and log the request, once (also when its task was cancelled)."""
        if self.closed:
            return
        self.closed = True
        # The forwarder points back at the request: without this, every request
        # would be left for the cycle collector, whose passes show in latency.
        self.forwarder = None
        ctx = self.ctx
        stats, names = ctx.stats, ctx.names
        counters = stats.counters
        info = self.info
        if self.ds.reset_by_peer:
            info.flag("DC")
        if info.flags and "DC" in info.flags:
            counters[names.rq_rx_reset] += 1
        stats.gauges[names.rq_active] -= 1
        end = self.clock.current_time()
        code = info.response_code
        if code >= 200:
            counters[names.rq_class[code // 100]] += 1
        if self.response_complete:
            counters[names.rq_completed] += 1
        stats.observe(names.rq_time, (end - info.start) * 1000)
        if ctx.log_access:
            headers = self.logged_headers or self.headers or self.request.headers
            entry = info.http_entry(headers, self.ds.protocol, end, ctx.remote)
            if self.details is not None:
                entry.extra["RESPONSE_CODE_DETAILS"] = self.details
            ctx.runtime.access_log(ctx.listener, entry)

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

    def _route(self) -> Action:
        """Route the request and run the RBAC filters (synchronously); what to do about it."""
        ds, ctx, request = self.ds, self.ctx, self.request
        config = ctx.config
        headers = self.headers = sanitize_request(
            request.headers, config, ctx.remote[0], ctx.scheme, ds.expect_continue, ctx.peer
        )
        table = config.route_table
        if table is None and config.rds_name is not None:
            table = ctx.runtime.route_table(config.rds_name)
        decision = table.route(headers, _random_bits(64)) if table is not None else NO_ROUTE
        if config.rbac_filters:
            denied = self._authorize(headers, decision)
            if denied is not None:
                return denied
        names = ctx.names
        stats = ctx.stats
        if type(decision) is Forward:
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
            reply = local_reply_headers(decision, ctx.format.with_request(headers))
            return partial(self.send_local_reply, decision.status, decision.body, headers=reply)
        if isinstance(decision, Redirect):
            stats.inc(names.rq_redirect)
            reply = local_reply_headers(decision, ctx.format.with_request(headers))
            return partial(self.send_local_reply, decision.status, b"", headers=reply)
        assert isinstance(decision, NoRoute)
        stats.inc(names.no_route)
        self.info.flag("NR")
        return partial(self.send_local_reply, decision.status, b"")

    def _authorize(self, headers: HeaderList, decision: Decision) -> Action | None:
        """Run the RBAC filters in order, counting their stats; the 403 of the first that
        denies, or None. As in Envoy, the route is already chosen, so a denied request
        still logs its route's cluster."""
        ctx = self.ctx
        config, stats = ctx.config, ctx.stats
        rq = RbacRequest(headers, ctx.peer, ctx.local[1])
        for rbac, verdict in run_filters(config.rbac_filters, rq):
            names = rbac_names(
                config.stat_prefix, rbac.rules_stat_prefix, rbac.shadow_rules_stat_prefix
            )
            if names.denied not in stats.counters:  # first use: Envoy shows them all at 0
                for declared in names.created:
                    stats.inc(declared, 0)
            stats.inc(names.allowed if verdict.allowed else names.denied)
            if rbac.track_per_rule_stats and verdict.policy is not None:
                stats.inc(names.policy(verdict.policy, verdict.allowed))
            if not verdict.allowed:
                policy = _SPACE.sub("_", verdict.policy) if verdict.policy is not None else "none"
                self.details = f"rbac_access_denied_matched_policy[{policy}]"
                if type(decision) is Forward and ctx.runtime.cluster(decision.cluster) is not None:
                    self.info.cluster = decision.cluster
                return partial(self.send_local_reply, 403, RBAC_ACCESS_DENIED)
        return None

    def route_mutations(self, extra: HeaderList, decision: Forward) -> HeaderList:
        mutations = decision.policy.response_mutations
        if not mutations:
            return extra
        request = self.headers or self.request.headers
        return apply_mutations(extra, mutations, self.ctx.format.with_request(request))

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
        grpc = self.grpc
        if grpc is None:
            grpc = self.grpc = self.headers is not None and is_grpc(self.headers)
        if grpc:
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
