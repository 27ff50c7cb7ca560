"""Timeouts that cost a float store to move: one timer task for every connection and request.

Theory of operation
-------------------
A trio deadline is a cancel scope registered in the run loop's deadline
heap; creating, entering and moving one for every request (and another for
every wait between requests) costs more than many of the request's other
steps together. An `Alarm` instead holds its deadline as a plain float and
the cancel scope to cancel when that passes; its owner enters the scope
once (around a whole HTTP/1.1 connection's loop, or an HTTP/2 stream) and
moves the deadline as the request goes.

The `TimerQueue` keeps a heap of entries `(when, sequence, alarm)` and one
task sleeping until the earliest. An alarm is queued again only when its
new deadline comes before the entry it already has in the heap; when an
entry comes due, the alarm is cancelled if its deadline has passed and
queued again at its deadline otherwise. Since the deadlines of successive
requests on a connection move forward, a busy connection costs about one
heap operation per timeout period, not one per request. Entries an alarm
no longer owns (superseded by an earlier one, or stopped) are dropped when
they come due, or all at once when they outnumber the live ones.

An alarm fires at its deadline or later, never earlier: the owner finds out
which of its timers passed by comparing them with the clock.
"""

from __future__ import annotations

import heapq
import itertools
import math

import trio

INF = math.inf
_COMPACT_AT = 64

Entry = tuple[float, int, "Alarm"]


class Alarm:
    """A deadline that cancels `scope` once it has passed (INF: none)."""

    __slots__ = ("_entry", "_queue", "deadline", "scope")

    def __init__(self, queue: TimerQueue, scope: trio.CancelScope | None = None) -> None:
        self._queue = queue
        self._entry: Entry | None = None
        self.deadline = INF
        self.scope = scope

    def set(self, deadline: float) -> None:
        self.deadline = deadline
        entry = self._entry
        if entry is None:
            if deadline != INF:
                self._queue.push(self, deadline)
        elif deadline < entry[0]:
            self._queue.stale += 1
            self._queue.push(self, deadline)

    def stop(self) -> None:
        """No deadline any more (the owner is done with it)."""
        self.deadline = INF
        if self._entry is not None:
            self._entry = None
            self._queue.stale += 1


class TimerQueue:
    """Fires `Alarm`s; `run` must be running (the pool manager runs it)."""

    def __init__(self) -> None:
        self._heap: list[Entry] = []
        self._sequence = itertools.count()
        self._sleeper: trio.CancelScope | None = None
        self.stale = 0

    def alarm(self, scope: trio.CancelScope | None = None) -> Alarm:
        return Alarm(self, scope)

    def push(self, alarm: Alarm, when: float) -> None:
        entry = (when, next(self._sequence), alarm)
        alarm._entry = entry
        heap = self._heap
        heapq.heappush(heap, entry)
        sleeper = self._sleeper
        if sleeper is not None and when < sleeper.deadline:
            sleeper.deadline = when
        if self.stale > _COMPACT_AT and self.stale * 2 > len(heap):
            self._compact()

    def __len__(self) -> int:
        """Entries in the heap, stale ones included."""
        return len(self._heap)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if e[2]._entry is e]
        heapq.heapify(self._heap)
        self.stale = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        clock = trio.lowlevel.current_clock()
        task_status.started()
        while True:
            now = clock.current_time()
            heap = self._heap
            while heap and heap[0][0] <= now:
                entry = heapq.heappop(heap)
                alarm = entry[2]
                if alarm._entry is not entry:
                    self.stale = max(0, self.stale - 1)
                    continue
                alarm._entry = None
                if alarm.deadline <= now:
                    alarm.deadline = INF
                    if alarm.scope is not None:
                        alarm.scope.cancel()
                elif alarm.deadline != INF:
                    self.push(alarm, alarm.deadline)
                heap = self._heap
            sleeper = self._sleeper = trio.CancelScope(deadline=heap[0][0] if heap else INF)
            with sleeper:
                await trio.sleep_forever()
            self._sleeper = None
