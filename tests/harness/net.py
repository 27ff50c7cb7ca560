"""Loopback addresses and ports for tests that run in parallel.

Each pytest-xdist worker gets its own /16 of 127.0.0.0/8 (worker gw3 uses
127.13.x.y), so backends of different workers never collide even when they
share a port number, and test code can give backends distinct addresses.

Ports handed to processes that bind them later (`free_port`) come from a
slice of 10000-31999 private to the worker, below the kernel's ephemeral
range (32768 and up): a port the kernel picked could be given again to
another worker, or to an outgoing connection, before the process binds it.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
import urllib.error
import urllib.request

_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
_base = 10 + (int(_worker) if _worker.isdigit() else 0) % 200
_hosts = itertools.count(11)
_PORTS_PER_WORKER = 1000
_first_port = 10_000 + (_base - 10) % 22 * _PORTS_PER_WORKER
_port_offsets = itertools.count()


def loopback(n: int | None = None) -> str:
    """A loopback address private to this worker (a fresh one when `n` is None)."""
    index = next(_hosts) if n is None else n
    return f"127.{_base}.{index // 250}.{index % 250 + 1}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now, and never handed out by another worker."""
    for _ in range(_PORTS_PER_WORKER):
        port = _first_port + next(_port_offsets) % _PORTS_PER_WORKER
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port left in this worker's slice on {host}")


def wait_http(url: str, timeout: float = 20.0, expect: int = 200) -> bytes:
    """GET `url` until it answers `expect`; returns the body."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                body: bytes = r.read()
                if r.status == expect:
                    return body
                last = r.status
        except urllib.error.HTTPError as e:
            last = e.code
            if e.code == expect:
                return e.read()
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer {expect} within {timeout}s (last: {last!r})")


def wait_until(check: object, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Poll `check()` until it is truthy; raise with its last value otherwise."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s (last: {value!r})")
