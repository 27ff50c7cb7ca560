"""Retry decisions and back-off, as Envoy's `RetryStateImpl` makes them.

Theory of operation. The router builds one `RetryState` per request from the
route's `RetryPolicy` (and, only when it trusts the request, the
`x-envoy-retry-on`, `x-envoy-retry-grpc-on`, `x-envoy-max-retries`,
`x-envoy-retriable-status-codes` and `x-envoy-retriable-header-names`
headers). After each attempt it reports the outcome: a response
(`on_response`) or a reset (`on_reset`; a per-try timeout is a local reset).
The decision:

- whether the outcome is retriable under `retry_on` (the tables below);
- then whether retries remain (else `NO_RETRY_LIMIT_EXCEEDED`), consuming one;
- then whether the cluster's retry circuit breaker has room (else
  `NO_OVERFLOW`, counted as `upstream_rq_retry_overflow`).

A granted retry holds one retry resource until the next decision or `close()`,
and comes with a fully jittered exponential back-off: the n-th interval is
drawn uniformly from `[0, base * 2**(n-1))` milliseconds, the bound doubling up
to `max` (default 25 ms base, 10x base max).

Responses: `5xx` any 5xx; `gateway-error` 502/503/504; `retriable-4xx` 409;
`retriable-status-codes` the listed codes; `retriable-headers` a matching
response header; `envoy-ratelimited` only a response carrying
`x-envoy-ratelimited` (which no other policy retries); gRPC policies on the
`grpc-status` of a trailers-only response. Resets: never on overflow;
`connect-failure` on connection failure or connect timeout;
`reset-before-request` when no byte was sent; `reset`, `5xx` and
`gateway-error` on any reset; `refused-stream` on a refused stream.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydp.errors import ConfigError
from pydp.upstream.breakers import CircuitBreakers, RoutingPriority
from pydp.upstream.fields import reject_unknown, wrapped
from pydp.upstream.hosts import Host
from pydp.upstream.lb_base import LbContext

Headers = Sequence[tuple[bytes, bytes]]
HeaderPredicate = Callable[[Headers], bool]

HTTP_RETRY_ON = frozenset(
    {
        "5xx",
        "gateway-error",
        "connect-failure",
        "envoy-ratelimited",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "reset",
        "reset-before-request",
        "http3-post-connect-failure",
    }
)
GRPC_RETRY_ON = {
    "cancelled": 1,
    "deadline-exceeded": 4,
    "resource-exhausted": 8,
    "internal": 13,
    "unavailable": 14,
}
DEFAULT_BASE_INTERVAL = 0.025
PREVIOUS_HOSTS_TYPE = "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
RETRY_REQUEST_HEADERS = (
    b"x-envoy-retry-on",
    b"x-envoy-retry-grpc-on",
    b"x-envoy-max-retries",
    b"x-envoy-hedge-on-per-try-timeout",
    b"x-envoy-retriable-header-names",
    b"x-envoy-retriable-status-codes",
    b"x-envoy-upstream-rq-per-try-timeout-ms",
)


def parse_retry_on(value: str, grpc: bool = False) -> frozenset[str]:
    """The known tokens of a comma-separated retry_on list; unknown ones are ignored (Envoy)."""
    known = GRPC_RETRY_ON.keys() if grpc else HTTP_RETRY_ON
    return frozenset(t.strip() for t in value.split(",") if t.strip() in known)


@dataclass(frozen=True)
class RetryPolicy:
    """A route's or virtual host's retry policy, typed. Times are in seconds.

    `retry_on` holds the known HTTP and gRPC tokens (`5xx`, `unavailable`, ...);
    Envoy ignores unknown ones. `per_try_timeout` / `per_try_idle_timeout` are
    None when unset or 0 (disabled). `base_interval` / `max_interval` are None
    when not configured (25 ms, and 10x base). `retriable_headers` /
    `retriable_request_headers` are compiled header matchers over (name, value)
    pairs; `retry_previous_hosts` is the `previous_hosts` retry host predicate.
    """

    retry_on: frozenset[str] = frozenset()
    num_retries: int = 1
    per_try_timeout: float | None = None
    per_try_idle_timeout: float | None = None
    retriable_status_codes: tuple[int, ...] = ()
    base_interval: float | None = None
    max_interval: float | None = None
    retriable_headers: tuple[HeaderPredicate, ...] = ()
    retriable_request_headers: tuple[HeaderPredicate, ...] = ()
    host_selection_retry_max_attempts: int = 1
    retry_previous_hosts: bool = False

    def __post_init__(self) -> None:
        unknown = self.retry_on - HTTP_RETRY_ON - GRPC_RETRY_ON.keys()
        if unknown:
            raise ValueError(f"unknown retry_on values: {sorted(unknown)}")
        base = self.base_interval if self.base_interval is not None else DEFAULT_BASE_INTERVAL
        if base <= 0:
            raise ValueError("base_interval must be greater than 0")
        if self.max_interval is not None and self.max_interval < base:
            raise ValueError("max_interval must be greater than or equal to the base_interval")

    def backoff_ms(self) -> tuple[int, int]:
        """(base, max) back-off in whole milliseconds, with Envoy's defaults."""
        base = max(
            1, _ms(self.base_interval if self.base_interval is not None else DEFAULT_BASE_INTERVAL)
        )
        maximum = _ms(self.max_interval) if self.max_interval is not None else base * 10
        return base, max(maximum, base)


