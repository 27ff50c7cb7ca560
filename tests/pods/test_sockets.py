"""The runner's sockets opened inside a pod: `inside(netns)`."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from conformance.pods.bed import open_bed
from conformance.pods.sockets import inside
from tests.pods.support import require_pods


async def test_sockets_inside_a_pod_hold_its_address_and_only_there(tmp_path: Path) -> None:
    require_pods()
    with trio.fail_after(60):
        async with open_bed(tmp_path) as bed:
            pod = bed.add_pod("client")
            with inside(pod.netns):
                sock = trio.socket.socket()
                await sock.bind((pod.address, 0))
                assert sock.getsockname()[0] == pod.address
                sock.close()

                async def child() -> None:
                    with trio.socket.socket() as again:
                        await again.bind((pod.address, 0))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(child)  # tasks it starts inherit the namespace
            with trio.socket.socket() as outside, pytest.raises(OSError):
                await outside.bind((pod.address, 0))
