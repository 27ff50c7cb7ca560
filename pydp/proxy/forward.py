"""Forward one request upstream with retries and timeouts (Envoy's router filter).

Theory of operation
-------------------
An attempt picks a host (`no healthy upstream` when none), takes a request
slot from the circuit breakers (`x-envoy-overloaded` when full), gets a
stream from the host's pool (connecting as needed), sends the request head
and whatever body is already buffered, then - while a pump task forwards
the rest of the request body - reads the response. The route timeout (armed
by the request once complete) and the per-try timeout (a scope around the
attempt, armed once the attempt has sent the whole request) both cover the
exchange until the response is complete.

The outcome of each attempt (response headers, a reset, a connect failure,
a per-try timeout) goes to the retry state; a retry waits its back-off and
starts over with the buffered request. The request body is buffered only
when a retry is possible, up to the route's `per_request_buffer_limit_bytes`
(else Envoy's 1 MiB connection buffer limit); past that, the request can no
longer be retried. A response that is not retried is forwarded as it
arrives: each batch of events read from upstream is written downstream and,
for HTTP/2 upstreams, acknowledged only once flushed - so a slow client slows
the upstream, and the next request chunk is read only after the previous one
was written upstream.

Failures before the response started become Envoy's local replies with its
response flags (UH, UO, UF, UC, UR, UPE, UT, URX); after it started, the
downstream stream is reset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from pydp.http import (
    Data,
    EndOfMessage,
    LocalProtocolError,
    Request,
    Response,
    StreamError,
    StreamReset,
)
from pydp.proxy.context import DownstreamProtocolError, DownstreamReset
from pydp.proxy.headers import HeaderList, finish_response_headers, set_header
from pydp.proxy.local_reply import (
    NO_HEALTHY_UPSTREAM,
    OVERLOADED,
    RESET_REASON_FLAG,
    UPSTREAM_TIMEOUT,
    reset_body,
    reset_status,
)
from pydp.proxy.pools import HTTP1, HTTP2, HostPool, PoolOverflow
from pydp.proxy.upstream import ConnectFailure, UpstreamReset, UpstreamStream
from pydp.router import FormatContext, Forward, finalize_request_headers, finalize_response_headers
from pydp.upstream import (
    Failure,
    Host,
    LbContext,
    ResetReason,
    RetryDecision,
    RetryStatus,
    RoutingPriority,
    UpstreamCluster,
    UpstreamProtocol,
    compute_hash,
)

if TYPE_CHECKING:
    from pydp.proxy.request import ActiveRequest

DEFAULT_BUFFER_LIMIT = 1024 * 1024
_ATTEMPT_COUNT = b"x-envoy-attempt-count"
_EXPECTED_TIMEOUT = b"x-envoy-expected-rq-timeout-ms"


class BodyBuffer:
    """The request body kept for retries, until it outgrows `limit`."""

    __slots__ = ("chunks", "limit", "overflowed", "size", "trailers")

    def __init__(self, limit: int) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.overflowed = False
        self.trailers: list[tuple[bytes, bytes]] = []

    def add(self, data: bytes) -> None:
        if self.overflowed:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.overflowed = True
            self.chunks.clear()
        else:
            self.chunks.append(data)


class LocalReply:
    """An attempt's end as a local reply."""

    __slots__ = ("body", "extra", "status")

    def __init__(self, status: int, body: bytes, extra: HeaderList) -> None:
        self.status = status
        self.body = body
        self.extra = extra


class ResetDownstream:
    """An attempt's end after the response started: reset the downstream stream."""


RESET_DOWNSTREAM = ResetDownstream()

# None: the response was forwarded; a float: retry after that back-off.
Outcome = float | LocalReply | ResetDownstream | None