def _ms(value: float) -> int:
    return int(round(value * 1000.0, 6))


_POLICY_FIELDS = {
    "retry_on",
    "num_retries",
    "per_try_timeout",
    "per_try_idle_timeout",
    "retry_host_predicate",
    "host_selection_retry_max_attempts",
    "retriable_status_codes",
    "retry_back_off",
    "retriable_headers",
    "retriable_request_headers",
}


def compile_retry_policy(
    pb: Any,
    resource: str,
    field_path: str = "retry_policy",
    compile_header_matcher: Callable[[Any, str], HeaderPredicate] | None = None,
) -> RetryPolicy:
    """Compile a route `RetryPolicy`; every error names `field_path` and the field below it.

    `compile_header_matcher(proto, path)` compiles the entries of
    `retriable_headers` and `retriable_request_headers` (the router passes its
    own header matchers); without it they are refused.
    """
    path = field_path + "."
    reject_unknown(pb, _POLICY_FIELDS, resource, path)
    predicates: dict[str, list[HeaderPredicate]] = {
        "retriable_headers": [],
        "retriable_request_headers": [],
    }
    for name, matchers in predicates.items():
        for i, matcher in enumerate(getattr(pb, name)):
            if compile_header_matcher is None:
                raise ConfigError(
                    resource, f"{path}{name}", "header matchers are not supported here"
                )
            matchers.append(compile_header_matcher(matcher, f"{path}{name}[{i}]"))
    for i, predicate in enumerate(pb.retry_host_predicate):
        _check_host_predicate(predicate, resource, f"{path}retry_host_predicate[{i}]")
    base = max_interval = None
    if pb.HasField("retry_back_off"):
        base, max_interval = _back_off(pb.retry_back_off, resource, path + "retry_back_off.")
    per_try = _duration_ms(pb, "per_try_timeout", resource, path)
    per_try_idle = _duration_ms(pb, "per_try_idle_timeout", resource, path)
    return RetryPolicy(
        retry_on=parse_retry_on(pb.retry_on) | parse_retry_on(pb.retry_on, grpc=True),
        num_retries=int(wrapped(pb, "num_retries", 1)),
        per_try_timeout=per_try / 1000 if per_try else None,
        per_try_idle_timeout=per_try_idle / 1000 if per_try_idle else None,
        retriable_status_codes=tuple(int(code) for code in pb.retriable_status_codes),
        base_interval=base,
        max_interval=max_interval,
        retriable_headers=tuple(predicates["retriable_headers"]),
        retriable_request_headers=tuple(predicates["retriable_request_headers"]),
        host_selection_retry_max_attempts=int(pb.host_selection_retry_max_attempts) or 1,
        retry_previous_hosts=bool(pb.retry_host_predicate),
    )


