"""Ring hash (ketama) load balancing, built exactly as Envoy builds its ring.

The ring has `ceil(scale)` points, where `scale = min(ceil(min_weight *
minimum_ring_size) / min_weight, maximum_ring_size)` so that the lightest host
gets a whole number of points. Hosts are walked in order keeping running sums
of target and placed points; each point of a host is the hash (xxHash64, or
MurmurHash2 when configured) of `"<key>_<i>"`, the key being the host's
address (`1.2.3.4:80`), its hostname, or its `envoy.lb` `hash_key` metadata.
A request hash maps to the first point at or after it, wrapping around.
"""

from __future__ import annotations

import bisect
import math
from functools import lru_cache

from pydp.upstream.digest import murmur2_64, xxh64
from pydp.upstream.hash_lb import HashingLb, HashTable, NormalizedWeights
from pydp.upstream.hosts import Host
from pydp.upstream.lb_base import HashFunction


@lru_cache(maxsize=1 << 17)
def ring_point(key: str, index: int, murmur: bool) -> int:
    data = f"{key}_{index}".encode()
    return murmur2_64(data) if murmur else xxh64(data)


class Ring(HashTable):
    def __init__(
        self,
        weights: NormalizedWeights,
        minimum_ring_size: int,
        maximum_ring_size: int,
        murmur: bool,
        use_hostname: bool,
    ) -> None:
        entries: list[tuple[int, int]] = []
        self.hosts: list[Host] = [host for host, _ in weights]
        self.hashes_per_host: dict[Host, int] = {}
        if weights:
            min_weight = min(w for _, w in weights)
            scale = min(
                math.ceil(min_weight * minimum_ring_size) / min_weight, float(maximum_ring_size)
            )
            current = 0.0
            target = 0.0
            for n, (host, weight) in enumerate(weights):
                key = host.hash_key(use_hostname)
                target += scale * weight
                i = 0
                while current < target:
                    entries.append((ring_point(key, i, murmur), n))
                    i += 1
                    current += 1
                self.hashes_per_host[host] = i
        entries.sort(key=lambda e: e[0])
        self._hashes = [e[0] for e in entries]
        self._owners = [self.hosts[e[1]] for e in entries]

    def __len__(self) -> int:
        return len(self._hashes)

    def choose(self, hash_value: int, attempt: int) -> Host | None:
        if not self._hashes:
            return None
        index = bisect.bisect_left(self._hashes, hash_value)
        if index == len(self._hashes):
            index = 0
        if attempt > 0:
            index = (index + attempt) % len(self._hashes)
        return self._owners[index]


class RingHashLb(HashingLb):
    def build_table(self, weights: NormalizedWeights) -> HashTable:
        return Ring(
            weights,
            self.config.minimum_ring_size,
            self.config.maximum_ring_size,
            self.config.hash_function is HashFunction.MURMUR_HASH_2,
            self.config.use_hostname_for_hashing,
        )
