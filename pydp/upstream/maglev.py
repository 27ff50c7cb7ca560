"""Maglev consistent hashing, with Envoy's weighted table construction.

Each host gets `offset = xxHash64(key) % M` and `skip = xxHash64(key, seed=1) %
(M - 1) + 1` (M, the table size, is prime) and claims slots along its
permutation `(offset + skip * j) % M`, skipping taken ones. Hosts take turns in
rounds; a host with normalized weight w claims a slot in round r only once
`r * w` has reached its running target, which grows by the largest weight
each time it claims, so slots end up proportional to weights. A request hash
`h` picks `table[h % M]`; retry attempts flip it with `h ^ (2**64 - attempt)`.
"""

from __future__ import annotations

from functools import lru_cache

from pydp.upstream.digest import MASK, xxh64
from pydp.upstream.hash_lb import HashingLb, HashTable, NormalizedWeights
from pydp.upstream.hosts import Host


@lru_cache(maxsize=1 << 14)
def _offset_skip(key: str, size: int) -> tuple[int, int]:
    data = key.encode()
    return xxh64(data) % size, xxh64(data, 1) % (size - 1) + 1


class MaglevTable(HashTable):
    def __init__(self, weights: NormalizedWeights, size: int, use_hostname: bool) -> None:
        self.size = size
        self.table: list[Host] = []
        if not weights:
            return
        max_weight = max(w for _, w in weights)
        hosts = [h for h, _ in weights]
        params = [_offset_skip(h.hash_key(use_hostname), size) for h in hosts]
        host_weights = [w for _, w in weights]
        targets = [0.0] * len(hosts)
        nexts = [0] * len(hosts)
        slots: list[int] = [-1] * size
        filled = 0
        iteration = 1
        while filled < size:
            for i in range(len(hosts)):
                if filled >= size:
                    break
                if iteration * host_weights[i] < targets[i]:
                    continue
                targets[i] += max_weight
                offset, skip = params[i]
                j = nexts[i]
                c = (offset + skip * j) % size
                while slots[c] != -1:
                    j += 1
                    c = (offset + skip * j) % size
                slots[c] = i
                nexts[i] = j + 1
                filled += 1
            iteration += 1
        self.table = [hosts[i] for i in slots]

    def choose(self, hash_value: int, attempt: int) -> Host | None:
        if not self.table:
            return None
        if attempt > 0:
            hash_value ^= ((1 << 64) - attempt) & MASK
        return self.table[hash_value % self.size]


class MaglevLb(HashingLb):
    def build_table(self, weights: NormalizedWeights) -> HashTable:
        return MaglevTable(weights, self.config.table_size, self.config.use_hostname_for_hashing)
