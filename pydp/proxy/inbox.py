"""An unbounded queue between a connection's reader task and one stream's task,
and a condition-variable-like `Signal`.

The inbox is bounded in practice by HTTP/2 flow control: the reader only
queues what the peer may send within the windows, and the windows reopen as
the stream's task acknowledges what it forwarded.

Most streams never wait on either (a GET ends with its headers; a response
that fits the window never waits for it), so the parking lot behind each is
made on the first wait: a stream costs two small objects, not two lots.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class Inbox(Generic[T]):
    __slots__ = ("_items", "_lot")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._lot: trio.lowlevel.ParkingLot | None = None

    def put(self, item: T) -> None:
        self._items.append(item)
        lot = self._lot
        if lot:
            lot.unpark_all()

    async def get(self) -> T:
        while not self._items:
            lot = self._lot
            if lot is None:
                lot = self._lot = trio.lowlevel.ParkingLot()
            await lot.park()
        return self._items.popleft()

    def take_all(self) -> list[T]:
        items = list(self._items)
        self._items.clear()
        return items

    def __len__(self) -> int:
        return len(self._items)


class Signal:
    """Wake every waiter; waiters re-check their condition (a condition variable)."""

    __slots__ = ("_lot",)

    def __init__(self) -> None:
        self._lot: trio.lowlevel.ParkingLot | None = None

    def fire(self) -> None:
        lot = self._lot
        if lot:
            lot.unpark_all()

    async def wait(self) -> None:
        lot = self._lot
        if lot is None:
            lot = self._lot = trio.lowlevel.ParkingLot()
        await lot.park()