class Forwarder:
    @classmethod
    def create(cls, rq: ActiveRequest, decision: Forward) -> Forwarder | None:
        """None when the route's cluster is unknown."""
        cluster = rq.ctx.runtime.cluster(decision.cluster) if decision.cluster else None
        return cls(rq, decision, cluster) if cluster is not None else None

    def __init__(self, rq: ActiveRequest, decision: Forward, cluster: UpstreamCluster) -> None:
        ctx = rq.ctx
        self.rq = rq
        self.decision = decision
        self.policy = policy = decision.policy
        self.cluster = cluster
        self.runtime = ctx.runtime
        self.stats = ctx.stats
        self.pools = ctx.runtime.pools.for_cluster(cluster, ctx.stats, ctx.runtime.now)
        self.names = self.pools.names
        self.priority = RoutingPriority.HIGH if policy.high_priority else RoutingPriority.DEFAULT
        assert rq.headers is not None
        self.request_headers = rq.headers
        retry_policy = policy.retry_policy
        self.retry = (
            cluster.retry_state(retry_policy, rq.headers, self.priority)
            if retry_policy is not None and retry_policy.retry_on
            else None
        )
        self.per_try = retry_policy.per_try_timeout if retry_policy is not None else None
        self.body = (
            BodyBuffer(policy.per_request_buffer_limit or DEFAULT_BUFFER_LIMIT)
            if self.retry is not None and not rq.request_complete
            else None
        )
        self.protocol = _protocol(cluster, rq.ds.protocol)
        self.attempts = 0
        self.host: Host | None = None
        self.timeout_retry = False
        self.try_scope: trio.CancelScope | None = None
        self.clock = rq.clock
        self.host_pool: HostPool | None = None
        self.hash_key: int | None = None

    async def run(self) -> None:
        rq = self.rq
        self.stats.inc(rq.ctx.names.router_rq_total)
        if self.policy.hash_policies:
            self.hash_key = compute_hash(
                self.policy.hash_policies, self.request_headers, rq.ctx.remote[0]
            )
        try:
            while True:
                self.attempts += 1
                outcome = await self._attempt()
                if outcome is None:
                    return
                if isinstance(outcome, LocalReply):
                    await rq.send_local_reply(outcome.status, outcome.body, outcome.extra)
                    return
                if isinstance(outcome, ResetDownstream):
                    await rq.reset_downstream()
                    return
                if outcome > 0:
                    await trio.sleep(outcome)
        finally:
            if self.retry is not None:
                self.retry.close()

    def arm_route_timeout(self) -> None:
        timeout = self.policy.timeout
        if timeout:
            self.rq.timers.set_route(self.clock.current_time() + timeout)

    def reply_extra(self, *first: tuple[bytes, bytes]) -> HeaderList:
        extra = list(first)
        if self.policy.include_attempt_count_in_response:
            extra.append((_ATTEMPT_COUNT, str(self.attempts).encode()))
        return self.rq.route_mutations(extra, self.decision)

    async def on_route_timeout(self) -> None:
        """The route timeout fired (the request's scope is already unwound)."""
        self.stats.inc(self.names.rq_timeout)
        self._charge(504, timeout=True)
        if self.host is not None:
            self.cluster.record_failure(self.host, Failure.TIMEOUT, self.runtime.now())
        self.rq.info.flag("UT")
        await self.rq.send_local_reply(504, UPSTREAM_TIMEOUT, self.reply_extra())

    async def _attempt(self) -> Outcome:
        cluster, rq = self.cluster, self.rq
        retry = self.retry
        if retry is not None:
            context: LbContext | None = retry.lb_context(self.hash_key)
        else:
            context = LbContext(hash_key=self.hash_key) if self.hash_key is not None else None
        host = cluster.choose_host(context)
        if host is None:
            self.stats.inc(self.names.cx_none_healthy)
            rq.info.flag("UH")
            return LocalReply(503, NO_HEALTHY_UPSTREAM, self.reply_extra())
        self.host = host
        rq.info.upstream_host = host
        rq.info.cluster = cluster.config.name
        if retry is not None:
            retry.on_host_attempted(host)
        headers = self._request_headers(host)
        breakers = cluster.breakers
        if not breakers.try_acquire_request(self.priority):
            return self._overflow()
        cluster.on_request_start(host)
        pool = self.host_pool = self.pools.pool(host, self.protocol)
        try:
            try:
                up = await pool.acquire(self.priority)
            except PoolOverflow:
                return self._overflow()
            except ConnectFailure as failure:
                cluster.record_failure(host, Failure.CONNECT_FAILURE, self.runtime.now())
                return self._reset(failure.reason, started=False)
            try:
                return await self._exchange(up, headers, host)
            finally:
                up.release()
        finally:
            breakers.release_request(self.priority)
            cluster.on_request_end(host)

    def _overflow(self) -> LocalReply:
        self.rq.info.flag("UO")
        body = reset_body(ResetReason.OVERFLOW, self.attempts > 1)
        return LocalReply(503, body, self.reply_extra(OVERLOADED))

    def _request_headers(self, host: Host) -> HeaderList:
        policy = self.policy
        hostname = None
        if policy.auto_host_rewrite and host.endpoint.hostname:
            hostname = host.endpoint.hostname.encode()
        decision = self.decision
        if (
            policy.request_mutations
            or decision.path is not None
            or policy.host_rewrite
            or policy.cluster_host_rewrite is not None
            or hostname is not None
        ):
            headers = finalize_request_headers(
                self.request_headers, decision, self.rq.ctx.format, upstream_hostname=hostname
            )
        else:
            headers = self.request_headers
        put = set_header if self.attempts > 1 or headers is not self.request_headers else _append
        expected = self._expected_timeout_ms()
        if expected:
            put(headers, _EXPECTED_TIMEOUT, str(expected).encode())
        if policy.include_attempt_count_in_request:
            set_header(headers, _ATTEMPT_COUNT, str(self.attempts).encode())
        if policy.include_is_timeout_retry_header and self.timeout_retry:
            set_header(headers, b"x-envoy-is-timeout-retry", b"true")
        return headers

    def _expected_timeout_ms(self) -> int:
        timeout = self.policy.timeout
        global_ms = int(timeout * 1000) if timeout else 0
        expected = int(self.per_try * 1000) if self.per_try else global_ms
        if expected and global_ms:
            done = self.rq.request_complete_at
            elapsed = 0
            if self.attempts > 1 and done is not None:
                elapsed = int((self.clock.current_time() - done) * 1000)
            expected = 1 if elapsed >= global_ms else min(expected, global_ms - elapsed)
        return expected

    async def _exchange(self, up: UpstreamStream, headers: HeaderList, host: Host) -> Outcome:
        rq = self.rq
        self.stats.inc(self.names.rq_total)
        if self.host_pool is not None:
            self.host_pool.stats["rq_total"] += 1
        rq.logged_headers = headers
        sid = up.stream_id
        body = self.body
        complete = rq.request_complete
        if complete and (body is None or not (body.chunks or body.trailers)):
            up.write(Request(sid, headers, True))
            up.write(EndOfMessage(sid))
        else:
            up.write(Request(sid, headers, False))
            if body is not None:
                for chunk in body.chunks:
                    up.write(Data(sid, chunk))
            if complete:
                up.write(EndOfMessage(sid, body.trailers if body is not None else []))
        await up.flush()
        start = self.clock.current_time()
        if self.per_try is None:
            return await self._exchange_body(up, host, start)
        with trio.CancelScope() as try_scope:
            self.try_scope = try_scope
            if complete:
                try_scope.deadline = start + self.per_try
            outcome = await self._exchange_body(up, host, start)
        self.try_scope = None
        if try_scope.cancelled_caught:
            return self._per_try_timeout(host)
        return outcome

    async def _exchange_body(self, up: UpstreamStream, host: Host, start: float) -> Outcome:
        if self.rq.request_complete:
            return await self._response(up, host, start)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, up)
            outcome = await self._response(up, host, start)
            nursery.cancel_scope.cancel()
        return outcome

    async def _pump(self, up: UpstreamStream) -> None:
        """Forward the rest of the request body, one chunk at a time."""
        rq = self.rq
        ds = rq.ds
        body = self.body
        sid = up.stream_id
        try:
            while not rq.request_complete:
                event = await ds.receive()
                if type(event) is Data:
                    data = event.data
                    rq.info.bytes_received += len(data)
                    if body is not None:
                        body.add(data)
                    up.write(Data(sid, data))
                    await up.flush()
                    await ds.ack(len(data))
                    rq.timers.bump_idle()
                else:
                    assert isinstance(event, EndOfMessage)
                    rq.complete_request()
                    if body is not None:
                        body.trailers = event.trailers
                    self.arm_route_timeout()
                    if self.per_try and self.try_scope is not None:
                        self.try_scope.deadline = self.clock.current_time() + self.per_try
                    up.write(EndOfMessage(sid, event.trailers))
                    await up.flush()
        except (DownstreamReset, DownstreamProtocolError) as exc:
            rq.fail(exc)
        except LocalProtocolError:
            pass

    async def _response(self, up: UpstreamStream, host: Host, start: float) -> Outcome:
        rq = self.rq
        ds = rq.ds
        sid = ds.stream_id
        info = rq.info
        started = False
        while True:
            try:
                events = await up.receive()
            except UpstreamReset as reset:
                return self._reset_during(reset.reason, started, host)
            size = 0
            for event in events:
                kind = type(event)
                if kind is Data:
                    if started:
                        data = event.data  # type: ignore[union-attr]
                        ds.write(Data(sid, data))
                        size += len(data)
                elif kind is Response:
                    assert isinstance(event, Response)
                    retry = self._on_headers(event, host)
                    if retry is not None:
                        return retry
                    started = True
                elif kind is EndOfMessage:
                    if not started:
                        continue
                    if not rq.request_complete:
                        ds.ending_early()
                    ds.write(EndOfMessage(sid, event.trailers))  # type: ignore[union-attr]
                    rq.response_complete = True
                    info.bytes_sent += size
                    await ds.flush()
                    elapsed = self.clock.current_time() - start
                    self.stats.observe(self.names.rq_time, elapsed * 1000)
                    return None
                elif kind is StreamReset or kind is StreamError:
                    info.bytes_sent += size
                    return self._reset_during(up.reason(event), started, host)  # type: ignore[arg-type]
            if started:
                info.bytes_sent += size
                rq.timers.bump_idle()
                await ds.flush()
                if size:
                    await up.ack(size)

    def _on_headers(self, response: Response, host: Host) -> float | None:
        """Retry (a back-off), or send the response head downstream (None)."""
        rq = self.rq
        status = response.status
        now = self.runtime.now()
        if self.retry is not None and self._retriable():
            decision = self.retry.on_response(status, response.headers)
            if decision.retry:
                self.cluster.record_response(host, status, now)
                self._charge(status, retry=True)
                self.timeout_retry = False
                return decision.backoff
            self._note(decision)
        self.cluster.record_response(host, status, now)
        self._charge(status)
        headers = response.headers
        if self.policy.response_mutations:
            headers = finalize_response_headers(
                headers,
                self.decision,
                FormatContext(rq.ctx.remote, rq.ctx.local, (host.address, host.port)),
            )
        done = rq.request_complete_at
        elapsed = self.clock.current_time() - (done if done is not None else rq.info.start)
        service_time = str(int(elapsed * 1000))
        rq.info.upstream_service_time = service_time
        attempts = None
        if self.policy.include_attempt_count_in_response:
            attempts = str(self.attempts).encode()
        finish_response_headers(headers, service_time.encode(), attempts, rq.ctx.config.server_name)
        rq.ds.write(Response(rq.ds.stream_id, status, headers, response.end_stream))
        rq.response_started = True
        rq.info.response_code = status
        return None

    def _retriable(self) -> bool:
        return self.body is None or not self.body.overflowed

    def _note(self, decision: RetryDecision) -> None:
        if decision.status is RetryStatus.NO_RETRY_LIMIT_EXCEEDED:
            self.rq.info.flag("URX")
        elif decision.status is RetryStatus.NO_OVERFLOW:
            self.rq.info.flag("UO")

    def _charge(self, status: int, retry: bool = False, timeout: bool = False) -> None:
        pool = self.host_pool
        if pool is not None:
            pool.stats["rq_error" if status >= 500 else "rq_success"] += 1
            if timeout:
                pool.stats["rq_timeout"] += 1
        names = self.names
        code, code_class = names.retry_code(status) if retry else names.code(status)
        self.stats.inc(code)
        self.stats.inc(code_class)
        if not retry:
            self.stats.inc(names.rq_completed)

    def _reset(self, reason: ResetReason, started: bool) -> float | LocalReply:
        if self.retry is not None and self._retriable():
            decision = self.retry.on_reset(reason, started)
            if decision.retry:
                self.timeout_retry = False
                return decision.backoff
            self._note(decision)
        self.rq.info.flag(RESET_REASON_FLAG[reason])
        status = reset_status(reason)
        self._charge(status)
        return LocalReply(status, reset_body(reason, self.attempts > 1), self.reply_extra())

    def _reset_during(self, reason: ResetReason, started: bool, host: Host) -> Outcome:
        self.stats.inc(self.names.rq_rx_reset)
        self.cluster.record_failure(host, Failure.RESET, self.runtime.now())
        if started:
            self.rq.info.flag(RESET_REASON_FLAG[reason])
            self.stats.inc(self.rq.ctx.names.rq_reset_after_downstream_response_started)
            return RESET_DOWNSTREAM
        return self._reset(reason, started=True)

    def _per_try_timeout(self, host: Host) -> Outcome:
        self.stats.inc(self.names.rq_per_try_timeout)
        self.cluster.record_failure(host, Failure.TIMEOUT, self.runtime.now())
        if self.rq.response_started:
            self.rq.info.flag("UT")
            return RESET_DOWNSTREAM
        if self.retry is not None and self._retriable():
            decision = self.retry.on_reset(ResetReason.LOCAL_RESET, True)
            if decision.retry:
                self.timeout_retry = True
                return decision.backoff
            self._note(decision)
        self.rq.info.flag("UT")
        self._charge(504, timeout=True)
        return LocalReply(504, UPSTREAM_TIMEOUT, self.reply_extra())


def _append(headers: HeaderList, name: bytes, value: bytes) -> None:
    """A header the connection manager removed from the request: no need to look for it."""
    headers.append((name, value))


def _protocol(cluster: UpstreamCluster, downstream: str) -> str:
    protocol = cluster.config.protocol
    if protocol is UpstreamProtocol.HTTP2:
        return HTTP2
    if protocol is UpstreamProtocol.USE_DOWNSTREAM and downstream == "HTTP/2":
        return HTTP2
    return HTTP1
