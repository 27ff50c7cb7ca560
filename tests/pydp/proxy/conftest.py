"""Fixtures of the proxy tests: a running pool manager, a runtime, backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from pydp.proxy import open_pool_manager
from tests.pydp.proxy.backend import Backends
from tests.pydp.proxy.harness import FakeRuntime


@pytest.fixture
async def runtime() -> AsyncIterator[FakeRuntime]:
    async with open_pool_manager() as pools:
        yield FakeRuntime(pools)


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    async with trio.open_nursery() as nursery:
        yield Backends(nursery)
        nursery.cancel_scope.cancel()