def _check_host_predicate(predicate: Any, resource: str, path: str) -> None:
    """Envoy looks the predicate up by the type of `typed_config` alone, never by name."""
    reject_unknown(predicate, {"name", "typed_config"}, resource, path + ".")
    type_name = predicate.typed_config.type_url.rsplit("/", 1)[-1]
    if not type_name:
        raise ConfigError(
            resource,
            path,
            f"Didn't find a registered implementation for '{predicate.name}' with type URL: ''",
        )
    if type_name != PREVIOUS_HOSTS_TYPE:
        raise ConfigError(resource, path, f"unsupported retry host predicate {type_name}")


def _back_off(back_off: Any, resource: str, path: str) -> tuple[float, float | None]:
    """(base, max) seconds; Envoy truncates to milliseconds, then raises 0 ms to 1 ms."""
    reject_unknown(back_off, {"base_interval", "max_interval"}, resource, path)
    if not back_off.HasField("base_interval"):
        raise ConfigError(resource, path + "base_interval", "value is required")
    base_ms = _positive_ms(back_off, "base_interval", resource, path)
    if not back_off.HasField("max_interval"):
        return base_ms / 1000, None
    max_ms = _positive_ms(back_off, "max_interval", resource, path)
    if max_ms < base_ms:
        raise ConfigError(
            resource,
            path + "max_interval",
            "retry_policy.max_interval must greater than or equal to the base_interval",
        )
    return base_ms / 1000, max_ms / 1000


def _positive_ms(msg: Any, field: str, resource: str, path: str) -> int:
    value = getattr(msg, field)
    if value.seconds < 0 or (value.seconds == 0 and value.nanos <= 0):
        raise ConfigError(resource, path + field, "value must be greater than 0s")
    return max(_duration_ms(msg, field, resource, path), 1)


def _duration_ms(msg: Any, field: str, resource: str, path: str) -> int:
    """A Duration field in whole milliseconds, truncated as Envoy does; 0 when unset."""
    value = getattr(msg, field)
    if value.seconds < 0 or value.nanos < 0:
        raise ConfigError(resource, path + field, "duration must not be negative")
    if value.nanos >= 1_000_000_000:
        raise ConfigError(resource, path + field, "duration nanos out of range")
    return int(value.seconds) * 1000 + int(value.nanos) // 1_000_000


class JitteredExponentialBackOff:
    """Envoy's `JitteredExponentialBackOffStrategy`, in milliseconds."""

    def __init__(self, base_ms: int, max_ms: int, rng: random.Random) -> None:
        if not 0 < base_ms <= max_ms:
            raise ValueError("need 0 < base <= max")
        self.base_ms = base_ms
        self.max_ms = max_ms
        self.rng = rng
        self._next = base_ms

    def next_backoff_ms(self) -> int:
        backoff = self._next
        self._next = self._next * 2 if self._next < self.max_ms // 2 else self.max_ms
        return self.rng.getrandbits(64) % backoff

    def reset(self) -> None:
        self._next = self.base_ms


class ResetReason(enum.Enum):
    """Why an attempt ended without a response (Envoy's `StreamResetReason`)."""

    CONNECTION_FAILURE = "connection_failure"
    CONNECTION_TIMEOUT = "connection_timeout"
    CONNECTION_TERMINATION = "connection_termination"
    LOCAL_RESET = "local_reset"
    REMOTE_RESET = "remote_reset"
    REFUSED_STREAM = "remote_refused_stream_reset"
    PROTOCOL_ERROR = "protocol_error"
    OVERFLOW = "overflow"


class RetryStatus(enum.Enum):
    YES = "yes"
    NO = "no"
    NO_OVERFLOW = "no_overflow"
    NO_RETRY_LIMIT_EXCEEDED = "no_retry_limit_exceeded"


@dataclass(frozen=True)
class RetryDecision:
    status: RetryStatus
    backoff: float = 0.0

    @property
    def retry(self) -> bool:
        return self.status is RetryStatus.YES


