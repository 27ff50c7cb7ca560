"""Earliest deadline first scheduling, as Envoy's `EdfScheduler` does it.

Each entry has a deadline `current_time + 1 / weight`; a pick takes the entry
with the earliest deadline (ties go to the one added first), advances the
clock to that deadline and puts the entry back with its weight recomputed.
Over many picks every entry is chosen in proportion to its weight, smoothly
interleaved.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class EdfScheduler(Generic[T]):
    def __init__(self) -> None:
        self._queue: list[tuple[float, int, T]] = []
        self._time = 0.0
        self._order = 0

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, weight: float, item: T) -> None:
        heapq.heappush(self._queue, (self._time + 1.0 / weight, self._order, item))
        self._order += 1

    def pick_and_add(self, weight_of: Callable[[T], float]) -> T | None:
        """Take the earliest entry, re-add it with `weight_of(entry)`, and return it."""
        if not self._queue:
            return None
        deadline, _, item = heapq.heappop(self._queue)
        self._time = deadline
        self.add(weight_of(item), item)
        return item
