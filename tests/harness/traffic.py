"""Steady traffic on a thread while something else happens (rotation, config changes)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.harness.net import wait_until


@dataclass
class Outcome:
    sent: int = 0
    failures: list[object] = field(default_factory=list)  # non-200 statuses and OSErrors


def under_load(
    request: Callable[[], tuple[int, bytes]], until: Callable[[], bool], timeout: float
) -> Outcome:
    """Send `request()` back to back until `until()` holds, then half a second more."""
    outcome = Outcome()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                status, _ = request()
                if status != 200:
                    outcome.failures.append(status)
            except OSError as e:
                outcome.failures.append(e)
            outcome.sent += 1

    thread = threading.Thread(target=load)
    thread.start()
    try:
        wait_until(until, timeout=timeout)
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join()
    return outcome
