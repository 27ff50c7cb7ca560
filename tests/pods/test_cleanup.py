"""Nothing is left behind: not by a failing test, an interrupted run, or a killed one.

A world leaves no namespace (and so no veth, bridge or iptables rule, which
live only inside its namespaces), no `/etc/netns` folder, no record and no
process; the host's own interfaces are the same before and after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from conformance.pods import names, records
from conformance.pods.bed import open_bed
from conformance.pods.system import PROXY_UID, run
from tests.pods.support import require_pods


@pytest.fixture(autouse=True)
def _pods() -> None:
    require_pods()


def host_links() -> set[str]:
    return {line.split(":")[1].strip() for line in run(["ip", "-o", "link"]).splitlines()}


def owned_by(pid: int) -> list[str]:
    """Every name a world of process `pid` has on this machine."""
    found = []
    for folder in (records.NETNS_DIR, records.ETC_NETNS, records.RECORDS):
        found += [str(folder / n) for n in records.world_names(folder) if names.owner(n) == pid]
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def uid(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    line = next(x for x in status.splitlines() if x.startswith("Uid:"))
    return int(line.split()[1])


def processes_in(prefix: str) -> list[int]:
    pids = []
    for netns in records.world_names(records.NETNS_DIR):
        if netns.startswith(prefix):
            pids += [int(p) for p in run(["ip", "netns", "pids", netns], may_fail=True).split()]
    return pids


async def test_a_failing_test_leaves_nothing(tmp_path: Path) -> None:
    links = host_links()
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="the test failed"), trio.fail_after(60):
        async with open_bed(tmp_path) as bed:
            client = bed.add_pod("client")
            await bed.publish()
            await bed.start_sidecar(client, "envoy")
            pids = processes_in(bed.world.prefix)
            raise RuntimeError("the test failed")
    assert len(pids) >= 2  # the control plane and the sidecar
    assert owned_by(os.getpid()) == []
    assert not any(running(p) for p in pids)
    assert host_links() == links


async def test_a_cancelled_test_leaves_nothing(tmp_path: Path) -> None:
    with trio.move_on_after(60) as scope:
        async with open_bed(tmp_path) as bed:
            client = bed.add_pod("client")
            await bed.publish()
            await bed.start_sidecar(client, "pydp")
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert owned_by(os.getpid()) == []


def start_run(tmp_path: Path) -> subprocess.Popen[bytes]:
    """A conformance run in pods mode, its temporary files kept under `tmp_path`."""
    args = [sys.executable, "-m", "conformance.cli", "run", "--pods", "--scenario", "round-robin"]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    with (tmp_path / "run.log").open("wb") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_for_sidecar(child: subprocess.Popen[bytes], tmp_path: Path) -> list[int]:
    """Wait until the run's client sidecar (UID 1337) runs; every process of its world."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert child.poll() is None, (tmp_path / "run.log").read_text()
        prefix = next((n for n in owned_by(child.pid) if n.endswith("-node")), None)
        if prefix is not None:
            world = Path(prefix).name.removesuffix("-node")
            client = run(["ip", "netns", "pids", f"{world}-conformance"], may_fail=True).split()
            if any(uid(int(p)) == PROXY_UID for p in client):
                return processes_in(world)
        time.sleep(0.1)
    raise AssertionError(
        "the run's client sidecar did not start:\n" + (tmp_path / "run.log").read_text()
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_leaves_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    links = host_links()
    child = start_run(tmp_path)
    try:
        pids = wait_for_sidecar(child, tmp_path)
        child.send_signal(sig)
        assert child.wait(60) == 130, (tmp_path / "run.log").read_text()
    finally:
        child.kill()
        child.wait()
    assert "interrupted" in (tmp_path / "run.log").read_text()
    assert len(pids) >= 5  # xds-server, 4 echo backends... and sidecars
    assert owned_by(child.pid) == []
    assert not any(running(p) for p in pids)
    assert host_links() == links
    assert os.listdir(tmp_path) == ["run.log"]


def test_a_killed_run_is_cleaned_by_the_next(tmp_path: Path) -> None:
    child = start_run(tmp_path)
    try:
        pids = wait_for_sidecar(child, tmp_path)
    finally:
        child.kill()
        child.wait()
    deadline = time.monotonic() + 10
    while any(running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(p) for p in pids)  # the parent-death signal took them
    left: list[str] = []

    async def next_world() -> None:
        async with open_bed(tmp_path / "next"):
            left.extend(owned_by(child.pid))

    trio.run(next_world)
    assert left == []
