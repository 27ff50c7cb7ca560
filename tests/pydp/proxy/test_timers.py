"""`Alarm` and `TimerQueue`: deadlines as floats, fired by one task, never early."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from pydp.proxy.timers import INF, TimerQueue


@pytest.fixture
async def queue() -> AsyncIterator[TimerQueue]:
    timers = TimerQueue()
    async with trio.open_nursery() as nursery:
        await nursery.start(timers.run)
        yield timers
        nursery.cancel_scope.cancel()


async def fired_at(queue: TimerQueue, deadline: float, *moves: float) -> float:
    """When the scope of an alarm set to `deadline` (then to each of `moves`) is cancelled."""
    with trio.CancelScope() as scope:
        alarm = queue.alarm(scope)
        alarm.set(deadline)
        for move in moves:
            alarm.set(move)
        await trio.sleep_forever()
    assert scope.cancelled_caught
    return trio.current_time()


async def test_an_alarm_cancels_its_scope_at_its_deadline(
    queue: TimerQueue, autojump_clock: trio.testing.MockClock
) -> None:
    assert await fired_at(queue, trio.current_time() + 5) == pytest.approx(5)


async def test_moving_an_alarm_later_is_not_firing_at_the_old_deadline(
    queue: TimerQueue, autojump_clock: trio.testing.MockClock
) -> None:
    now = trio.current_time()
    assert await fired_at(queue, now + 5, now + 7, now + 9) == pytest.approx(9)
    assert len(queue) == 0


async def test_moving_an_alarm_earlier_fires_it_earlier(
    queue: TimerQueue, autojump_clock: trio.testing.MockClock
) -> None:
    now = trio.current_time()
    assert await fired_at(queue, now + 60, now + 2) == pytest.approx(2)


async def test_an_alarm_set_to_infinity_or_stopped_does_not_fire(
    queue: TimerQueue, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.CancelScope() as first, trio.CancelScope() as second:
        a = queue.alarm(first)
        a.set(trio.current_time() + 1)
        a.set(INF)
        b = queue.alarm(second)
        b.set(trio.current_time() + 1)
        b.stop()
        await trio.sleep(10)
    assert not first.cancel_called
    assert not second.cancel_called


async def test_an_alarm_fires_again_once_set_again(
    queue: TimerQueue, autojump_clock: trio.testing.MockClock
) -> None:
    alarm = queue.alarm()
    for when in (1.0, 3.0):
        with trio.CancelScope() as scope:
            alarm.scope = scope
            alarm.set(trio.current_time() + when)
            await trio.sleep_forever()
        assert scope.cancelled_caught
    assert trio.current_time() == pytest.approx(4)


async def test_superseded_entries_are_dropped_in_bulk(
    queue: TimerQueue, autojump_clock: trio.testing.MockClock
) -> None:
    now = trio.current_time()
    alarms = [queue.alarm() for _ in range(100)]
    for step in range(10):
        for alarm in alarms:
            alarm.set(now + 1000 - step)  # earlier each time: a new entry each time
    assert len(queue) < 3 * len(alarms)
    for alarm in alarms:
        alarm.stop()
    queue.alarm().set(now + 1)
    assert len(queue) < len(alarms)