class _Would(enum.Enum):
    NO = 0
    BACKOFF = 1
    IMMEDIATELY = 2


@dataclass
class RetryStats:
    """A cluster's retry counters (Envoy's names; overflow lives in `CircuitBreakers`)."""

    upstream_rq_retry: int = 0
    upstream_rq_retry_success: int = 0
    upstream_rq_retry_limit_exceeded: int = 0
    upstream_rq_retry_backoff_exponential: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


def _has_header(name: bytes) -> HeaderPredicate:
    def present(headers: Headers) -> bool:
        return any(n == name for n, _ in headers)

    return present


def _header(headers: Headers, name: bytes) -> bytes | None:
    return next((v for n, v in headers if n == name), None)


@dataclass
class RetryState:
    """The retry bookkeeping of one downstream request."""

    policy: RetryPolicy
    breakers: CircuitBreakers
    rng: random.Random
    stats: RetryStats = field(default_factory=RetryStats)
    priority: RoutingPriority = RoutingPriority.DEFAULT
    request_headers: Headers = ()
    honor_request_headers: bool = False

    def __post_init__(self) -> None:
        self.retry_on = set(self.policy.retry_on)
        self.retries_remaining = self.policy.num_retries
        self.status_codes = list(self.policy.retriable_status_codes)
        self.header_predicates = list(self.policy.retriable_headers)
        self.attempted_hosts: list[Host] = []
        self._holding = False
        base, maximum = self.policy.backoff_ms()
        self.backoff = JitteredExponentialBackOff(base, maximum, self.rng)
        if self.honor_request_headers:
            self._merge_request_headers()
        if self.policy.retriable_request_headers and not any(
            match(self.request_headers) for match in self.policy.retriable_request_headers
        ):
            self.retry_on.clear()
        if self.retry_on and self.honor_request_headers:
            value = _header(self.request_headers, b"x-envoy-max-retries")
            if value is not None and value.strip().isdigit():
                self.retries_remaining = int(value.strip())

    def _merge_request_headers(self) -> None:
        headers = self.request_headers
        retry_on = _header(headers, b"x-envoy-retry-on")
        if retry_on is not None:
            self.retry_on |= parse_retry_on(retry_on.decode("latin-1"))
        grpc_on = _header(headers, b"x-envoy-retry-grpc-on")
        if grpc_on is not None:
            self.retry_on |= parse_retry_on(grpc_on.decode("latin-1"), grpc=True)
        codes = _header(headers, b"x-envoy-retriable-status-codes")
        if codes is not None:
            self.status_codes += [int(c) for c in codes.split(b",") if c.strip().isdigit()]
        names = _header(headers, b"x-envoy-retriable-header-names")
        if names is not None:
            for name in names.split(b","):
                wanted = name.strip().lower()
                if wanted:
                    self.header_predicates.append(_has_header(wanted))

    @classmethod
    def create(
        cls,
        policy: RetryPolicy | None,
        breakers: CircuitBreakers,
        rng: random.Random,
        stats: RetryStats | None = None,
        priority: RoutingPriority = RoutingPriority.DEFAULT,
        request_headers: Headers = (),
        honor_request_headers: bool = False,
    ) -> RetryState | None:
        """A state when anything could be retried (Envoy skips it otherwise), else None."""
        policy = policy or RetryPolicy()
        header_asks = honor_request_headers and any(
            n in (b"x-envoy-retry-on", b"x-envoy-retry-grpc-on") for n, _ in request_headers
        )
        if not policy.retry_on and not header_asks:
            return None
        return cls(
            policy,
            breakers,
            rng,
            stats or RetryStats(),
            priority,
            request_headers,
            honor_request_headers,
        )

    def on_response(self, status: int, headers: Headers = ()) -> RetryDecision:
        """Decide after an attempt that got response headers with `status`."""
        return self._decide(self._would_retry_response(status, headers))

    def on_reset(self, reason: ResetReason, upstream_request_started: bool = True) -> RetryDecision:
        """Decide after an attempt that ended without a response.

        A per-try timeout is a LOCAL_RESET; `upstream_request_started` is whether any
        byte of the request was sent (for `reset-before-request`).
        """
        return self._decide(self._would_retry_reset(reason, upstream_request_started))

    def close(self) -> None:
        """The request is over: give back a retry resource still held."""
        self._release()

    def _release(self) -> None:
        if self._holding:
            self.breakers.release_retry(self.priority)
            self._holding = False

    def _decide(self, would: _Would) -> RetryDecision:
        if self._holding and would is _Would.NO:
            self.stats.upstream_rq_retry_success += 1
        self._release()
        if would is _Would.NO:
            return RetryDecision(RetryStatus.NO)
        if self.retries_remaining == 0:
            self.stats.upstream_rq_retry_limit_exceeded += 1
            return RetryDecision(RetryStatus.NO_RETRY_LIMIT_EXCEEDED)
        self.retries_remaining -= 1
        if not self.breakers.try_acquire_retry(self.priority):
            return RetryDecision(RetryStatus.NO_OVERFLOW)
        self._holding = True
        self.stats.upstream_rq_retry += 1
        if would is _Would.IMMEDIATELY:
            return RetryDecision(RetryStatus.YES, 0.0)
        self.stats.upstream_rq_retry_backoff_exponential += 1
        return RetryDecision(RetryStatus.YES, self.backoff.next_backoff_ms() / 1000.0)

    def _would_retry_response(self, status: int, headers: Headers) -> _Would:
        on = self.retry_on
        if _header(headers, b"x-envoy-ratelimited") is not None:
            return _Would.BACKOFF if "envoy-ratelimited" in on else _Would.NO
        if "5xx" in on and 500 <= status <= 599:
            return _Would.BACKOFF
        if "gateway-error" in on and status in (502, 503, 504):
            return _Would.BACKOFF
        if "retriable-4xx" in on and status == 409:
            return _Would.BACKOFF
        if "retriable-status-codes" in on:
            for code in self.status_codes:
                if status != code:
                    continue
                if code != 425:
                    return _Would.BACKOFF
                if _header(self.request_headers, b"early-data") is None:
                    return _Would.IMMEDIATELY
        if "retriable-headers" in on and any(match(headers) for match in self.header_predicates):
            return _Would.BACKOFF
        grpc_codes = {GRPC_RETRY_ON[t] for t in on if t in GRPC_RETRY_ON}
        if grpc_codes:
            value = _header(headers, b"grpc-status")
            if value is not None and value.strip().isdigit() and int(value) in grpc_codes:
                return _Would.BACKOFF
        return _Would.NO

    def _would_retry_reset(self, reason: ResetReason, started: bool) -> _Would:
        on = self.retry_on
        if reason is ResetReason.OVERFLOW:
            return _Would.NO
        connect = reason in (ResetReason.CONNECTION_FAILURE, ResetReason.CONNECTION_TIMEOUT)
        if connect and "connect-failure" in on:
            return _Would.BACKOFF
        if "reset-before-request" in on and not started:
            return _Would.BACKOFF
        if on & {"reset", "5xx", "gateway-error"}:
            return _Would.BACKOFF
        if "refused-stream" in on and reason is ResetReason.REFUSED_STREAM:
            return _Would.BACKOFF
        return _Would.NO

    def should_select_another_host(self, host: Host) -> bool:
        """The previous-hosts predicate: avoid hosts already tried."""
        return host in self.attempted_hosts

    def on_host_attempted(self, host: Host) -> None:
        self.attempted_hosts.append(host)

    def lb_context(self, hash_key: int | None = None) -> LbContext:
        """The load balancer context for the next attempt."""
        if not self.policy.retry_previous_hosts or not self.attempted_hosts:
            return LbContext(hash_key=hash_key)
        return LbContext(
            hash_key=hash_key,
            should_select_another_host=self.should_select_another_host,
            host_selection_retry_max_attempts=self.policy.host_selection_retry_max_attempts,
        )
