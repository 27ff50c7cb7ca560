"""An unbounded queue between a connection's reader task and one stream's task.

Bounded in practice by HTTP/2 flow control: the reader only queues what the
peer may send within the windows, and the windows reopen as the stream's
task acknowledges what it forwarded.
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
        self._lot = trio.lowlevel.ParkingLot()

    def put(self, item: T) -> None:
        self._items.append(item)
        if self._lot:
            self._lot.unpark_all()

    async def get(self) -> T:
        while not self._items:
            await self._lot.park()
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
        self._lot = trio.lowlevel.ParkingLot()

    def fire(self) -> None:
        if self._lot:
            self._lot.unpark_all()

    async def wait(self) -> None:
        await self._lot.park()
