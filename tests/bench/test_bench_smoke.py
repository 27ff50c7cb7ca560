"""The benchmarks run at a tiny size and print the figures they promise (never timed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"\d+(?:\.\d+)?"


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"{args[0]} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


def test_snapshot_build_prints_a_row_per_case_and_the_sizes() -> None:
    out = run("bench.snapshot_build", "--services", "20", "--endpoints", "5", "--repeat", "2")
    assert "model: 20 Services, 25 Service ports (clusters), 5 endpoints each" in out
    for case in (
        "cold, 1 profile(s)",
        "warm, 1 endpoint changed, 1 profile(s)",
        "cold, 3 profile(s)",
        "warm, 1 endpoint changed, 3 profile(s)",
    ):
        assert re.search(rf"^{re.escape(case)} +{NUMBER} +{NUMBER}$", out, re.M), case
    sizes = re.findall(
        r"snapshot with (\d) profile\(s\): (\d+) resources, (\d+) payload bytes", out
    )
    # 25 clusters and 25 assignments shared, then per profile: inbound cluster, 2 listeners,
    # 2 route configurations (one outbound route configuration per extra namespace).
    assert [(p, int(n)) for p, n, _ in sizes] == [("1", 55), ("3", 57)]
    assert all(int(b) > 0 for _, _, b in sizes)


@pytest.mark.parametrize("variant", [[], ["--delta"]], ids=["sotw", "delta"])
def test_ack_latency_syncs_the_clients_and_prints_the_latencies(variant: list[str]) -> None:
    out = run(
        "bench.ack_latency",
        *("--clients", "5", "--services", "20", "--changes", "2", "--pause", "0"),
        *("--client-procs", "2", "--channels", "2", *variant),
    )
    assert re.search(r"\[clients 0\] synced 3 streams in", out)
    assert re.search(r"\[clients 1\] synced 2 streams in", out)
    assert "all 5 streams ACKed CDS, EDS, LDS and RDS of snapshot 1" in out
    assert re.findall(r"^change (\d): .* -> snapshot (\d)", out, re.M) == [("1", "2"), ("2", "3")]
    assert re.search(
        rf"EDS ACK latency over 10 ACKs \(5 clients x 2 changes\): p50 {NUMBER} ms, "
        rf"p90 {NUMBER} ms, p99 {NUMBER} ms, max {NUMBER} ms",
        out,
    )
    assert re.search(rf"publish_now: median {NUMBER} ms, max {NUMBER} ms", out)
    assert re.search(rf"CPU over the changes .*: server {NUMBER} s .*, clients {NUMBER} s", out)
    assert "failures 0" in out
