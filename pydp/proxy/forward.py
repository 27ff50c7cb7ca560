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
from pydp.router import (
    FormatContext,
    Forward,
    apply_mutations,
    finalize_request_headers,
    finalize_response_headers,
)
from pydp.upstream import (
    Failure,
    Host,
    LbContext,
    ResetReason,
    RetryDecision,
    RetryState,
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
    __slots__ = (
        "attempts",
        "body",
        "clock",
        "cluster",
        "decision",
        "hash_key",
        "host",
        "host_pool",
        "names",
        "per_try",
        "policy",
        "pools",
        "priority",
        "protocol",
        "released",
        "request_headers",
        "retry",
        "rq",
        "runtime",
        "stats",
        "timeout_retry",
        "try_scope",
    )

    @classmethod
    def create(cls, rq: ActiveRequest, decision: Forward) -> Forwarder | None:
        """None when the route's cluster is unknown."""
        cluster = rq.ctx.runtime.cluster(decision.cluster) if decision.cluster else None
        return cls(rq, decision, cluster) if cluster is not None else None

    def __init__(self, rq: ActiveRequest, decision: Forward, cluster: UpstreamCluster) -> None:
        ctx = rq.ctx
        runtime = ctx.runtime
        self.rq = rq
        self.decision = decision
        self.policy = policy = decision.policy
        self.cluster = cluster
        self.runtime = runtime
        self.stats = ctx.stats
        pools = self.pools = runtime.pools.for_cluster(cluster, ctx.stats, runtime.now)
        self.names = pools.names
        priority = self.priority = (
            RoutingPriority.HIGH if policy.high_priority else RoutingPriority.DEFAULT
        )
        headers = rq.headers
        assert headers is not None
        self.request_headers = headers
        retry_policy = policy.retry_policy
        if retry_policy is None:
            self.retry: RetryState | None = None
            self.per_try: float | None = None
            self.body: BodyBuffer | None = None
        else:
            self.retry = (
                cluster.retry_state(retry_policy, headers, priority)
                if retry_policy.retry_on
                else None
            )
            self.per_try = retry_policy.per_try_timeout
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
        self.released = False

    async def run(self) -> None:
        rq = self.rq
        self.stats.counters[rq.ctx.names.router_rq_total] += 1
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
        """Headers of a local reply: the route's response mutations, reading the request
        as last sent upstream (as first received when no attempt was sent)."""
        extra = list(first)
        if self.policy.include_attempt_count_in_response:
            extra.append((_ATTEMPT_COUNT, str(self.attempts).encode()))
        mutations = self.policy.response_mutations
        if not mutations:
            return extra
        rq = self.rq
        context = rq.ctx.format.with_request(rq.logged_headers or self.request_headers)
        return apply_mutations(extra, mutations, context)

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
        hash_key = self.hash_key
        if retry is not None:
            context: LbContext | None = retry.lb_context(hash_key)
        else:
            context = LbContext(hash_key=hash_key) if hash_key is not None else None
        host = cluster.choose_host(context)
        if host is None:
            self.stats.inc(self.names.cx_none_healthy)
            rq.info.flag("UH")
            return LocalReply(503, NO_HEALTHY_UPSTREAM, self.reply_extra())
        self.host = host
        info = rq.info
        info.upstream_host = host
        info.cluster = cluster.config.name
        if retry is not None:
            retry.on_host_attempted(host)
        headers = self._request_headers(host)
        breakers = cluster.breakers
        priority = self.priority
        if not breakers.try_acquire_request(priority):
            return self._overflow()
        cluster.on_request_start(host)
        pool = self.host_pool = self.pools.pool(host, self.protocol)
        try:
            try:
                up = pool.ready() or await pool.acquire(priority)
            except PoolOverflow:
                return self._overflow()
            except ConnectFailure as failure:
                cluster.record_failure(host, Failure.CONNECT_FAILURE, self.runtime.now())
                return self._reset(failure.reason, started=False)
            self.released = False
            try:
                return await self._exchange(up, headers, host, pool)
            finally:
                if not self.released:
                    up.release()
        finally:
            breakers.release_request(priority)
            cluster.on_request_end(host)

    def _overflow(self) -> LocalReply:
        self.rq.info.flag("UO")
        body = reset_body(ResetReason.OVERFLOW, self.attempts > 1)
        return LocalReply(503, body, self.reply_extra(OVERLOADED))

    def _request_headers(self, host: Host) -> HeaderList:
        policy = self.policy
        decision = self.decision
        headers = self.request_headers
        if (
            policy.request_mutations
            or decision.path is not None
            or policy.host_rewrite
            or policy.cluster_host_rewrite is not None
            or (policy.auto_host_rewrite and host.endpoint.hostname)
            or policy.host_rewrite_header is not None
            or policy.host_rewrite_path_regex is not None
        ):
            hostname = None
            if policy.auto_host_rewrite and host.endpoint.hostname:
                hostname = host.endpoint.hostname.encode()
            headers = finalize_request_headers(
                headers, decision, self.rq.ctx.format, upstream_hostname=hostname
            )
        elif self.attempts == 1:
            expected = _first_expected_timeout(policy.timeout, self.per_try)
            if expected is not None:
                headers.append((_EXPECTED_TIMEOUT, expected))
            if policy.include_attempt_count_in_request:
                set_header(headers, _ATTEMPT_COUNT, b"1")
            return headers
        put = set_header if self.attempts > 1 or headers is not self.request_headers else _append
        expected_ms = self._expected_timeout_ms()
        if expected_ms:
            put(headers, _EXPECTED_TIMEOUT, _decimal(expected_ms))
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

    async def _exchange(
        self, up: UpstreamStream, headers: HeaderList, host: Host, pool: HostPool
    ) -> Outcome:
        rq = self.rq
        self.stats.counters[self.names.rq_total] += 1
        pool.stats["rq_total"] += 1
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
        per_try = self.per_try
        if per_try is None:
            if complete:
                return await self._response(up, host, start)
            return await self._exchange_body(up, host, start)
        with trio.CancelScope() as try_scope:
            self.try_scope = try_scope
            if complete:
                try_scope.deadline = start + per_try
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
            outcome = await self._response(up, host, start, pumping=True)
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

    async def _response(
        self, up: UpstreamStream, host: Host, start: float, pumping: bool = False
    ) -> Outcome:
        """Forward the response. Once it is complete upstream, the upstream stream is
        released before the last downstream write (as Envoy frees it when the upstream
        response ends) - unless the request body pump may still be writing to it."""
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
                if type(event) is Data:
                    if started:
                        size += len(event.data)
                        event.stream_id = sid  # the codec's event, reused downstream
                        ds.write(event)
                elif type(event) is Response:
                    retry = self._on_headers(event, host)
                    if retry is not None:
                        return retry
                    started = True
                elif type(event) is EndOfMessage:
                    if not started:
                        continue
                    if not rq.request_complete:
                        ds.ending_early()
                    event.stream_id = sid
                    ds.write(event)
                    rq.response_complete = True
                    info.bytes_sent += size
                    if not pumping:
                        self.released = True
                        up.release()
                    await ds.flush()
                    elapsed = self.clock.current_time() - start
                    self.stats.observe(self.names.rq_time, elapsed * 1000)
                    return None
                elif type(event) is StreamReset or type(event) is StreamError:
                    info.bytes_sent += size
                    return self._reset_during(up.reason(event), started, host)
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
        cluster = self.cluster
        if self.retry is not None and self._retriable():
            decision = self.retry.on_response(status, response.headers)
            if decision.retry:
                cluster.record_response(host, status, self.runtime.now())
                self._charge(status, retry=True)
                self.timeout_retry = False
                return decision.backoff
            self._note(decision)
        if cluster.outlier is not None:
            cluster.record_response(host, status, self.runtime.now())
        self._charge(status)
        headers = response.headers
        if self.policy.response_mutations:
            headers = finalize_response_headers(
                headers,
                self.decision,
                FormatContext(
                    rq.ctx.remote,
                    rq.ctx.local,
                    (host.address, host.port),
                    rq.logged_headers or self.request_headers,
                ),
            )
        ds = rq.ds
        done = rq.request_complete_at
        service_time = None  # Envoy times the upstream from the end of the request only
        if done is not None:
            service_time = int((self.clock.current_time() - done) * 1000)
            rq.info.upstream_service_time = str(service_time)
        elif not ds.protocol.startswith("HTTP/2"):
            ds.ending_early()  # Envoy: `connection: close` on HTTP/1 when answering early
        attempts = None
        if self.policy.include_attempt_count_in_response:
            attempts = _decimal(self.attempts)
        finish_response_headers(
            headers,
            _decimal(service_time) if service_time is not None else None,
            attempts,
            rq.ctx.config.server_name,
        )
        response.stream_id = ds.stream_id  # the codec's event, reused downstream
        response.headers = headers
        ds.write(response)
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
        counters = self.stats.counters
        counters[code] += 1
        counters[code_class] += 1
        if not retry:
            counters[names.rq_completed] += 1

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


_DECIMALS = [str(n).encode() for n in range(1000)]
_FIRST_EXPECTED: dict[tuple[float | None, float | None], bytes | None] = {}


def _first_expected_timeout(timeout: float | None, per_try: float | None) -> bytes | None:
    """`x-envoy-expected-rq-timeout-ms` of a first attempt (`_expected_timeout_ms`
    with nothing elapsed), by route timeout and per-try timeout."""
    key = (timeout, per_try)
    try:
        return _FIRST_EXPECTED[key]
    except KeyError:
        global_ms = int(timeout * 1000) if timeout else 0
        expected = int(per_try * 1000) if per_try else global_ms
        if expected and global_ms:
            expected = min(expected, global_ms)
        value = str(expected).encode() if expected else None
        if len(_FIRST_EXPECTED) < 1024:
            _FIRST_EXPECTED[key] = value
        return value


def _decimal(n: int) -> bytes:
    return _DECIMALS[n] if 0 <= n < 1000 else str(n).encode()


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
