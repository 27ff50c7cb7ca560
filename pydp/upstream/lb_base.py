"""What every load balancer shares: its settings, the per-pick context, priority handling.

A load balancer is refreshed with the current host sets (after an assignment
update or an outlier ejection) and then answers `choose_host(context)`: a
`Host`, or None when nothing can be picked (the caller answers 503 `no healthy
upstream`). All randomness comes from the injected `random.Random`, drawn as
64-bit integers where Envoy draws `random()`.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydp.upstream.hosts import Host
from pydp.upstream.priority import HostSet, PriorityLoads, compute_loads

DEFAULT_PANIC_THRESHOLD = 50.0


class LbPolicy(enum.Enum):
    ROUND_ROBIN = "round_robin"
    LEAST_REQUEST = "least_request"
    RANDOM = "random"
    RING_HASH = "ring_hash"
    MAGLEV = "maglev"


class HashFunction(enum.Enum):
    XX_HASH = "xx_hash"
    MURMUR_HASH_2 = "murmur_hash_2"


@dataclass(frozen=True)
class LbConfig:
    """A cluster's load balancing settings, compiled (defaults are Envoy's)."""

    policy: LbPolicy = LbPolicy.ROUND_ROBIN
    healthy_panic_threshold: float = DEFAULT_PANIC_THRESHOLD
    locality_weighted: bool = False
    fail_traffic_on_panic: bool = False
    choice_count: int = 2
    active_request_bias: float = 1.0
    full_scan: bool = False
    minimum_ring_size: int = 1024
    maximum_ring_size: int = 8 * 1024 * 1024
    hash_function: HashFunction = HashFunction.XX_HASH
    table_size: int = 65537
    use_hostname_for_hashing: bool = False


@dataclass(frozen=True)
class LbContext:
    """Per-request inputs to a pick.

    `hash_key` comes from the route's hash policies (`compute_hash`); without one
    the hashing balancers pick at random. `should_select_another_host` is a retry
    host predicate (e.g. previous hosts); a rejected pick is redone up to
    `host_selection_retry_max_attempts` more times, then the last pick is kept.
    """

    hash_key: int | None = None
    should_select_another_host: Callable[[Host], bool] | None = None
    host_selection_retry_max_attempts: int = 0


class LoadBalancer(Protocol):
    def refresh(self, host_sets: Sequence[HostSet]) -> None: ...

    def choose_host(self, context: LbContext | None = None) -> Host | None: ...


class PriorityAwareLb:
    """Keeps the host sets and Envoy's per-priority loads and panic flags."""

    def __init__(self, config: LbConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self.host_sets: tuple[HostSet, ...] = ()
        self.loads = PriorityLoads((), (), ())
        self.panic_picks = 0

    def random64(self) -> int:
        return self.rng.getrandbits(64)

    def refresh(self, host_sets: Sequence[HostSet]) -> None:
        self.host_sets = tuple(host_sets)
        self.loads = compute_loads(self.host_sets, self.config.healthy_panic_threshold)

    def choose_host(self, context: LbContext | None = None) -> Host | None:
        if context is None:
            return self.choose_once(None, 0)
        attempts = 1 + (context.host_selection_retry_max_attempts if context else 0)
        host: Host | None = None
        for attempt in range(attempts):
            host = self.choose_once(context, attempt)
            if host is None or context is None or context.should_select_another_host is None:
                return host
            if not context.should_select_another_host(host):
                return host
        return host

    def choose_once(self, context: LbContext | None, attempt: int) -> Host | None:
        raise NotImplementedError
